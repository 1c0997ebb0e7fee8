"""The search contract, continued: sorting, keyset paging, count and conditional puts.

Backend-neutral like test_search_contract.py (whose helpers it uses): paging must never skip or
repeat a row while other resources are created or deleted between pages, and ``unless_exists``
must be race-free (the storage port's answer to duplicate conditional creates).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import orjson
import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import (
    Criteria,
    DateEntry,
    ResourceIndex,
    SortKey,
    StringEntry,
    TokenEntry,
    TokenValue,
)
from fhir_server.search.values import date_bounds
from fhir_server.storage.port import ConditionalMatch, ResourceStore, ResourceVersion, SearchQuery
from tests.contract.test_search_contract import (
    BIRTH,
    CODE,
    ID,
    NAME,
    T0,
    Entries,
    dv,
    found,
    param,
    put,
    t,
)

SORT_ROWS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "s1": (("2020",), "b"),
    "s2": (("2021",), "a"),
    "s3": (("2020",), "a"),
    "s4": ((), "c"),
    "s5": (("2021",), None),
    "s6": (("2019", "2022"), "z"),
}


async def _sort_corpus(store: ResourceStore) -> None:
    for id, (dates, name) in SORT_ROWS.items():
        entries: Entries = {"birthdate": tuple(DateEntry(*date_bounds(d)) for d in dates)}
        if name is not None:
            entries["name"] = (StringEntry(name, name.upper()),)
        await put(store, "Patient", id, entries)


async def _sorted(store: ResourceStore, sort: tuple[SortKey, ...], count: int = 100) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.search(SearchQuery(Criteria(("Patient",)), sort, count, cursor))
        ids += [v.id for v in page.entries]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


@pytest.mark.parametrize("count", [100, 2, 1])
async def test_sort_two_keys_with_missing_values_last(store: ResourceStore, count: int) -> None:
    await _sort_corpus(store)
    ascending = (SortKey(BIRTH), SortKey(NAME))
    assert await _sorted(store, ascending, count) == ["s6", "s3", "s1", "s2", "s5", "s4"]
    descending = (SortKey(BIRTH, True), SortKey(NAME, True))
    assert await _sorted(store, descending, count) == ["s6", "s2", "s5", "s1", "s3", "s4"]
    by_id = (SortKey(ID, True),)
    assert await _sorted(store, by_id, count) == ["s6", "s5", "s4", "s3", "s2", "s1"]
    by_name = (SortKey(NAME),)
    assert await _sorted(store, by_name, count) == [
        "s2",
        "s3",
        "s1",
        "s4",
        "s6",
        "s5",
    ]  # ties: creation


async def test_paging_next_and_previous_while_rows_change(store: ResourceStore) -> None:
    for n in range(1, 8):
        await put(store, "Patient", f"p{n}")

    async def page(cursor: str | None) -> tuple[list[str], str | None, str | None]:
        result = await store.search(SearchQuery(Criteria(("Patient",)), count=3, cursor=cursor))
        return [v.id for v in result.entries], result.previous_cursor, result.next_cursor

    first, previous, after_first = await page(None)
    assert first == ["p1", "p2", "p3"] and previous is None and after_first
    await put(store, "Patient", "p8")
    await put(store, "Patient", "p2", deleted=True)
    second, back, after_second = await page(after_first)
    assert second == ["p4", "p5", "p6"] and back and after_second
    await put(store, "Patient", "p5", deleted=True)
    third, back_from_third, end = await page(after_second)
    assert third == ["p7", "p8"] and end is None and back_from_third
    again, earliest, forward = await page(back_from_third)
    assert again == ["p3", "p4", "p6"] and earliest and forward
    start, none_before, forward_from_start = await page(earliest)
    assert start == ["p1"] and none_before is None
    assert (await page(forward_from_start))[0] == ["p3", "p4", "p6"]
    assert (await page(forward))[0] == ["p7", "p8"]
    await put(store, "Patient", "p7", deleted=True)
    await put(store, "Patient", "p8", deleted=True)
    empty, back_from_empty, nothing = await page(after_second)
    assert empty == [] and nothing is None and back_from_empty
    assert (await page(back_from_empty))[0] == ["p3", "p4", "p6"]


async def test_sorted_paging_with_inserts_before_and_after_the_cursor(store: ResourceStore) -> None:
    for name in ("b", "d", "f", "h"):
        await put(store, "Patient", name, {"name": (StringEntry(name, name),)})
    query = SearchQuery(Criteria(("Patient",)), (SortKey(NAME),), count=2)
    first = await store.search(query)
    assert [v.id for v in first.entries] == ["b", "d"]
    await put(store, "Patient", "a", {"name": (StringEntry("a", "a"),)})  # before: not shown
    await put(store, "Patient", "e", {"name": (StringEntry("e", "e"),)})  # after: shown
    second = await store.search(SearchQuery(query.criteria, query.sort, 2, first.next_cursor))
    assert [v.id for v in second.entries] == ["e", "f"]
    back = await store.search(SearchQuery(query.criteria, query.sort, 2, second.previous_cursor))
    assert [v.id for v in back.entries] == ["b", "d"] and back.previous_cursor  # "a" precedes


async def test_count_zero_count_and_bad_cursors(store: ResourceStore) -> None:
    for n in range(3):
        await put(store, "Patient", f"p{n}", {"code": (TokenEntry(None, "x" if n else "y"),)})
    criteria = Criteria(("Patient",), (t(CODE, TokenValue(None, "x")),))
    assert await store.count(criteria) == 2
    assert await store.count(Criteria(())) == 3
    empty = await store.search(SearchQuery(criteria, count=0))
    assert list(empty.entries) == [] and empty.next_cursor is None and empty.previous_cursor is None
    first = await store.search(SearchQuery(criteria, count=1))
    assert first.next_cursor is not None
    with pytest.raises(InvalidRequest, match="cursor"):  # a cursor of another _sort
        await store.search(SearchQuery(criteria, (SortKey(NAME),), 1, first.next_cursor))
    with pytest.raises(InvalidRequest, match="cursor"):
        await store.search(SearchQuery(criteria, cursor=first.next_cursor[:-3] + "x!x"))


async def test_update_and_delete_change_what_matches(store: ResourceStore) -> None:
    await put(store, "Patient", "a", {"code": (TokenEntry(None, "old"),)})
    await put(store, "Patient", "a", {"code": (TokenEntry(None, "new"),)})
    assert await found(store, t(CODE, TokenValue(None, "old"))) == set()
    assert await found(store, t(CODE, TokenValue(None, "new"))) == {"a"}
    await put(store, "Patient", "a", deleted=True)
    assert await found(store, t(CODE, TokenValue(None, "new"))) == set()
    assert await store.count(Criteria(("Patient",))) == 0
    await put(store, "Patient", "a", {"code": (TokenEntry(None, "again"),)})
    assert await found(store, t(CODE, TokenValue(None, "again"))) == {"a"}


async def test_search_across_types_and_last_updated(store: ResourceStore) -> None:
    await put(store, "Patient", "p", {"code": (TokenEntry(None, "x"),)})
    await put(store, "Observation", "o", {"code": (TokenEntry(None, "x"),)})
    await put(store, "Observation", "other", {"code": (TokenEntry(None, "y"),)})
    assert await found(store, t(CODE, TokenValue(None, "x")), types=()) == {"p", "o"}
    assert await found(store, t(CODE, TokenValue(None, "x")), types=("Patient", "Observation")) == {
        "p",
        "o",
    }
    last_updated = param("_lastUpdated", "date", "Resource")
    at = T0 + timedelta(seconds=1)  # every version 1 of put() is stamped T0 + 1 s
    assert await found(
        store, t(last_updated, dv("eq", at.strftime("%Y-%m-%dT%H:%M:%SZ"))), types=()
    ) == {"p", "o", "other"}


def _guarded(id: str, identifier: str) -> tuple[ResourceVersion, ResourceIndex, Criteria]:
    body = orjson.dumps({"resourceType": "Patient", "id": id})
    version = ResourceVersion("Patient", id, 1, T0, "POST", body)
    index = ResourceIndex({"code": (TokenEntry("urn:mrn", identifier),)})
    return version, index, Criteria(("Patient",), (t(CODE, TokenValue("urn:mrn", identifier)),))


async def test_unless_exists_refuses_a_match_and_stores_nothing(store: ResourceStore) -> None:
    version, index, criteria = _guarded("a", "42")
    async with store.unit_of_work() as uow:
        uow.put(
            version, expected_version=0, interaction="create", index=index, unless_exists=criteria
        )
    second, _, _ = _guarded("b", "42")
    with pytest.raises(ConditionalMatch) as caught:
        async with store.unit_of_work() as uow:
            uow.put(
                second,
                expected_version=0,
                interaction="create",
                index=index,
                unless_exists=criteria,
            )
    assert [m.id for m in caught.value.matches] == ["a"]
    assert await store.read("Patient", "b") is None
    first, index_43, criteria_43 = _guarded("c", "43")
    then, _, _ = _guarded("d", "43")
    with pytest.raises(ConditionalMatch):  # a put earlier in the same unit counts
        async with store.unit_of_work() as uow:
            uow.put(first, expected_version=0, interaction="create", index=index_43)
            uow.put(
                then,
                expected_version=0,
                interaction="create",
                index=index_43,
                unless_exists=criteria_43,
            )
    assert await store.read("Patient", "c") is None and await store.read("Patient", "d") is None


async def test_concurrent_conditional_creates_store_exactly_one(store: ResourceStore) -> None:
    async def attempt(n: int) -> bool:
        version, index, criteria = _guarded(f"p{n}", "same")
        try:
            async with store.unit_of_work() as uow:
                uow.put(
                    version,
                    expected_version=0,
                    interaction="create",
                    index=index,
                    unless_exists=criteria,
                )
        except ConditionalMatch:
            return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(50)))
    assert results.count(True) == 1
    assert await store.count(Criteria(("Patient",))) == 1
