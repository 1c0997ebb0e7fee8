"""Searches started in the same turn of the event loop, read in one reader-thread call.

A transaction runs the conditional searches of all its entries concurrently (the planner's
prefetch), an HL7 v2 group looks up the orders its messages change: a hundred or more small
searches at once. Each one alone costs a thread hop, a ``BEGIN``/``COMMIT`` and a wake-up of the
event loop, more than its own SQL. Here every search gets a future; the first of a turn schedules
a flush for the end of that turn, and the flush runs all searches gathered by then in one reader
call, one read transaction (each search still sees every commit that finished before it was
started: the snapshot begins after the last of them was asked for). A search that fails gets its
own exception; the others are not affected. A lone search costs one future and one callback more.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable

from fhir_server.storage.port import Page, SearchQuery

#: What one reader call answers: a page or the exception of each search, in order.
Outcomes = asyncio.Future[list[Page | Exception]]
#: Starts ``fn`` with a reader connection in a reader thread (Connections.read_soon).
Reader = Callable[[Callable[[sqlite3.Connection], list[Page | Exception]]], Outcomes]
#: One search on a connection already inside a read transaction.
Runner = Callable[[sqlite3.Connection, SearchQuery], Page]


class SearchBatcher:
    """The store's searches (SqliteStore.search): ``read`` starts a reader call, ``run`` runs
    one search on its connection."""

    def __init__(self, read: Reader, run: Runner) -> None:
        self._read = read
        self._run = run
        self._pending: list[tuple[SearchQuery, asyncio.Future[Page]]] = []

    async def search(self, query: SearchQuery) -> Page:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Page] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        self._pending.append((query, future))
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        queries = [query for query, _ in batch]
        try:
            reading = self._read(lambda conn: self._all(conn, queries))
        except Exception as error:  # e.g. the store is closing
            _deliver_failure(batch, error)
            return
        reading.add_done_callback(lambda done: _deliver(batch, done))

    def _all(self, conn: sqlite3.Connection, queries: list[SearchQuery]) -> list[Page | Exception]:
        outcomes: list[Page | Exception] = []
        conn.execute("BEGIN")  # one snapshot for keys, pages and bodies
        try:
            for query in queries:
                try:
                    outcomes.append(self._run(conn, query))
                except Exception as error:
                    outcomes.append(error)
        finally:
            conn.execute("COMMIT")
        return outcomes


def _deliver(batch: list[tuple[SearchQuery, asyncio.Future[Page]]], done: Outcomes) -> None:
    if done.cancelled():
        _deliver_failure(batch, asyncio.CancelledError())
        return
    error = done.exception()
    if error is not None:
        _deliver_failure(batch, error)
        return
    for (_, future), outcome in zip(batch, done.result(), strict=True):
        if future.done():  # its caller was cancelled meanwhile
            continue
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


def _deliver_failure(
    batch: list[tuple[SearchQuery, asyncio.Future[Page]]], error: BaseException
) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
