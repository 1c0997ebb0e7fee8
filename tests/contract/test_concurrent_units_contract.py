"""The storage contract under concurrency: many units of work committed at once.

A backend may commit concurrent units together (SQLite does: group_commit.py), but each unit
keeps its own outcome: all of them land, a unit that conflicts fails alone, and conditional
creates with the same criteria store exactly one resource, whoever wins.
"""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.core.errors import VersionConflict
from fhir_server.search.model import Criteria, ResourceIndex, TokenEntry, TokenValue
from fhir_server.storage.port import (
    ABSENT,
    ConditionalMatch,
    HistoryQuery,
    ResourceStore,
    ResourceVersion,
)
from tests.contract.test_search_contract import CODE, T0, found, t
from tests.contract.test_storage_contract import version


async def create(store: ResourceStore, id: str, code: str = "x") -> None:
    index = ResourceIndex({"code": (TokenEntry("urn:test", code),)})
    async with store.unit_of_work() as uow:
        uow.put(version("Patient", id, 1), expected_version=ABSENT, interaction="create",
                index=index)  # fmt: skip


async def test_two_hundred_concurrent_units_all_commit(store: ResourceStore) -> None:
    ids = [f"p{n}" for n in range(200)]
    await asyncio.gather(*(create(store, id, code=id) for id in ids))
    for id in ids:
        current = await store.read("Patient", id)
        assert current is not None and current.body == version("Patient", id, 1).body
    assert await found(store, t(CODE, TokenValue("urn:test", "p137"))) == {"p137"}
    page = await store.history(HistoryQuery("Patient", count=500))
    assert sorted(v.id for v in page.entries) == sorted(ids)


async def test_a_conflicting_unit_among_concurrent_ones_fails_alone(store: ResourceStore) -> None:
    await create(store, "taken")

    async def conflicting() -> None:
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", "taken", 1), expected_version=ABSENT, interaction="create")

    outcomes = await asyncio.gather(
        *(create(store, f"p{n}") for n in range(20)),
        conflicting(),
        *(create(store, f"q{n}") for n in range(20)),
        return_exceptions=True,
    )
    assert [type(o) for o in outcomes].count(VersionConflict) == 1
    assert isinstance(outcomes[20], VersionConflict)
    assert all(o is None for i, o in enumerate(outcomes) if i != 20)
    assert len(await found(store, t(CODE, TokenValue("urn:test", "x")))) == 41
    taken = await store.read("Patient", "taken")
    assert taken is not None and taken.version == 1


async def test_two_concurrent_conditional_creates_store_one(store: ResourceStore) -> None:
    criteria = Criteria(("Patient",), (t(CODE, TokenValue("urn:mrn", "7")),))
    index = ResourceIndex({"code": (TokenEntry("urn:mrn", "7"),)})

    async def attempt(id: str) -> str:
        v = ResourceVersion("Patient", id, 1, T0, "POST", b'{"resourceType":"Patient"}')
        try:
            async with store.unit_of_work() as uow:
                uow.put(v, expected_version=ABSENT, interaction="create", index=index,
                        unless_exists=criteria)  # fmt: skip
        except ConditionalMatch as refused:
            assert [m.id for m in refused.matches] in (["a"], ["b"])
            return "refused"
        return "stored"

    assert sorted(await asyncio.gather(attempt("a"), attempt("b"))) == ["refused", "stored"]
    assert await store.count(criteria) == 1


@pytest.mark.parametrize("position", [0, 5, 9])
async def test_a_failing_unit_stores_none_of_its_puts(store: ResourceStore, position: int) -> None:
    await create(store, "taken")

    async def two_puts(n: int) -> None:
        async with store.unit_of_work() as uow:
            uow.put(version("Patient", f"m{n}", 1), expected_version=ABSENT, interaction="create")
            if n == position:  # the second put conflicts: the first must not be stored either
                uow.put(version("Patient", "taken", 2), expected_version=7, interaction="update")

    outcomes = await asyncio.gather(*(two_puts(n) for n in range(10)), return_exceptions=True)
    assert isinstance(outcomes[position], VersionConflict)
    assert await store.read("Patient", f"m{position}") is None
    stored = [await store.read("Patient", f"m{n}") for n in range(10)]
    assert sum(v is not None for v in stored) == 9
