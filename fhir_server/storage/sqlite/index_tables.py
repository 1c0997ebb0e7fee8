"""Write side of the SQLite search index: parameter keys and the index rows of one resource.

Index rows carry a small integer ``pid`` per (resource type, parameter code) instead of the code
itself, which keeps rows and indexes short. Keys are created on first use inside the writing
transaction and remembered per store only once that transaction commits (a rolled-back key must
not be reused: SQLite would hand the same number to another parameter).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from fhir_server.search.model import (
    CompositeEntry,
    DateEntry,
    IndexEntry,
    NumberEntry,
    ParamType,
    QuantityEntry,
    ReferenceEntry,
    ResourceIndex,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.storage.sqlite.schema import INDEX_COLUMNS

#: The index table answering each parameter type ("composite" rows live in the component tables).
TABLE_OF_TYPE: dict[ParamType, str] = {
    "string": "idx_string",
    "token": "idx_token",
    "date": "idx_date",
    "number": "idx_number",
    "quantity": "idx_quantity",
    "reference": "idx_reference",
    "uri": "idx_uri",
}

ParamKey = tuple[str, str]  # (resource type, code)

#: Every resource has it (search.html#all); indexed from the version's own time unless the
#: index already carries it, as the in-memory matcher does.
LAST_UPDATED = "_lastUpdated"


def _insert_statement(table: str) -> str:
    columns = ("rid", "pid", "grp", *INDEX_COLUMNS[table])
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


#: The INSERT of one index row, per index table (built once, not per write).
INSERT_INDEX_ROW: dict[str, str] = {table: _insert_statement(table) for table in INDEX_COLUMNS}


def component_code(code: str, index: int) -> str:
    """The key under which component ``index`` of composite ``code`` is stored."""
    return f"{code}${index}"


class ParamKeys:
    """The ``search_param`` table, cached: (resource type, code) -> pid.

    Reads cache what they find (committed keys never change); the writer caches the keys it
    created only after its transaction commits, via :meth:`remember`.
    """

    def __init__(self) -> None:
        self._known: dict[ParamKey, int] = {}

    def find(self, conn: sqlite3.Connection, key: ParamKey, *, cache: bool) -> int | None:
        pid = self._known.get(key)
        if pid is not None:
            return pid
        row = conn.execute(
            "SELECT pid FROM search_param WHERE type = ? AND code = ?", key
        ).fetchone()
        if row is None:
            return None
        if cache:
            self._known[key] = int(row[0])
        return int(row[0])

    def for_code(self, conn: sqlite3.Connection, code: str) -> list[int]:
        """Every pid of ``code``, whatever the resource type (searches across all types)."""
        rows = conn.execute("SELECT pid FROM search_param WHERE code = ?", (code,)).fetchall()
        return [int(row[0]) for row in rows]

    def ensure(self, conn: sqlite3.Connection, key: ParamKey, created: dict[ParamKey, int]) -> int:
        """The pid of ``key``, created in this transaction when new (noted in ``created``)."""
        pid = created.get(key) or self.find(conn, key, cache=False)
        if pid is None:
            pid = conn.execute(
                "INSERT INTO search_param (type, code) VALUES (?, ?) RETURNING pid", key
            ).fetchone()[0]
            created[key] = int(pid)
        return int(pid)

    def remember(self, created: dict[ParamKey, int]) -> None:
        self._known.update(created)


def _values(entry: IndexEntry) -> tuple[str, tuple[Any, ...]]:
    """The table of an entry and its value columns, in :data:`INDEX_COLUMNS` order."""
    match entry:
        case StringEntry():
            return "idx_string", (entry.normalized, entry.exact)
        case TokenEntry():
            return "idx_token", (
                entry.system, entry.code, entry.text, entry.type_system, entry.type_code
            )  # fmt: skip
        case DateEntry():
            return "idx_date", (entry.low, entry.high)
        case NumberEntry():
            return "idx_number", (entry.value,)
        case QuantityEntry():
            return "idx_quantity", (
                entry.low, entry.high, entry.system, entry.code, entry.unit,
                entry.canonical_low, entry.canonical_high, entry.canonical_code,
            )  # fmt: skip
        case ReferenceEntry():
            return "idx_reference", (
                entry.target_type, entry.target_id, entry.url, entry.version,
                entry.identifier_system, entry.identifier_value,
            )  # fmt: skip
        case UriEntry():
            return "idx_uri", (entry.uri,)


#: :func:`_values` by exact entry type: one dict lookup instead of a chain of class patterns
#: (a resource writes about 26 index rows).
_VALUES: dict[type, Callable[[Any], tuple[str, tuple[Any, ...]]]] = {
    StringEntry: lambda e: ("idx_string", (e.normalized, e.exact)),
    TokenEntry: lambda e: ("idx_token", (e.system, e.code, e.text, e.type_system, e.type_code)),
    DateEntry: lambda e: ("idx_date", (e.low, e.high)),
    UriEntry: lambda e: ("idx_uri", (e.uri,)),
    ReferenceEntry: lambda e: (
        "idx_reference",
        (e.target_type, e.target_id, e.url, e.version, e.identifier_system, e.identifier_value),
    ),
}


def _rows(
    index: ResourceIndex, pid_of: Callable[[str], int], rid: int
) -> dict[str, list[tuple[Any, ...]]]:
    """Index rows per table; each CompositeEntry gets its own ``grp`` (1, 2, ...)."""
    rows: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for code, entries in index.entries.items():
        grp = 0
        own: int | None = None  # the code's pid, looked up on its first plain entry
        for entry in entries:
            if isinstance(entry, CompositeEntry):
                grp += 1
                for position, part in enumerate(entry.parts):
                    pid = pid_of(component_code(code, position))
                    for component in part:
                        table, values = _values(component)
                        rows[table].append((rid, pid, grp, *values))
            else:
                if own is None:
                    own = pid_of(code)
                values_of = _VALUES.get(type(entry))
                table, values = _values(entry) if values_of is None else values_of(entry)
                rows[table].append((rid, own, 0, *values))
    return rows


def delete_index(conn: sqlite3.Connection, rid: int) -> None:
    """Remove every index row of a resource (before a new version's rows, or for a deletion)."""
    for table in (*INDEX_COLUMNS, "idx_compartment"):
        conn.execute(f"DELETE FROM {table} WHERE rid = ?", (rid,))


def insert_index(
    conn: sqlite3.Connection,
    keys: ParamKeys,
    created: dict[ParamKey, int],
    resource_type: str,
    rid: int,
    index: ResourceIndex,
    last_updated: int,
) -> None:
    """Insert the rows of ``index`` for resource ``rid`` (one executemany per table);
    ``last_updated`` (microseconds) answers ``_lastUpdated`` when the index has no entry."""
    if LAST_UPDATED not in index.entries:
        moment = DateEntry(last_updated, last_updated)
        index = ResourceIndex({**index.entries, LAST_UPDATED: (moment,)}, index.compartments)

    def pid_of(code: str) -> int:
        return keys.ensure(conn, (resource_type, code), created)

    for table, rows in _rows(index, pid_of, rid).items():
        conn.executemany(INSERT_INDEX_ROW[table], rows)
    _insert_compartments(conn, rid, index.compartments)


def _insert_compartments(
    conn: sqlite3.Connection, rid: int, compartments: Sequence[tuple[str, str]]
) -> None:
    unique: Iterable[tuple[str, str]] = dict.fromkeys(compartments)
    conn.executemany(
        "INSERT INTO idx_compartment (rid, comp_type, comp_id) VALUES (?, ?, ?)",
        [(rid, comp_type, comp_id) for comp_type, comp_id in unique],
    )


def index_rows(
    index: ResourceIndex, pid_of: Callable[[str], int], rid: int
) -> dict[str, list[tuple[Any, ...]]]:
    """The rows :func:`insert_index` writes for ``index``, per table (the benchmarks' raw-insert
    baseline inserts exactly these)."""
    return _rows(index, pid_of, rid)
