"""Schema of the SQLite backend and its migrations.

``history`` is append-only and holds every version (tombstones have a NULL body); ``resource``
points at the current version of each resource. ``outbox`` holds one row per committed change;
``outbox_cursor`` and ``outbox_retry`` track, per POST_COMMIT hook, what was handled and what
must be retried, so an event is never lost and never re-run for a hook that already took it.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS history (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    type         TEXT    NOT NULL,
    id           TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    last_updated TEXT    NOT NULL,
    method       TEXT    NOT NULL,
    body         BLOB,
    UNIQUE (type, id, version)
);
CREATE INDEX IF NOT EXISTS history_by_type ON history (type, seq);

CREATE TABLE IF NOT EXISTS resource (
    type    TEXT    NOT NULL,
    id      TEXT    NOT NULL,
    version INTEGER NOT NULL,
    seq     INTEGER NOT NULL REFERENCES history (seq),
    deleted INTEGER NOT NULL,
    PRIMARY KEY (type, id)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    type        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    interaction TEXT    NOT NULL,
    occurred    TEXT    NOT NULL
);

CREATE TABLE IF NOT EXISTS outbox_cursor (
    hook     TEXT    PRIMARY KEY,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS outbox_retry (
    hook       TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    retry_at   TEXT    NOT NULL,
    last_error TEXT    NOT NULL,
    PRIMARY KEY (hook, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS schema_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"""


def configure(conn: sqlite3.Connection, synchronous: str) -> None:
    """Per-connection settings: WAL for concurrent readers, durable commits by default."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute("PRAGMA busy_timeout = 10000")
    conn.execute("PRAGMA foreign_keys = OFF")


def migrate(conn: sqlite3.Connection) -> None:
    """Create the schema, or refuse a database written by a newer release."""
    conn.executescript(_DDL)
    row = conn.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO schema_info (key, value) VALUES ('version', ?)", (str(SCHEMA_VERSION),)
        )
    elif int(row[0]) > SCHEMA_VERSION:
        raise RuntimeError(
            f"the database has schema version {row[0]}, newer than this release knows "
            f"({SCHEMA_VERSION}); upgrade the server"
        )
    conn.commit()
