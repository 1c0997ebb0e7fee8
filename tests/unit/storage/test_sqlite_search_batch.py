"""Concurrent SQLite searches share one reader call (storage/sqlite/search_batch.py): each
still gets its own answer, or its own error, and sees what was committed before it started."""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.core.errors import FeatureNotSupported
from fhir_server.search.model import Criteria, SortKey, TokenEntry, TokenValue
from fhir_server.storage.port import SearchQuery
from fhir_server.storage.sqlite import SqliteStore
from tests.contract.test_search_contract import CODE, param, put, t

COMPOSITE = param("pair", "composite")


@pytest.fixture
async def store(sqlite_store: SqliteStore) -> SqliteStore:
    return sqlite_store


def _code(value: str) -> Criteria:
    return Criteria(("Patient",), (t(CODE, TokenValue("urn:s", value)),))


async def _ids(store: SqliteStore, criteria: Criteria) -> list[str]:
    return [v.id for v in (await store.search(SearchQuery(criteria, count=10))).entries]


async def test_concurrent_searches_are_read_together_each_with_its_answer(
    store: SqliteStore,
) -> None:
    for n in range(6):
        await put(store, "Patient", f"p{n}", {"code": (TokenEntry("urn:s", f"c{n % 3}"),)})
    reads = 0
    read_soon = store._connections.read_soon

    def counting(fn):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        return read_soon(fn)

    store._searches._read = counting
    alone = [await _ids(store, _code(f"c{n}")) for n in range(4)]
    assert reads == 4
    together = await asyncio.gather(*(_ids(store, _code(f"c{n}")) for n in range(4)))
    assert reads == 5
    assert together == alone == [["p0", "p3"], ["p1", "p4"], ["p2", "p5"], []]


async def test_a_failing_search_fails_alone(store: SqliteStore) -> None:
    await put(store, "Patient", "p1", {"code": (TokenEntry("urn:s", "c1"),)})
    unsortable = SearchQuery(Criteria(("Patient",)), sort=(SortKey(COMPOSITE),), count=10)
    answers = await asyncio.gather(
        _ids(store, _code("c1")),
        store.search(unsortable),
        _ids(store, _code("c1")),
        return_exceptions=True,
    )
    assert answers[0] == answers[2] == ["p1"]
    assert isinstance(answers[1], FeatureNotSupported)


async def test_a_search_sees_what_was_committed_before_it_started(store: SqliteStore) -> None:
    assert await _ids(store, _code("c1")) == []
    await put(store, "Patient", "p1", {"code": (TokenEntry("urn:s", "c1"),)})
    first, second = await asyncio.gather(_ids(store, _code("c1")), _ids(store, _code("c1")))
    assert first == second == ["p1"]


async def test_a_cancelled_search_leaves_the_others_answered(store: SqliteStore) -> None:
    await put(store, "Patient", "p1", {"code": (TokenEntry("urn:s", "c1"),)})
    cancelled = asyncio.ensure_future(_ids(store, _code("c1")))
    kept = asyncio.ensure_future(_ids(store, _code("c1")))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await kept == ["p1"]
    with pytest.raises(asyncio.CancelledError):
        await cancelled
