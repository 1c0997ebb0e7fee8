"""Group commit: units of work committed at the same time share one SQLite transaction.

A write costs its COMMIT far more than its Python: every transaction appends the pages it
dirtied to the WAL (a new Observation touches about 125 leaf pages of the index tables) and,
under ``synchronous = FULL``, syncs it. So each unit is queued, and the writer thread takes every
unit queued when it gets to run (at most ``max_units`` units and ``max_puts`` puts), applies them
in queue order inside one ``BEGIN IMMEDIATE`` transaction and commits once:

- a unit that raises (``VersionConflict``, ``ConditionalMatch``, anything) is undone alone and its
  caller gets the exception; the other units of the group still commit. A unit of several puts
  is undone with its own ``SAVEPOINT``; a unit of one put refuses before writing, and if it ever
  fails after writing, the group is replayed without it (:meth:`GroupCommit._apply_one`);
- units see the effects of the units queued before them, so two conditional creates with the
  same criteria in one group store one resource; history ``seq`` follows queue order;
- a caller is answered only after COMMIT has returned (a 201 means durable); if the transaction
  fails as a whole (COMMIT itself, or SQLite aborting it), every unit of the group gets the error;
- parameter keys created by the group are remembered only after COMMIT, and never those of an
  undone unit (its savepoint or the replay took them away);
- commit listeners are told once per group.

Nothing waits for a timer: a caller alone is taken as soon as the writer thread is free. While a
COMMIT runs, units arriving meanwhile queue up and form the next group.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from fhir_server.storage.port import PendingWrites
from fhir_server.storage.sqlite.connections import Connections
from fhir_server.storage.sqlite.index_tables import ParamKey, ParamKeys
from fhir_server.storage.sqlite.savepoint import apply_undoable

#: Applies one unit's puts on the writer connection, noting the parameter keys it creates.
ApplyUnit = Callable[[sqlite3.Connection, PendingWrites, dict[ParamKey, int]], None]

MAX_UNITS = 200
MAX_PUTS = 2_000


class _Replay(Exception):
    """An unguarded unit failed after writing: roll back, replay the group without it."""

    def __init__(self, unit: _Unit, error: Exception) -> None:
        super().__init__("unit failed after writing")
        self.unit = unit
        self.error = error


@dataclass(slots=True, eq=False)
class _Unit:
    pending: PendingWrites
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    error: BaseException | None = None


class GroupCommit:
    """The commit queue of one store: ``await commit(pending)`` returns once it is durable."""

    def __init__(
        self,
        connections: Connections,
        apply: ApplyUnit,
        keys: ParamKeys,
        on_committed: Callable[[], None],
        *,
        max_units: int = MAX_UNITS,
        max_puts: int = MAX_PUTS,
    ) -> None:
        self._connections = connections
        self._apply = apply
        self._keys = keys
        self._on_committed = on_committed
        self._max_units = max_units
        self._max_puts = max_puts
        self._queue: deque[_Unit] = deque()  # appended on event loops, taken by the writer

    async def commit(self, pending: PendingWrites) -> None:
        loop = asyncio.get_running_loop()
        unit = _Unit(pending, loop, loop.create_future())
        self._queue.append(unit)
        try:
            # one drain per unit: none is stranded
            self._connections.submit_write(self._drain, self._fail_queued)
        except RuntimeError:  # the writer is shut down
            self._queue.remove(unit)
            raise
        await unit.future

    def _drain(self, conn: sqlite3.Connection) -> None:
        """Writer thread: commit the units queued now as one group (nothing if an earlier
        drain took them) and answer their callers."""
        group = self._take()
        if not group:
            return
        try:
            created = self._run(conn, group)
        except BaseException as exc:  # delivered to every caller of the group, never lost
            for unit in group:
                if unit.error is None:
                    unit.error = exc
        else:
            self._keys.remember(created)
        self._answer(group)

    def _fail_queued(self, error: BaseException) -> None:
        """Writer thread, its connection not opened: every unit queued now gets ``error``."""
        group: list[_Unit] = []
        while taken := self._take():
            group += taken
        for unit in group:
            unit.error = error
        self._answer(group)

    def _take(self) -> list[_Unit]:
        """The next group in queue order, skipping units whose caller gave up waiting."""
        group: list[_Unit] = []
        puts = 0
        while self._queue and len(group) < self._max_units:
            unit = self._queue[0]  # only this thread takes, so the head stays ours
            size = len(unit.pending.puts)
            if group and puts + size > self._max_puts:
                break
            self._queue.popleft()
            if not unit.future.cancelled():
                group.append(unit)
                puts += size
        return group

    def _run(self, conn: sqlite3.Connection, group: list[_Unit]) -> dict[ParamKey, int]:
        """Commit ``group``, returning the parameter keys its committed units created. A unit
        that fails after writing outside a savepoint (see :meth:`_apply_one`) costs a replay:
        the transaction is rolled back and the group runs again without that unit."""
        live = group
        while True:
            try:
                return self._transaction(conn, live)
            except _Replay as replay:
                replay.unit.error = replay.error
                live = [unit for unit in live if unit is not replay.unit]
                for unit in live:
                    unit.error = None

    def _transaction(self, conn: sqlite3.Connection, group: list[_Unit]) -> dict[ParamKey, int]:
        created: dict[ParamKey, int] = {}
        if not group:
            return created
        conn.execute("BEGIN IMMEDIATE")
        try:
            for unit in group:
                self._apply_one(conn, unit, created)
            conn.execute("COMMIT" if any(u.error is None for u in group) else "ROLLBACK")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return created

    def _apply_one(
        self, conn: sqlite3.Connection, unit: _Unit, created: dict[ParamKey, int]
    ) -> None:
        """Apply one unit; if it raises, undo it and keep its error for its caller.

        A unit of several puts runs inside a ``SAVEPOINT``. A unit of one put (nearly all) does
        not: a savepoint copies every page the unit touches (about 15 % of the writer's time),
        and a put refuses (version, condition) before it writes anything. Should one fail after
        writing (``total_changes`` moved), :class:`_Replay` undoes it with the whole
        transaction instead.
        """
        guarded = len(unit.pending.puts) > 1
        unit_created: dict[ParamKey, int] = {}
        changes = conn.total_changes
        error = apply_undoable(
            conn, lambda: self._apply(conn, unit.pending, unit_created), guarded=guarded
        )
        if error is None:
            created.update(unit_created)
        elif not guarded and conn.total_changes != changes:
            raise _Replay(unit, error) from error
        else:
            unit.error = error

    def _answer(self, group: list[_Unit]) -> None:
        """Hand the outcomes to each caller's event loop: one wake-up per loop, the commit
        listeners first (once, on the loop of the first committed unit)."""
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
        for unit in group:
            by_loop.setdefault(unit.loop, []).append(unit)
        notify_on = next((u.loop for u in group if u.error is None), None)
        for loop, units in by_loop.items():
            with suppress(RuntimeError):  # a closed loop: nobody is waiting there any more
                loop.call_soon_threadsafe(self._settle, units, loop is notify_on)

    def _settle(self, units: list[_Unit], notify: bool) -> None:
        try:
            if notify:
                self._on_committed()
        finally:
            for unit in units:
                if unit.future.done():
                    continue
                if unit.error is None:
                    unit.future.set_result(None)
                else:
                    unit.future.set_exception(unit.error)
