"""Write jobs committed together: the jobs queued when the writer thread gets to them share one
transaction, so one sync of the WAL makes them all durable.

A DICOM instance is two writes issued at once, its bytes (a row of the blob store's inline tier,
when that tier lives in the resource database) and its record (storage/sqlite/records.py).
Committed apart, they are two syncs; on this project's disks two syncs in parallel cost nearly
as much as two in a row (``docs/performance.md``, dicom_store), one transaction with both rows
hardly more than one of them. So a job is queued, and the writer thread takes every job queued
when it runs (at most ``max_jobs``), applies them in queue order inside one ``BEGIN IMMEDIATE``
transaction and commits once (the resources' units have their own queue, group_commit.py):

- each job of a group of several runs inside a ``SAVEPOINT``: one that raises is undone alone
  and its caller gets the exception, the others still commit; a job alone in its group is undone
  with the whole transaction;
- jobs see the effects of the jobs queued before them (queue order is apply order);
- a caller is answered only after COMMIT has returned; if the transaction fails as a whole
  (COMMIT itself, or SQLite aborting it: I/O error, full disk), every job of the group gets the
  error;
- a job may name an ``after`` step, run on the writer thread once the group has committed,
  outside any transaction (it may begin one of its own); its caller gets what ``after`` returns.

A job issued under :func:`rebuildable` (a write a blob store can rebuild from a segment after
a power failure: filesystem_blob_appends.py) is *relaxed*: a group of relaxed jobs only commits
with ``synchronous = NORMAL`` (no sync of the WAL of its own: an application crash loses
nothing in WAL mode, a power failure at most the last such groups, and the next durable commit,
or the sync before a segment is sealed, makes them durable too). A group with any other job
commits durably, as always.

Nothing waits for a timer: a job alone is taken as soon as the writer thread is free. Jobs issued
together by one task switch of the event loop (``asyncio.gather``) are nearly always queued
before the writer thread wakes up, and commit together; under load, the jobs queued during one
COMMIT form the next group. A caller cancelled while its job is queued takes the job out of the
queue; once the job is taken, the cancellation waits for its outcome (so a commit is never
mistaken for none).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from fhir_server.storage.sqlite.savepoint import apply_undoable
from fhir_server.storage.sqlite.schema import relaxed_sync

#: Queues a function on the writer thread, to be called with the writer's connection, or, if
#: that connection cannot be opened, the second function with the error.
Submit = Callable[[Callable[[sqlite3.Connection], None], Callable[[BaseException], None]], None]
T = TypeVar("T")
R = TypeVar("R")

MAX_JOBS = 200
#: Set by :func:`rebuildable`: jobs issued meanwhile (in tasks created meanwhile) are relaxed.
_REBUILDABLE: ContextVar[bool] = ContextVar("rebuildable_writes", default=False)


@contextlib.contextmanager
def rebuildable() -> Iterator[None]:
    """Jobs issued in this block, and by tasks created in it, are relaxed (module docstring):
    for writes whose every row can be rebuilt after a power failure from data already durable
    elsewhere."""
    token = _REBUILDABLE.set(True)
    try:
        yield
    finally:
        _REBUILDABLE.reset(token)


@dataclass(slots=True, eq=False)
class _Job(Generic[T]):
    apply: Callable[[sqlite3.Connection], T]
    after: Callable[[sqlite3.Connection, T], Any] | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = field(default=None)
    relaxed: bool = False


class JobGroup:
    """The job queue of one SQLite database's writer: ``await run(job)`` returns the job's result
    once it is durable (see the module docstring)."""

    def __init__(self, submit: Submit, *, max_jobs: int = MAX_JOBS) -> None:
        self._submit = submit
        self._max_jobs = max_jobs
        self._queue: deque[_Job[Any]] = deque()  # appended on event loops, taken by the writer

    @overload
    async def run(self, apply: Callable[[sqlite3.Connection], T]) -> T: ...

    @overload
    async def run(
        self, apply: Callable[[sqlite3.Connection], T], after: Callable[[sqlite3.Connection, T], R]
    ) -> R: ...

    async def run(
        self,
        apply: Callable[[sqlite3.Connection], T],
        after: Callable[[sqlite3.Connection, T], R] | None = None,
    ) -> Any:
        """``apply(conn)`` inside the next group's transaction; once committed, ``after(conn,
        result)`` if given. Returns ``after``'s result if given, else ``apply``'s."""
        loop = asyncio.get_running_loop()
        job: _Job[T] = _Job(apply, after, loop, loop.create_future(), relaxed=_REBUILDABLE.get())
        self._queue.append(job)
        try:
            self._submit(self._drain, self._fail_queued)  # one drain per job: none is stranded
        except RuntimeError:  # the writer is shut down
            with suppress(ValueError):
                self._queue.remove(job)
            raise
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            try:
                self._queue.remove(job)  # still queued: it will not run
            except ValueError:  # taken by the writer: wait for its outcome, then give up
                with suppress(BaseException):
                    await job.future
            raise

    def _drain(self, conn: sqlite3.Connection) -> None:
        """Writer thread: commit the jobs queued now as one group (nothing if an earlier drain
        took them), run their ``after`` steps and answer their callers."""
        group: list[_Job[Any]] = []
        while self._queue and len(group) < self._max_jobs:
            try:
                group.append(self._queue.popleft())
            except IndexError:  # a cancelled caller removed the last one meanwhile
                break
        if not group:
            return
        try:
            self._transaction(conn, group)
        except BaseException as exc:  # delivered to every caller of the group, never lost
            for job in group:
                job.error = exc
        for job in group:
            if job.error is None and job.after is not None:
                try:
                    job.result = job.after(conn, job.result)
                except Exception as exc:
                    job.error = exc
        _answer(group)

    def _fail_queued(self, error: BaseException) -> None:
        """Writer thread, its connection not opened: every job queued now gets ``error``."""
        group: list[_Job[Any]] = []
        while self._queue:
            with suppress(IndexError):  # a cancelled caller removed the last one meanwhile
                group.append(self._queue.popleft())
        for job in group:
            job.error = error
        _answer(group)

    def _transaction(self, conn: sqlite3.Connection, group: list[_Job[Any]]) -> None:
        guarded = len(group) > 1
        relaxed = relaxed_sync(conn) if all(j.relaxed for j in group) else contextlib.nullcontext()
        with relaxed:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for job in group:
                    _apply(conn, job, guarded)
                if not guarded and group[0].error is not None:
                    conn.execute("ROLLBACK")
                else:
                    conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise


def _apply(conn: sqlite3.Connection, job: _Job[Any], guarded: bool) -> None:
    """Apply ``job``; if it raises, undo it (its savepoint if ``guarded``; else the caller
    rolls the transaction back) and keep its error."""

    def run() -> None:
        job.result = job.apply(conn)

    job.error = apply_undoable(conn, run, guarded=guarded)


def _answer(group: list[_Job[Any]]) -> None:
    """Hand the outcomes to each caller's event loop: one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job[Any]]] = {}
    for job in group:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, jobs in by_loop.items():
        with suppress(RuntimeError):  # a closed loop: nobody is waiting there any more
            loop.call_soon_threadsafe(_settle, jobs)


def _settle(jobs: list[_Job[Any]]) -> None:
    for job in jobs:
        if job.future.done():
            continue
        if job.error is None:
            job.future.set_result(job.result)
        else:
            job.future.set_exception(job.error)
