"""Every version of a SQLite data dir in commit order, read-only: the source of
``fhir-server migrate`` (fhir_server/migrate.py).

The storage port pages history newest first, and a copy must replay it oldest first (each
version put over the one before it). ``history.seq`` is the commit order, so this reads the
table directly, on its own read-only connection (``mode=ro``: the copy can never change its
source). A snapshot bound, the highest ``seq`` when the export is opened, fixes what is copied:
a server still writing to the source does not make the copy chase it (run the migration again
afterwards to copy the rest). The records (storage/records.py) that never expire are exported
too, as they are when asked for. Calls are blocking (sqlite3); the migration runs them in a thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import orjson

from fhir_server.storage.port import ResourceVersion
from fhir_server.storage.records import Record
from fhir_server.storage.sqlite.rows import version_from_row

DATABASE = "fhir.sqlite3"
#: A record to copy: kind, key, value and the name of its indexed field (storage/records.py).
RecordRow = tuple[str, str, Record, str | None]
_COLUMNS = "seq, type, id, version, last_updated, method, body"


class NotADataDir(Exception):
    """The path holds no fhir-server SQLite database."""


class HistoryExport:
    def __init__(self, data_dir: Path) -> None:
        path = data_dir / DATABASE
        if not path.is_file():
            raise NotADataDir(f"{data_dir} holds no {DATABASE}: not a fhir-server data dir")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA busy_timeout = 10000")
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'history'"
        ).fetchone()
        if found is None:
            self._conn.close()
            raise NotADataDir(f"{path} has no history table: not a fhir-server database")
        row = self._conn.execute("SELECT coalesce(max(seq), 0) FROM history").fetchone()
        #: The last ``seq`` of the snapshot: later versions are not exported.
        self.bound = int(row[0])

    def close(self) -> None:
        self._conn.close()

    def total(self) -> int:
        """How many versions the snapshot holds."""
        row = self._conn.execute("SELECT count(*) FROM history WHERE seq <= ?", (self.bound,))
        return int(row.fetchone()[0])

    def latest_versions(self) -> dict[tuple[str, str], int]:
        """The last version number of each resource (type, id) in the snapshot."""
        rows = self._conn.execute(
            "SELECT type, id, max(version) FROM history WHERE seq <= ? GROUP BY type, id",
            (self.bound,),
        )
        return {(str(t), str(i)): int(v) for t, i, v in rows}

    def versions_after(self, seq: int, limit: int) -> list[tuple[int, ResourceVersion]]:
        """Up to ``limit`` versions committed after ``seq``, in commit order, with their seq."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM history WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
            (seq, self.bound, limit),
        ).fetchall()
        return [(int(row[0]), version_from_row(*row[1:])) for row in rows]

    def versions(
        self, keys: Iterable[tuple[str, str, int]]
    ) -> dict[tuple[str, str, int], ResourceVersion]:
        """The versions (type, id, version) that exist in the snapshot, by key."""
        found: dict[tuple[str, str, int], ResourceVersion] = {}
        sql = (
            f"SELECT {_COLUMNS} FROM history WHERE type = ? AND id = ? AND version = ? AND seq <= ?"
        )
        for key in keys:
            row = self._conn.execute(sql, (*key, self.bound)).fetchone()
            if row is not None:
                found[key] = version_from_row(*row[1:])
        return found

    def undelivered_events(self) -> int:
        """Outbox events some POST_COMMIT hook of the source has not handled yet (pending or
        waiting for a retry): the migration does not carry them over."""
        row = self._conn.execute(
            "SELECT (SELECT count(*) FROM outbox WHERE seq > "
            "(SELECT coalesce(min(last_seq), (SELECT coalesce(max(seq), 0) FROM outbox)) "
            "FROM outbox_cursor)) + (SELECT count(*) FROM outbox_retry)"
        ).fetchone()
        return int(row[0])

    def lasting_records(self) -> list[RecordRow]:
        """The records without an expiry (users, clients, signing keys), by kind and key; none
        from a database older than the ``record`` table (schema version 4)."""
        found = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'record'"
        ).fetchone()
        if found is None:
            return []
        rows = self._conn.execute(
            "SELECT kind, key, value, field FROM record WHERE expires IS NULL ORDER BY kind, key"
        )
        return [(str(k), str(key), orjson.loads(v), field) for k, key, v, field in rows]
