"""The record port (storage/records.py) on SQLite: the ``record`` table of the store's database.

Reads run on the store's reader connections. Writes are jobs of the store's
:class:`~fhir_server.storage.sqlite.job_group.JobGroup`: the record writes (and the blob store's
inline rows, when they live in this database) queued together commit in one transaction, one
WAL sync, each undone alone if it fails; a write is durable when it returns. They never join a
resource transaction (group_commit.py): the writer thread runs one drain at a time. ``take`` is
``DELETE … RETURNING`` guarded by the expiry, ``put(if_absent=True)`` an upsert whose update
only replaces an expired row: writes apply one after the other (and SQLite serialises writers
across processes), so of two concurrent calls exactly one succeeds.

Values are stored as JSON (orjson); ``expires`` as seconds since the epoch (REAL), NULL for
never; ``field`` is the name of the indexed top-level field and ``idx`` its value, so that
``fhir-server migrate`` can put a record again exactly as it was put (export.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from fhir_server.core.clock import Clock
from fhir_server.storage.records import (
    Record,
    RecordPut,
    RecordStore,
    field_paths,
    indexed_value,
    place_field,
)
from fhir_server.storage.sqlite.connections import Connections
from fhir_server.storage.sqlite.job_group import JobGroup

#: Live: no expiry, or one after the moment given as the statement's last parameter.
_LIVE = "(expires IS NULL OR expires > ?)"


def epoch(moment: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC (as MongoDB does)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class SqliteRecords(RecordStore):
    """Records beside the resources, sharing the store's connections (usable after ``open``)."""

    def __init__(self, connections: Connections, jobs: JobGroup, clock: Clock) -> None:
        self._connections = connections
        self._jobs = jobs
        self._clock = clock

    def _now(self) -> float:
        return epoch(self._clock())

    def _statement(self, item: RecordPut) -> tuple[str, tuple[object, ...]]:
        idx = indexed_value(item.value, item.index)
        row = (
            item.kind,
            item.key,
            orjson.dumps(item.value),
            item.index,
            idx,
            None if item.expires is None else epoch(item.expires),
        )
        update = (
            "ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, "
            "field = excluded.field, idx = excluded.idx, expires = excluded.expires"
        )
        sql = (
            "INSERT INTO record (kind, key, value, field, idx, expires) VALUES (?, ?, ?, ?, ?, ?) "
        )
        if item.if_absent:  # replace only an expired record: a live one stays, nothing stored
            return f"{sql}{update} WHERE record.expires IS NOT NULL AND record.expires <= ?", (
                *row,
                self._now(),
            )
        return sql + update, row

    async def put(
        self,
        kind: str,
        key: str,
        value: Record,
        *,
        expires: datetime | None = None,
        index: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        sql, params = self._statement(RecordPut(kind, key, value, expires, index, if_absent))
        return await self._jobs.run(lambda conn: conn.execute(sql, params).rowcount == 1)

    async def put_many(self, items: Sequence[RecordPut]) -> list[bool]:
        """One job: all items in one transaction (undone together if one fails)."""
        statements = [self._statement(item) for item in items]  # bad index: nothing written
        if not statements:
            return []

        def run(conn: sqlite3.Connection) -> list[bool]:
            return [conn.execute(sql, params).rowcount == 1 for sql, params in statements]

        return await self._jobs.run(run)

    async def get(self, kind: str, key: str) -> Record | None:
        sql = f"SELECT value FROM record WHERE kind = ? AND key = ? AND {_LIVE}"
        params = (kind, key, self._now())

        def run(conn: sqlite3.Connection) -> Record | None:
            row = conn.execute(sql, params).fetchone()
            return None if row is None else _loads(row[0])

        return await self._connections.read(run)

    async def take(self, kind: str, key: str) -> Record | None:
        sql = f"DELETE FROM record WHERE kind = ? AND key = ? AND {_LIVE} RETURNING value"
        params = (kind, key, self._now())

        def run(conn: sqlite3.Connection) -> bytes | None:
            rows = conn.execute(sql, params).fetchall()  # fetch all: the statement then ends
            return None if not rows else bytes(rows[0][0])

        found = await self._jobs.run(run)
        return None if found is None else _loads(found)

    async def delete(self, kind: str, key: str) -> bool:
        sql = "DELETE FROM record WHERE kind = ? AND key = ? RETURNING expires"
        now = self._now()

        def run(conn: sqlite3.Connection) -> bool:
            rows = conn.execute(sql, (kind, key)).fetchall()
            return bool(rows) and (rows[0][0] is None or float(rows[0][0]) > now)

        return await self._jobs.run(run)

    async def find(
        self,
        kind: str,
        value: str | None = None,
        *,
        limit: int = 1000,
        after: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[Record]:
        paths = None if fields is None else field_paths(fields)
        if limit <= 0:
            return []
        params: list[object] = [kind]
        if value is not None:
            params.append(value)
        if after is not None:
            params.append(after)
        sql = find_sql(indexed=value is not None, after=after is not None, paths=paths)
        args = (*params, self._now(), limit)
        # parsed in the reader thread: a page of large records (the imaging index's) costs tens
        # of milliseconds, which the event loop would spend unable to serve anything else
        if paths is None:
            return await self._connections.read(
                lambda conn: [_loads(row[0]) for row in conn.execute(sql, args).fetchall()]
            )
        chosen = paths
        return await self._connections.read(
            lambda conn: [_projected(chosen, row[0]) for row in conn.execute(sql, args).fetchall()]
        )

    async def purge_expired(self, now: datetime) -> int:
        sql = "DELETE FROM record WHERE expires IS NOT NULL AND expires <= ?"
        moment = epoch(now)
        return await self._jobs.run(lambda conn: conn.execute(sql, (moment,)).rowcount)


def find_sql(*, indexed: bool, after: bool, paths: list[list[str]] | None = None) -> str:
    """The statement of :meth:`SqliteRecords.find`: parameters kind[, idx][, after], now, limit;
    with ``paths``, it selects a JSON array of the values at those paths (SQLite's JSON
    functions read the record in C, the reader thread parses only that array)."""
    where = "kind = ?"
    source = "record"
    if indexed:
        where += " AND idx = ?"
        # Without statistics SQLite walks the primary key (kind, key) for the ORDER BY and
        # filters idx row by row: every record of the kind, per call (50 ms at 50,000).
        source = "record INDEXED BY record_by_idx"
    if after:
        where += " AND key > ?"
    selected = "value"
    if paths is not None:
        # the paths are field names checked by field_paths (letters, digits, underscores)
        picks = ", ".join(
            "json_extract(CAST(value AS TEXT), '$" + "".join(f'."{n}"' for n in path) + "')"
            for path in paths
        )
        selected = f"json_array({picks})"
    return f"SELECT {selected} FROM {source} WHERE {where} AND {_LIVE} ORDER BY key LIMIT ?"


def _projected(paths: list[list[str]], values: str) -> Record:
    out: Record = {}
    for path, found in zip(paths, orjson.loads(values), strict=True):
        if found is not None:
            place_field(out, path, found)
    return out


def _loads(value: bytes) -> Record:
    loaded = orjson.loads(value)
    assert isinstance(loaded, dict)
    return loaded
