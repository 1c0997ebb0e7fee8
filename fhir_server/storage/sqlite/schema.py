"""Schema of the SQLite backend and its migrations.

``history`` is append-only and holds every version (tombstones have a NULL body); ``resource``
points at the current version of each resource and gives it ``rid``, an integer in creation order
that never changes on update (the search index rows and keyset cursors refer to it). ``outbox``
holds one row per committed change; ``outbox_cursor`` and ``outbox_retry`` track, per
POST_COMMIT hook, what was handled and what must be retried.

Search index (version 2, HAPI's SPIDX idea): ``search_param`` gives each (resource type, code) a
small integer ``pid``; one table per entry type holds ``(rid, pid, grp, value columns)`` where
``grp`` numbers the composite element a row belongs to (0 outside composites). Each table has a
``(rid, pid, grp)`` index (delete on update, composite joins, sort values) and covering indexes
that start with ``pid`` so every search test is an index range scan.

Referential integrity (version 3): ``ref_link`` holds the local references of the current
version of each live resource (source ``rid``, element ``path``, target type, id and version),
replaced on every put like the index rows, and indexed by target so that a deletion finds its
referrers with one range scan (storage/sqlite/integrity.py).

Records (version 4): ``record`` holds the record port's small JSON documents that are not FHIR
resources (storage/records.py, storage/sqlite/records.py), keyed by (kind, key), with the
indexed field's name and value and an optional expiry; created empty by the migration.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Literal

from fhir_server.storage.sqlite.integrity import insert_references, references_of_body

SCHEMA_VERSION = 4

_BASE = (
    """CREATE TABLE IF NOT EXISTS history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    body         BLOB,
    UNIQUE (type, id, version)
)""",
    "CREATE INDEX IF NOT EXISTS history_by_type ON history (type, seq)",
    """CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    interaction TEXT    NOT NULL,
    occurred    TEXT    NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS outbox_cursor (
    hook     TEXT    PRIMARY KEY,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS outbox_retry (
    hook       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    retry_at   TEXT    NOT NULL,
    last_error TEXT    NOT NULL,
    PRIMARY KEY (hook, seq)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS schema_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID""",
)

_RESOURCE = """CREATE TABLE IF NOT EXISTS resource (
    rid     INTEGER PRIMARY KEY,
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    seq     INTEGER NOT NULL REFERENCES history (seq),
    deleted INTEGER NOT NULL,
    UNIQUE (type, id)
)"""

#: Index tables: name -> value columns (after ``rid, pid, grp``), in entry field order.
INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "idx_string": ("normalized", "exact"),
    "idx_token": ("system", "code", "text", "type_system", "type_code"),
    "idx_date": ("low", "high"),
    "idx_number": ("value",),
    "idx_quantity": (
        "low",
        "high",
        "system",
        "code",
        "unit",
        "canonical_low",
        "canonical_high",
        "canonical_code",
    ),
    "idx_reference": (
        "target_type",
        "target_id",
        "url",
        "version",
        "identifier_system",
        "identifier_value",
    ),
    "idx_uri": ("uri",),
}

#: Covering indexes of each index table (name suffix, columns, partial-index condition).
_SEARCH_INDEXES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "idx_string": (
        ("normalized", "pid, normalized, rid", ""),
        ("exact", "pid, exact, rid", ""),
    ),
    "idx_token": (
        ("code", "pid, code, system, rid", ""),
        ("system", "pid, system, code, rid", ""),
        ("text", "pid, text, rid", "text IS NOT NULL"),
    ),
    "idx_date": (("low", "pid, low, high, rid", ""), ("high", "pid, high, low, rid", "")),
    "idx_number": (("value", "pid, value, rid", ""),),
    "idx_quantity": (
        ("value", "pid, low, high, rid", ""),
        ("code", "pid, code, low, high, rid", ""),
        ("unit", "pid, unit, low, high, rid", ""),
        (
            "canonical",
            "pid, canonical_code, canonical_low, canonical_high, rid",
            "canonical_code IS NOT NULL",
        ),
    ),
    "idx_reference": (
        ("target", "pid, target_id, target_type, rid", ""),
        ("url", "pid, url, version, rid", "url IS NOT NULL"),
        (
            "identifier",
            "pid, identifier_value, identifier_system, rid",
            "identifier_value IS NOT NULL",
        ),
    ),
    "idx_uri": (("uri", "pid, uri, rid", ""),),
}


_REFERENCES = (
    """CREATE TABLE IF NOT EXISTS ref_link (
    rid            INTEGER NOT NULL,
    path           TEXT    NOT NULL,
    target_type    TEXT    NOT NULL,
    target_id      TEXT    NOT NULL,
    target_version INTEGER
)""",
    "CREATE INDEX IF NOT EXISTS ref_link_target ON ref_link (target_type, target_id, rid)",
    "CREATE INDEX IF NOT EXISTS ref_link_rid ON ref_link (rid)",
)

_RECORDS = (
    """CREATE TABLE IF NOT EXISTS record (
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   BLOB NOT NULL,
    field   TEXT,
    idx     TEXT,
    expires REAL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS record_by_idx ON record (kind, idx, key) WHERE idx IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS record_expires ON record (expires) WHERE expires IS NOT NULL",
)


def _search_ddl() -> list[str]:
    statements = [
        """CREATE TABLE IF NOT EXISTS search_param (
    pid  INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    code TEXT NOT NULL,
    UNIQUE (type, code)
)""",
        "CREATE INDEX IF NOT EXISTS search_param_by_code ON search_param (code)",
        "CREATE INDEX IF NOT EXISTS resource_by_type ON resource (type, rid) WHERE deleted = 0",
        """CREATE TABLE IF NOT EXISTS idx_compartment (
    rid       INTEGER NOT NULL,
    comp_type TEXT    NOT NULL,
    comp_id   TEXT    NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS idx_compartment_member "
        "ON idx_compartment (comp_type, comp_id, rid)",
        "CREATE INDEX IF NOT EXISTS idx_compartment_rid ON idx_compartment (rid)",
    ]
    for table, columns in INDEX_COLUMNS.items():
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table} (rid INTEGER NOT NULL, pid INTEGER NOT NULL, "
            f"grp INTEGER NOT NULL, {', '.join(columns)})"
        )
        statements.append(f"CREATE INDEX IF NOT EXISTS {table}_rid ON {table} (rid, pid, grp)")
        for suffix, indexed, condition in _SEARCH_INDEXES[table]:
            where = f" WHERE {condition}" if condition else ""
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {table}_{suffix} ON {table} ({indexed}){where}"
            )
    return statements


Role = Literal["writer", "reader"]

#: Settings per connection role, each kept because it measurably helped writes or reads:
#: the writer keeps temporary data (statement and savepoint journals) in memory instead of
#: files, a page cache large enough for a whole group commit without spilling (64 MiB), and
#: checkpoints every 10,000 WAL pages instead of 1,000 (pages written again and again by
#: successive commits are copied to the database once; the checkpoint stays passive, so it
#: never blocks readers). Readers keep SQLite's defaults: a larger cache and ``mmap_size``
#: showed no measurable gain on search.
PRAGMAS: Mapping[Role, tuple[str, ...]] = {
    "writer": ("temp_store = MEMORY", "cache_size = -65536", "wal_autocheckpoint = 10000"),
    "reader": (),
}


def configure(conn: sqlite3.Connection, synchronous: str, role: Role) -> None:
    """Per-connection settings: WAL for concurrent readers, durable commits by default."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = OFF")
    for pragma in PRAGMAS[role]:
        conn.execute(f"PRAGMA {pragma}")


@contextlib.contextmanager
def relaxed_sync(conn: sqlite3.Connection) -> Iterator[None]:
    """Commits of ``conn`` in this block without a sync of the WAL of their own
    (``synchronous`` at most NORMAL; OFF stays OFF), the connection's level back after: an
    application crash loses nothing in WAL mode, a power failure at most these commits, and the
    next durable commit makes them durable too. For writes that can be lost with the power
    (outbox.py) or rebuilt after it (job_group.py)."""
    level = int(conn.execute("PRAGMA synchronous").fetchone()[0])
    relaxed = min(level, 1)  # 1 = NORMAL
    if relaxed != level:
        conn.execute(f"PRAGMA synchronous = {relaxed}")
    try:
        yield
    finally:
        if relaxed != level:
            conn.execute(f"PRAGMA synchronous = {level}")


def _stored_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_info'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
    return 0 if row is None else int(row[0])


def _from_1_to_2(conn: sqlite3.Connection) -> None:
    """Rebuild ``resource`` as a rowid table numbered in creation order (first history row);
    version-1 resources get no index rows until they are written again."""
    conn.execute("ALTER TABLE resource RENAME TO resource_v1")
    conn.execute(_RESOURCE)
    conn.execute(
        "INSERT INTO resource (type, id, version, seq, deleted) "
        "SELECT r.type, r.id, r.version, r.seq, r.deleted FROM resource_v1 r ORDER BY "
        "(SELECT min(h.seq) FROM history h WHERE h.type = r.type AND h.id = r.id)"
    )
    conn.execute("DROP TABLE resource_v1")


def _from_2_to_3(conn: sqlite3.Connection) -> None:
    """Fill ``ref_link`` from the current body of every live resource, walked as the write path
    walks it (validation/references.py). The server's base URL is unknown here, so only
    relative references (``Type/id``) are counted; absolute ones to this server are counted
    when their resource is next written."""
    rows = conn.execute(
        "SELECT r.rid, h.body FROM resource r JOIN history h ON h.seq = r.seq WHERE r.deleted = 0"
    )
    for rid, body in rows.fetchall():
        insert_references(conn, int(rid), references_of_body(body))


def migrate(conn: sqlite3.Connection) -> None:
    """Create or upgrade the schema in one transaction, or refuse a newer database.

    Statements run one by one (``executescript`` would commit the transaction midway), under
    ``BEGIN IMMEDIATE`` so two processes opening the same file do not migrate it twice.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        stored = _stored_version(conn)
        if stored > SCHEMA_VERSION:
            raise RuntimeError(
                f"the database has schema version {stored}, newer than this release knows "
                f"({SCHEMA_VERSION}); upgrade the server"
            )
        for statement in _BASE:
            conn.execute(statement)
        if stored == 1:
            _from_1_to_2(conn)
        conn.execute(_RESOURCE)
        for statement in (*_search_ddl(), *_REFERENCES, *_RECORDS):  # _RECORDS: 3 -> 4
            conn.execute(statement)
        if 0 < stored < 3:
            _from_2_to_3(conn)
        conn.execute(
            "INSERT INTO schema_info (key, value) VALUES ('version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(SCHEMA_VERSION),),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
