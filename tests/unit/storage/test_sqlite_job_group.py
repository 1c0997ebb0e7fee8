"""The job group (storage/sqlite/job_group.py): write jobs queued together share one transaction,
each undone alone if it fails, every caller answered after the COMMIT."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from fhir_server.storage.port import PendingWrites
from fhir_server.storage.sqlite.connections import Connections
from fhir_server.storage.sqlite.group_commit import GroupCommit
from fhir_server.storage.sqlite.index_tables import ParamKeys
from fhir_server.storage.sqlite.job_group import JobGroup


class Held:
    """The writer thread kept busy until :meth:`release`, so that jobs queue up meanwhile."""

    def __init__(self, connections: Connections) -> None:
        self._gate = threading.Event()
        self._busy = threading.Event()
        connections.submit_write(self._hold)
        assert self._busy.wait(10)

    def _hold(self, conn: sqlite3.Connection) -> None:
        self._busy.set()
        self._gate.wait(30)

    def release(self) -> None:
        self._gate.set()


@pytest.fixture
async def connections(tmp_path: Path) -> AsyncIterator[Connections]:
    connections = Connections(tmp_path / "jobs.sqlite3")
    await connections.write(lambda conn: conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY)"))
    yield connections
    connections.close()


def insert(key: str) -> Callable[[sqlite3.Connection], bool]:
    def apply(conn: sqlite3.Connection) -> bool:
        conn.execute("INSERT INTO t (k) VALUES (?)", (key,))
        return conn.in_transaction

    return apply


async def keys(connections: Connections) -> list[str]:
    rows = await connections.read(lambda conn: conn.execute("SELECT k FROM t").fetchall())
    return sorted(k for (k,) in rows)


async def test_jobs_queued_together_commit_in_one_transaction(
    connections: Connections, tmp_path: Path
) -> None:
    jobs = JobGroup(connections.submit_write)
    held = Held(connections)
    first = asyncio.ensure_future(jobs.run(insert("a")))
    await asyncio.sleep(0)

    def sees_the_first(conn: sqlite3.Connection) -> tuple[int, int]:
        # inside the first job's transaction: its row is visible here, not committed yet
        with contextlib.closing(sqlite3.connect(tmp_path / "jobs.sqlite3")) as other:
            elsewhere = other.execute("SELECT count(*) FROM t").fetchone()[0]
        return conn.execute("SELECT count(*) FROM t").fetchone()[0], elsewhere

    second = asyncio.ensure_future(jobs.run(sees_the_first))
    await asyncio.sleep(0)
    held.release()
    assert await first is True
    assert await second == (1, 0)
    assert await keys(connections) == ["a"]


async def test_a_failing_job_is_undone_alone(connections: Connections) -> None:
    jobs = JobGroup(connections.submit_write)
    held = Held(connections)

    def writes_then_fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k) VALUES ('undone')")
        raise ValueError("refused after writing")

    runs = [
        asyncio.ensure_future(jobs.run(job))
        for job in (insert("a"), writes_then_fails, insert("a"), insert("b"))
    ]
    await asyncio.sleep(0)
    held.release()
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    assert outcomes[0] is True and outcomes[3] is True
    assert isinstance(outcomes[1], ValueError)
    assert isinstance(outcomes[2], sqlite3.IntegrityError)  # saw the first job's row
    assert await keys(connections) == ["a", "b"]


async def test_a_job_alone_that_fails_leaves_nothing(connections: Connections) -> None:
    jobs = JobGroup(connections.submit_write)

    def writes_then_fails(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k) VALUES ('undone')")
        raise ValueError("refused after writing")

    with pytest.raises(ValueError, match="refused after writing"):
        await jobs.run(writes_then_fails)
    assert await jobs.run(insert("a")) is True
    assert await keys(connections) == ["a"]


async def test_after_runs_once_committed_and_gives_the_result(connections: Connections) -> None:
    jobs = JobGroup(connections.submit_write)

    def after(conn: sqlite3.Connection, applied: bool) -> tuple[bool, bool, int]:
        committed = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return applied, conn.in_transaction, committed

    assert await jobs.run(insert("a"), after) == (True, False, 1)


async def test_a_transaction_that_fails_as_a_whole_fails_every_job(
    connections: Connections,
) -> None:
    jobs = JobGroup(connections.submit_write)
    held = Held(connections)

    def aborts(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # as SQLite does on an I/O error or a full disk
        raise sqlite3.OperationalError("disk I/O error")

    runs = [asyncio.ensure_future(jobs.run(job)) for job in (insert("a"), aborts, insert("b"))]
    await asyncio.sleep(0)
    held.release()
    outcomes = await asyncio.gather(*runs, return_exceptions=True)
    assert all(isinstance(o, sqlite3.OperationalError) for o in outcomes)
    assert await keys(connections) == []
    assert await jobs.run(insert("c")) is True  # the writer goes on


async def test_a_job_cancelled_while_queued_does_not_run(connections: Connections) -> None:
    jobs = JobGroup(connections.submit_write)
    held = Held(connections)
    cancelled = asyncio.ensure_future(jobs.run(insert("never")))
    kept = asyncio.ensure_future(jobs.run(insert("a")))
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    held.release()
    assert await kept is True
    assert await keys(connections) == ["a"]


async def test_a_shut_down_writer_refuses_new_jobs(tmp_path: Path) -> None:
    connections = Connections(tmp_path / "closed.sqlite3")
    connections.close()
    with pytest.raises(RuntimeError):
        await JobGroup(connections.submit_write).run(insert("a"))


async def test_a_writer_that_cannot_open_its_database_fails_the_jobs(tmp_path: Path) -> None:
    """Not a wait for ever: the queued jobs (and the resources' units, group_commit.py) get
    the error of the connection that could not be opened."""
    connections = Connections(tmp_path / "missing" / "directory" / "x.sqlite3")
    try:
        with pytest.raises(sqlite3.OperationalError, match="unable to open"):
            await asyncio.wait_for(JobGroup(connections.submit_write).run(insert("a")), 10)
        units = GroupCommit(connections, lambda *_: None, ParamKeys(), lambda: None)
        with pytest.raises(sqlite3.OperationalError, match="unable to open"):
            await asyncio.wait_for(units.commit(PendingWrites()), 10)
    finally:
        connections.close()
