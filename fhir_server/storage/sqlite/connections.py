"""Thread-bound SQLite connections bridged into asyncio.

sqlite3 is blocking, so every call runs in a thread: one writer thread (SQLite allows one writer
at a time; a single thread also keeps commit order equal to sequence order) and a small pool of
reader threads, each with its own connection (WAL lets them read while the writer writes).
This is the one bridge from the event loop into sqlite3; :meth:`Connections.submit_write` is
its one door that does not wait (the group commit resolves its own futures, group_commit.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from fhir_server.storage.sqlite.schema import Role, configure

T = TypeVar("T")
log = logging.getLogger(__name__)


class Connections:
    def __init__(self, path: Path, *, synchronous: str = "FULL", readers: int = 4) -> None:
        self._path = path
        self._synchronous = synchronous
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self, role: Role) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            configure(conn, self._synchronous, role)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._connection("reader"))

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return fn(self._connection("writer"))

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read, fn)

    def read_soon(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        """:meth:`read` as a future, for a caller that delivers results from a done callback
        instead of a task (search_batch.py)."""
        return asyncio.get_running_loop().run_in_executor(self._readers, self._read, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._write, fn)

    def submit_write(
        self,
        fn: Callable[[sqlite3.Connection], None],
        failed: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Queue ``fn`` on the writer thread without waiting; ``fn`` reports its own outcome
        (an exception escaping it is a bug, logged here). If the writer's connection cannot be
        opened, ``failed(error)`` is called instead, so that the work ``fn`` would have
        answered learns it rather than waiting for ever."""
        self._writer.submit(self._write_or_fail, fn, failed).add_done_callback(_log_failure)

    def _write_or_fail(
        self,
        fn: Callable[[sqlite3.Connection], None],
        failed: Callable[[BaseException], None] | None,
    ) -> None:
        try:
            conn = self._connection("writer")
        except Exception as exc:
            if failed is None:
                raise
            failed(exc)
            return
        fn(conn)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()


def _log_failure(done: Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("SQLite writer job failed", exc_info=done.exception())
