"""SQLite group commit (storage/sqlite/group_commit.py), on a real database and real threads.

To make a group deterministically, each test holds the writer thread with a job that waits, queues
its units while the writer is busy, and releases it: the units queued meanwhile are one group.
Commit listeners are told once per group, which is how the tests count groups.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from fhir_server.core.errors import VersionConflict
from fhir_server.search.model import (
    Criteria,
    IndexEntry,
    NumberEntry,
    ResourceIndex,
    TokenEntry,
    TokenValue,
)
from fhir_server.storage.port import ABSENT, ConditionalMatch, HistoryQuery, ResourceVersion
from fhir_server.storage.sqlite import SqliteStore
from tests.contract.test_search_contract import CODE, T0, found, param, t
from tests.contract.test_storage_contract import version


@pytest.fixture
async def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


def groups_of(store: SqliteStore) -> list[int]:
    """A list that grows by one per group committed (commit listeners are told per group)."""
    told: list[int] = []
    store.add_commit_listener(lambda: told.append(1))
    return told


@asynccontextmanager
async def writer_held(store: SqliteStore) -> AsyncIterator[None]:
    """Keep the writer thread busy for the duration of the block."""
    started, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        started.set()
        release.wait(30)

    held = asyncio.ensure_future(store._connections.write(hold))
    await asyncio.to_thread(started.wait, 30)
    try:
        yield
    finally:
        release.set()
        await held


async def in_one_group(store: SqliteStore, *units: Awaitable[None]) -> list[Any]:
    """Queue ``units`` (in order) while the writer is held, then let them commit together."""
    async with writer_held(store):
        tasks = [asyncio.ensure_future(unit) for unit in units]
        for _ in range(3):
            await asyncio.sleep(0)  # every task runs up to its wait for the commit
    return await asyncio.gather(*tasks, return_exceptions=True)


async def create(
    store: SqliteStore, id: str, entries: dict[str, tuple[IndexEntry, ...]] | None = None
) -> None:
    async with store.unit_of_work() as uow:
        uow.put(version("Patient", id, 1), expected_version=ABSENT, interaction="create",
                index=ResourceIndex(entries or {}))  # fmt: skip


async def test_units_queued_together_commit_as_one_group_in_queue_order(
    store: SqliteStore,
) -> None:
    groups = groups_of(store)
    ids = [f"p{n}" for n in range(200)]
    outcomes = await in_one_group(store, *(create(store, id) for id in ids))
    assert outcomes == [None] * 200
    assert len(groups) == 1
    history = await store.history(HistoryQuery("Patient", count=500))
    assert [v.id for v in reversed(history.entries)] == ids  # seq follows the queue


async def test_a_group_is_bounded_and_the_rest_forms_the_next(store: SqliteStore) -> None:
    groups = groups_of(store)
    outcomes = await in_one_group(store, *(create(store, f"p{n}") for n in range(250)))
    assert outcomes == [None] * 250
    assert len(groups) == 2  # 200 units, then 50


async def test_a_version_conflict_in_the_middle_fails_alone(store: SqliteStore) -> None:
    await create(store, "taken")
    groups = groups_of(store)

    async def conflicting() -> None:
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", "taken", 3), expected_version=2, interaction="update")

    async def two_puts_then_conflict() -> None:  # several puts: undone by its savepoint
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", "m", 1), expected_version=ABSENT, interaction="create")
            uow.put(version("Patient", "taken", 1), expected_version=ABSENT, interaction="create")

    outcomes = await in_one_group(
        store,
        create(store, "a"),
        conflicting(),
        create(store, "b"),
        two_puts_then_conflict(),
        create(store, "c"),
    )
    assert [type(o).__name__ for o in outcomes] == [
        "NoneType", "VersionConflict", "NoneType", "VersionConflict", "NoneType",
    ]  # fmt: skip
    assert len(groups) == 1
    assert [await store.read("Patient", id) is not None for id in "abcm"] == [True] * 3 + [False]
    history = await store.history(HistoryQuery("Patient"))
    assert [v.id for v in history.entries] == ["c", "b", "a", "taken"]


async def test_conditional_creates_in_one_group_see_the_earlier_ones(store: SqliteStore) -> None:
    criteria = Criteria(("Patient",), (t(CODE, TokenValue("urn:mrn", "7")),))
    index = ResourceIndex({"code": (TokenEntry("urn:mrn", "7"),)})

    async def conditional(id: str) -> None:
        v = ResourceVersion("Patient", id, 1, T0, "POST", b'{"resourceType":"Patient"}')
        async with store.unit_of_work() as uow:
            uow.put(v, expected_version=ABSENT, interaction="create", index=index,
                    unless_exists=criteria)  # fmt: skip

    outcomes = await in_one_group(store, *(conditional(f"p{n}") for n in range(5)))
    assert outcomes[0] is None
    assert all(isinstance(o, ConditionalMatch) for o in outcomes[1:])
    assert all([m.id for m in o.matches] == ["p0"] for o in outcomes[1:])
    assert await found(store, t(CODE, TokenValue("urn:mrn", "7"))) == {"p0"}


ALPHA, BETA = param("alpha", "token"), param("beta", "token")


async def test_keys_created_by_an_undone_unit_are_not_remembered(store: SqliteStore) -> None:
    """The undone unit creates key ``alpha``; the next unit creates ``beta``, which SQLite
    numbers like the vanished ``alpha``: a remembered ``alpha`` would find ``beta``'s rows."""
    await create(store, "taken")
    mark = {"alpha": (TokenEntry("urn:x", "1"),)}

    async def alpha_then_conflict() -> None:
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", "x", 1), expected_version=ABSENT, interaction="create",
                    index=ResourceIndex(mark))  # fmt: skip
            uow.put(version("Patient", "taken", 9), expected_version=8, interaction="update")

    outcomes = await in_one_group(
        store, alpha_then_conflict(), create(store, "y", {"beta": (TokenEntry("urn:x", "1"),)})
    )
    assert isinstance(outcomes[0], VersionConflict) and outcomes[1] is None
    assert await found(store, t(ALPHA, TokenValue("urn:x", "1"))) == set()
    assert await found(store, t(BETA, TokenValue("urn:x", "1"))) == {"y"}
    await create(store, "z", mark)
    assert await found(store, t(ALPHA, TokenValue("urn:x", "1"))) == {"z"}


async def test_a_unit_failing_after_writing_is_undone_by_a_replay(store: SqliteStore) -> None:
    """One put, no savepoint: a value SQLite cannot store fails it after its version, a new
    key and some index rows were written; the group is replayed without it."""
    groups = groups_of(store)
    too_big: dict[str, tuple[IndexEntry, ...]] = {
        "alpha": (TokenEntry("urn:x", "1"), NumberEntry(10**30))  # not a 64-bit integer
    }
    outcomes = await in_one_group(
        store,
        create(store, "a"),
        create(store, "bad", too_big),
        create(store, "y", {"beta": (TokenEntry("urn:x", "1"),)}),
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], OverflowError)
    assert len(groups) == 1
    assert await store.read("Patient", "bad") is None
    history = await store.history(HistoryQuery("Patient"))
    assert [v.id for v in history.entries] == ["y", "a"]
    assert await found(store, t(ALPHA, TokenValue("urn:x", "1"))) == set()
    assert await found(store, t(BETA, TokenValue("urn:x", "1"))) == {"y"}


async def test_a_failing_commit_fails_every_unit_of_the_group(store: SqliteStore) -> None:
    """A deferred foreign key (checked at COMMIT) set off by one unit makes COMMIT fail."""

    def arm(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TEMP TABLE child (ref INTEGER REFERENCES parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute(
            "CREATE TEMP TRIGGER poison AFTER INSERT ON main.history "
            "WHEN NEW.id = 'poison' BEGIN INSERT INTO child VALUES (1); END"
        )

    await store._connections.write(arm)
    groups = groups_of(store)
    outcomes = await in_one_group(
        store, create(store, "a"), create(store, "poison"), create(store, "b")
    )
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes)
    assert groups == []
    assert [await store.read("Patient", id) for id in ("a", "poison", "b")] == [None] * 3
    await create(store, "c")  # the writer is usable again
    assert (await store.read("Patient", "c")) is not None


async def test_a_caller_is_answered_only_once_its_unit_is_durable(store: SqliteStore) -> None:
    """As soon as each caller is answered, an independent connection must see its version."""
    seen: list[bool] = []

    def visible(id: str) -> bool:
        with sqlite3.connect(store.path) as other:
            row = other.execute(
                "SELECT 1 FROM resource WHERE type = 'Patient' AND id = ?", (id,)
            ).fetchone()
        return row is not None

    async def create_and_look(id: str) -> None:
        await create(store, id)
        seen.append(visible(id))

    await asyncio.gather(*(create_and_look(f"p{n}") for n in range(100)))
    await in_one_group(store, *(create_and_look(f"q{n}") for n in range(50)))
    assert seen == [True] * 150


async def test_a_unit_whose_caller_gave_up_before_its_group_is_not_stored(
    store: SqliteStore,
) -> None:
    async with writer_held(store):
        abandoned = asyncio.ensure_future(create(store, "gone"))
        kept = asyncio.ensure_future(create(store, "kept"))
        await asyncio.sleep(0)
        abandoned.cancel()
    await kept
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert await store.read("Patient", "gone") is None
    assert await store.read("Patient", "kept") is not None


async def test_units_from_another_event_loop_are_answered_there(store: SqliteStore) -> None:
    """A thread with its own loop (as a pynetdicom handler would have) writes meanwhile."""

    def other_loop() -> None:
        asyncio.run(create(store, "elsewhere"))

    await asyncio.gather(
        asyncio.to_thread(other_loop), *(create(store, f"p{n}") for n in range(20))
    )
    assert await store.read("Patient", "elsewhere") is not None
