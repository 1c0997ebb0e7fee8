"""The storage port's contract: every backend must pass this suite unchanged.

Covers reads, optimistic locking, atomic units of work, tombstones, history and search paging
(stable while writes happen), the outbox with per-hook cursors and retries, and durability.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fhir_server.core.errors import InvalidRequest, VersionConflict
from fhir_server.search.model import Criteria, ParamTest, SearchParamDef, TokenValue
from fhir_server.storage.port import (
    ABSENT,
    HistoryQuery,
    ResourceStore,
    ResourceVersion,
    SearchQuery,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ID = SearchParamDef(
    "_id", "Patient", "token", None, "http://hl7.org/fhir/SearchParameter/Resource-id"
)
PATIENTS = Criteria(("Patient",))


def version(
    type: str, id: str, n: int, *, deleted: bool = False, at: datetime | None = None
) -> ResourceVersion:
    body = None if deleted else f'{{"resourceType":"{type}","id":"{id}","n":{n}}}'.encode()
    method = "DELETE" if deleted else ("POST" if n == 1 else "PUT")
    return ResourceVersion(type, id, n, at or T0 + timedelta(seconds=n), method, body)


async def put(store: ResourceStore, v: ResourceVersion, expected: int | None = None) -> None:
    async with store.unit_of_work() as uow:
        uow.put(v, expected_version=expected if expected is not None else v.version - 1,
                interaction="create" if v.version == 1 else "update")  # fmt: skip


async def test_read_returns_the_current_version(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))
    await put(store, version("Patient", "a", 2))
    current = await store.read("Patient", "a")
    assert current is not None
    assert current.version == 2
    assert current.body == version("Patient", "a", 2).body
    assert current.last_updated == T0 + timedelta(seconds=2)
    assert await store.read("Patient", "b") is None
    assert await store.read("Observation", "a") is None


async def test_vread_returns_each_version(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))
    await put(store, version("Patient", "a", 2))
    first = await store.vread("Patient", "a", 1)
    assert first is not None and first.body == version("Patient", "a", 1).body
    assert first.method == "POST"
    assert await store.vread("Patient", "a", 3) is None


async def test_expected_version_mismatch_stores_nothing(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))
    with pytest.raises(VersionConflict):
        await put(store, version("Patient", "a", 1), expected=ABSENT)
    with pytest.raises(VersionConflict):
        await put(store, version("Patient", "a", 3), expected=2)
    current = await store.read("Patient", "a")
    assert current is not None and current.version == 1


async def test_cn4_1_4_unit_of_work_is_atomic(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))
    hook_events = await store.pending_events("contract", 100, T0)
    with pytest.raises(VersionConflict):
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", "b", 1), expected_version=ABSENT, interaction="create")
            uow.put(version("Patient", "a", 2), expected_version=5, interaction="update")
    assert await store.read("Patient", "b") is None
    assert (await store.read("Patient", "a")).version == 1  # type: ignore[union-attr]
    assert await store.pending_events("contract", 100, T0) == hook_events


async def test_exception_inside_unit_discards_everything(store: ResourceStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", "a", 1), expected_version=ABSENT, interaction="create")
            raise RuntimeError("boom")
    assert await store.read("Patient", "a") is None


async def test_cn3_5_tombstone_keeps_history(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))
    await put(store, version("Patient", "a", 2, deleted=True))
    current = await store.read("Patient", "a")
    assert current is not None and current.deleted and current.version == 2
    page = await store.history(HistoryQuery("Patient", "a"))
    assert [(v.version, v.deleted) for v in page.entries] == [(2, True), (1, False)]
    await put(store, version("Patient", "a", 3))
    assert not (await store.read("Patient", "a")).deleted  # type: ignore[union-attr]


async def test_history_levels_since_and_order(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))
    await put(store, version("Observation", "o", 1))
    await put(store, version("Patient", "a", 2))
    system = await store.history(HistoryQuery())
    assert [(v.resource_type, v.version) for v in system.entries] == [
        ("Patient", 2), ("Observation", 1), ("Patient", 1)
    ]  # fmt: skip
    by_type = await store.history(HistoryQuery("Patient"))
    assert [v.version for v in by_type.entries] == [2, 1]
    since = await store.history(HistoryQuery(since=T0 + timedelta(seconds=2)))
    assert [(v.resource_type, v.version) for v in since.entries] == [("Patient", 2)]


async def test_history_paging_is_stable_while_writes_happen(store: ResourceStore) -> None:
    for n in range(1, 6):
        await put(store, version("Patient", "a", n))
    first = await store.history(HistoryQuery("Patient", "a", count=2))
    assert [v.version for v in first.entries] == [5, 4] and first.next_cursor
    await put(store, version("Patient", "a", 6))  # a write between two pages
    second = await store.history(HistoryQuery("Patient", "a", count=2, cursor=first.next_cursor))
    assert [v.version for v in second.entries] == [3, 2]
    third = await store.history(HistoryQuery("Patient", "a", count=2, cursor=second.next_cursor))
    assert [v.version for v in third.entries] == [1]
    assert third.next_cursor is None


async def test_bad_cursor_is_a_clear_error(store: ResourceStore) -> None:
    with pytest.raises(InvalidRequest, match="cursor"):
        await store.history(HistoryQuery(cursor="not-a-cursor"))
    with pytest.raises(InvalidRequest, match="cursor"):
        await store.search(SearchQuery(PATIENTS, cursor="e30"))  # '{}' without a key


async def test_search_lists_current_resources_with_paging(store: ResourceStore) -> None:
    for id in ("c", "a", "d", "b"):
        await put(store, version("Patient", id, 1))
    await put(store, version("Patient", "d", 2, deleted=True))
    await put(store, version("Observation", "x", 1))
    assert await store.count(PATIENTS) == 3
    first = await store.search(SearchQuery(PATIENTS, count=2))
    assert [v.id for v in first.entries] == ["c", "a"]  # creation order
    assert first.previous_cursor is None
    await put(store, version("Patient", "aa", 1))  # created after: shows up on a later page
    await put(store, version("Patient", "c", 2, deleted=True))  # already shown: no shift
    second = await store.search(SearchQuery(PATIENTS, count=2, cursor=first.next_cursor))
    assert [v.id for v in second.entries] == ["b", "aa"] and second.next_cursor is None
    ids = tuple(TokenValue(None, id) for id in ("b", "d", "zz"))
    by_id = await store.search(SearchQuery(Criteria(("Patient",), (ParamTest(ID, None, ids),))))
    assert [v.id for v in by_id.entries] == ["b"]
    assert await store.count(PATIENTS) == 3


async def test_outbox_delivers_each_committed_change_once_per_hook(store: ResourceStore) -> None:
    await put(store, version("Patient", "before", 1))
    assert await store.pending_events("audit", 10, T0) == []  # a new hook starts after it
    assert await store.pending_events("notify", 10, T0) == []
    await put(store, version("Patient", "a", 1))
    await put(store, version("Patient", "a", 2))
    events = await store.pending_events("audit", 10, T0)
    assert [(e.id, e.version, e.interaction) for e in events] == [
        ("a", 1, "create"), ("a", 2, "update")
    ]  # fmt: skip
    await store.mark_handled("audit", events[0].seq)
    assert [e.version for e in await store.pending_events("audit", 10, T0)] == [2]
    assert len(await store.pending_events("notify", 10, T0)) == 2  # hooks are independent


async def test_outbox_retries_failed_deliveries(store: ResourceStore) -> None:
    await store.pending_events("audit", 10, T0)
    await put(store, version("Patient", "a", 1))
    [event] = await store.pending_events("audit", 10, T0)
    await store.mark_failed("audit", event.seq, T0 + timedelta(minutes=1), "boom")
    assert await store.pending_events("audit", 10, T0) == []
    [again] = await store.pending_events("audit", 10, T0 + timedelta(minutes=1))
    assert again.seq == event.seq and again.attempts == 1
    await store.mark_handled("audit", again.seq)
    assert await store.pending_events("audit", 10, T0 + timedelta(hours=1)) == []


async def test_outbox_marks_a_relay_pass_handled_at_once(store: ResourceStore) -> None:
    """The relay marks what one pass delivered in one write: retried and fresh events alike;
    nothing marked is offered again, an empty mark changes nothing."""
    await store.pending_events("audit", 10, T0)
    await put(store, version("Patient", "a", 1))
    [first] = await store.pending_events("audit", 10, T0)
    await store.mark_failed("audit", first.seq, T0, "boom")
    for n in range(2, 5):
        await put(store, version("Patient", "a", n))
    events = await store.pending_events("audit", 10, T0)
    assert [e.version for e in events] == [1, 2, 3, 4] and events[0].attempts == 1
    await store.mark_handled("audit")
    assert len(await store.pending_events("audit", 10, T0)) == 4
    await store.mark_handled("audit", *(e.seq for e in events[:3]))
    assert [e.version for e in await store.pending_events("audit", 10, T0)] == [4]


async def test_concurrent_writers_cannot_both_win(store: ResourceStore) -> None:
    await put(store, version("Patient", "a", 1))

    async def attempt() -> bool:
        try:
            await put(store, version("Patient", "a", 2), expected=1)
        except VersionConflict:
            return False
        return True

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    assert results.count(True) == 1
    page = await store.history(HistoryQuery("Patient", "a"))
    assert [v.version for v in page.entries] == [2, 1]


async def test_commit_listeners_are_told(store: ResourceStore) -> None:
    told: list[int] = []
    store.add_commit_listener(lambda: told.append(1))
    await put(store, version("Patient", "a", 1))
    assert told == [1]


async def test_data_survives_reopening(
    backend: Callable[[Path], ResourceStore], tmp_path: Path
) -> None:
    first = backend(tmp_path / "durable")
    await first.open()
    await put(first, version("Patient", "a", 1))
    await first.close()
    second = backend(tmp_path / "durable")
    await second.open()
    try:
        current = await second.read("Patient", "a")
        assert current is not None and current.body == version("Patient", "a", 1).body
    finally:
        await second.close()
