"""The SQLite outbox marks (storage/sqlite/outbox.py): a relay's mark is committed without its
own fsync, and the writer connection is durable again for everything after it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.outbox import handled
from tests.contract.test_search_contract import T0, put


@pytest.fixture
async def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


async def _synchronous(store: SqliteStore) -> int:
    return int(
        await store._connections.write(
            lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]
        )
    )


async def test_a_mark_leaves_the_writer_durable(store: SqliteStore) -> None:
    assert await _synchronous(store) == 2  # FULL
    await store.pending_events("hook", 10, T0)  # registers the hook's cursor
    await put(store, "Patient", "p1")
    await put(store, "Patient", "p2")
    events = await store.pending_events("hook", 10, T0)
    assert [e.id for e in events] == ["p1", "p2"]
    await store.mark_handled("hook", events[0].seq)
    assert await _synchronous(store) == 2
    assert [e.id for e in await store.pending_events("hook", 10, T0)] == ["p2"]


def test_a_failed_mark_rolls_back_and_restores_the_level(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    with pytest.raises(sqlite3.OperationalError):
        handled(conn, "hook", [1])  # no outbox tables here
    assert not conn.in_transaction
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    conn.execute("PRAGMA synchronous = OFF")
    with pytest.raises(sqlite3.OperationalError):
        handled(conn, "hook", [1])
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 0
