"""The record port's contract (fhir_server/storage/records.py), run unchanged on every backend
of the storage contract (tests/contract/conftest.py): SQLite and MongoDB (mongoeco, or the
MongoDB of FHIR_SERVER_TEST_MONGODB_URL)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fhir_server.storage.port import ResourceStore
from fhir_server.storage.records import Record, RecordPut, RecordStore


def later(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


@pytest.fixture
def records(store: ResourceStore) -> RecordStore:
    return store.records


async def test_put_then_get_then_replace(records: RecordStore) -> None:
    assert await records.get("client", "c1") is None
    assert await records.put("client", "c1", {"name": "one"}) is True
    assert await records.get("client", "c1") == {"name": "one"}
    assert await records.put("client", "c1", {"name": "two"}) is True  # replaces
    assert await records.get("client", "c1") == {"name": "two"}
    assert await records.get("client", "c2") is None


async def test_if_absent_stores_only_when_no_live_record_is_there(records: RecordStore) -> None:
    assert await records.put("code", "k", {"n": 1}, if_absent=True) is True
    assert await records.put("code", "k", {"n": 2}, if_absent=True) is False
    assert await records.get("code", "k") == {"n": 1}
    await records.put("code", "e", {"n": 1}, expires=later(seconds=-5))
    assert await records.put("code", "e", {"n": 2}, if_absent=True, expires=later(hours=1))
    assert await records.get("code", "e") == {"n": 2}
    await records.put("code", "f", {"n": 1}, expires=later(hours=1))
    assert await records.put("code", "f", {"n": 2}, if_absent=True) is False
    assert await records.get("code", "f") == {"n": 1}


async def test_an_expired_record_is_as_if_absent(records: RecordStore) -> None:
    await records.put("token", "old", {"v": "1"}, expires=later(seconds=-1), index="v")
    await records.put("token", "new", {"v": 2}, expires=later(hours=1))
    assert await records.get("token", "old") is None
    assert await records.take("token", "old") is None
    assert await records.find("token") == [{"v": 2}]
    assert await records.delete("token", "old") is False  # removed, but it was not live
    assert await records.get("token", "new") == {"v": 2}


async def test_index_field_must_be_a_top_level_string(records: RecordStore) -> None:
    with pytest.raises(ValueError, match="user"):
        await records.put("grant", "g", {"user": 7}, index="user")
    with pytest.raises(ValueError, match="user"):
        await records.put("grant", "g", {"sub": "u"}, index="user")
    assert await records.get("grant", "g") is None


async def test_take_removes_and_returns_once(records: RecordStore) -> None:
    await records.put("code", "k", {"client": "c"})
    assert await records.take("code", "k") == {"client": "c"}
    assert await records.take("code", "k") is None
    assert await records.get("code", "k") is None


async def test_concurrent_takes_of_one_key_give_it_to_exactly_one(records: RecordStore) -> None:
    await records.put("code", "once", {"client": "c"}, expires=later(minutes=5))
    taken = await asyncio.gather(*(records.take("code", "once") for _ in range(20)))
    assert [t for t in taken if t is not None] == [{"client": "c"}]


async def test_concurrent_if_absent_puts_store_exactly_one(records: RecordStore) -> None:
    results = await asyncio.gather(
        *(records.put("jti", "j", {"n": n}, if_absent=True) for n in range(20))
    )
    assert results.count(True) == 1
    stored = await records.get("jti", "j")
    assert stored == {"n": results.index(True)}


async def test_concurrent_if_absent_puts_over_an_expired_record_store_one(
    records: RecordStore,
) -> None:
    await records.put("jti", "j", {"n": -1}, expires=later(seconds=-1))
    results = await asyncio.gather(
        *(records.put("jti", "j", {"n": n}, if_absent=True) for n in range(10))
    )
    assert results.count(True) == 1
    assert await records.get("jti", "j") == {"n": results.index(True)}


async def test_delete_says_whether_a_live_record_was_there(records: RecordStore) -> None:
    await records.put("user", "u", {"name": "a"})
    assert await records.delete("user", "u") is True
    assert await records.delete("user", "u") is False
    assert await records.get("user", "u") is None


async def test_find_lists_live_records_in_key_order_by_index_value(records: RecordStore) -> None:
    grants: dict[str, Record] = {
        "g3": {"user": "alice", "n": 3},
        "g1": {"user": "alice", "n": 1},
        "g2": {"user": "bob", "n": 2},
        "g4": {"user": "alice", "n": 4},
    }
    for key, value in grants.items():
        await records.put("grant", key, value, index="user")
    await records.put(
        "grant", "g0", {"user": "alice", "n": 0}, index="user", expires=later(seconds=-1)
    )
    await records.put("grant", "g5", {"user": "alice", "n": 5})  # not indexed
    assert await records.find("grant", "alice") == [grants["g1"], grants["g3"], grants["g4"]]
    assert await records.find("grant", "bob") == [grants["g2"]]
    assert await records.find("grant", "carol") == []
    assert [r["n"] for r in await records.find("grant")] == [1, 2, 3, 4, 5]
    assert [r["n"] for r in await records.find("grant", limit=2)] == [1, 2]
    assert [r["n"] for r in await records.find("grant", "alice", limit=2)] == [1, 3]
    assert await records.find("grant", limit=0) == []
    await records.put("grant", "g1", {"user": "bob", "n": 1}, index="user")  # re-indexed
    assert [r["n"] for r in await records.find("grant", "bob")] == [1, 2]


async def test_key_order_is_by_code_point(records: RecordStore) -> None:
    keys = ["b", "a", "B", "aa", "é", "0", "z"]
    for key in keys:
        await records.put("k", key, {"key": key})
    assert [r["key"] for r in await records.find("k")] == sorted(keys)


async def test_purge_expired_removes_only_expired_records(records: RecordStore) -> None:
    now = datetime.now(UTC)
    await records.put("code", "a", {"n": 1}, expires=now - timedelta(minutes=1))
    await records.put("token", "b", {"n": 2}, expires=now - timedelta(seconds=1))
    await records.put("code", "c", {"n": 3}, expires=now + timedelta(minutes=1))
    await records.put("user", "d", {"n": 4})
    assert await records.purge_expired(now) == 2
    assert await records.purge_expired(now) == 0
    assert await records.get("code", "c") == {"n": 3}
    assert await records.get("user", "d") == {"n": 4}
    assert await records.purge_expired(now + timedelta(minutes=2)) == 1  # "c" by then
    assert await records.get("user", "d") == {"n": 4}


async def test_json_values_round_trip(records: RecordStore) -> None:
    value: Record = {
        "name": "Zoë Ωmega 患者 🩺",
        "nested": {"list": [1, 2.5, None, True, False, {"deep": ["x"]}], "empty": {}},
        "big": 2**62,
        "negative": -17,
        "dotted.key": "ok",
        "$dollar": "ok",
        'quote"and\\back': "line\nbreak\ttab\u0000nul",
    }
    await records.put("client", "c", value)
    assert await records.get("client", "c") == value
    assert await records.find("client") == [value]
    assert await records.take("client", "c") == value


async def test_kinds_are_isolated(records: RecordStore) -> None:
    await records.put("user", "same", {"kind": "user"}, index="kind")
    await records.put("client", "same", {"kind": "client"}, index="kind")
    assert await records.get("user", "same") == {"kind": "user"}
    assert await records.find("client") == [{"kind": "client"}]
    assert await records.find("user", "client") == []
    assert await records.take("client", "same") == {"kind": "client"}
    assert await records.get("user", "same") == {"kind": "user"}
    assert await records.delete("client", "same") is False
    assert await records.find("user") == [{"kind": "user"}]


async def test_records_do_not_appear_as_resources(store: ResourceStore) -> None:
    from fhir_server.storage.port import HistoryQuery

    await store.records.put("user", "u", {"name": "a"})
    page = await store.history(HistoryQuery())
    assert list(page.entries) == []


async def test_records_survive_close_and_reopen(
    backend: Callable[[Path], ResourceStore], tmp_path: Path
) -> None:
    first = backend(tmp_path / "kept")
    await first.open()
    try:
        await first.records.put("key", "k1", {"kid": "k1"}, index="kid")
        await first.records.put("code", "c", {"n": 1}, expires=later(hours=1))
    finally:
        await first.close()
    second = backend(tmp_path / "kept")
    await second.open()
    try:
        assert await second.records.get("key", "k1") == {"kid": "k1"}
        assert await second.records.find("key", "k1") == [{"kid": "k1"}]
        assert await second.records.take("code", "c") == {"n": 1}
    finally:
        await second.close()


async def test_put_many_stores_all_in_order_each_with_its_own_if_absent(
    records: RecordStore,
) -> None:
    await records.put("claim", "taken", {"m": "old"}, if_absent=True)
    stored = await records.put_many(
        [
            RecordPut("msg", "m1", {"state": "received", "n": 1}, index="state"),
            RecordPut("claim", "taken", {"m": "new"}, if_absent=True),  # live: not stored
            RecordPut("claim", "free", {"m": "m1"}, if_absent=True),
            RecordPut("claim", "free", {"m": "again"}, if_absent=True),  # sees the one before
            RecordPut("msg", "m2", {"state": "received", "n": 2}, index="state"),
            RecordPut("msg", "m1", {"state": "mapped", "n": 1}, index="state"),  # replaces
        ]
    )
    assert stored == [True, False, True, False, True, True]
    assert await records.get("claim", "taken") == {"m": "old"}
    assert await records.get("claim", "free") == {"m": "m1"}
    assert await records.find("msg", "received") == [{"state": "received", "n": 2}]
    assert await records.find("msg", "mapped") == [{"state": "mapped", "n": 1}]
    assert await records.put_many([]) == []


async def test_put_many_with_a_bad_index_writes_nothing(records: RecordStore) -> None:
    with pytest.raises(ValueError, match="state"):
        await records.put_many(
            [
                RecordPut("msg", "a", {"state": "x"}, index="state"),
                RecordPut("msg", "b", {}, index="state"),
            ]
        )
    assert await records.find("msg") == []


async def test_concurrent_put_many_claims_give_each_key_to_exactly_one(
    records: RecordStore,
) -> None:
    async def claim(n: int) -> list[bool]:
        return await records.put_many(
            [RecordPut("claim", f"k{i}", {"by": n}, if_absent=True) for i in range(5)]
        )

    results = await asyncio.gather(*(claim(n) for n in range(6)))
    for i in range(5):
        assert sum(result[i] for result in results) == 1
    assert len(await records.find("claim")) == 5


async def test_put_many_survives_close_and_reopen(
    backend: Callable[[Path], ResourceStore], tmp_path: Path
) -> None:
    first = backend(tmp_path / "many")
    await first.open()
    try:
        items = [RecordPut("msg", f"{i:04d}", {"raw": "MSH|^~\\&|" * i}) for i in range(50)]
        assert await first.records.put_many(items) == [True] * 50
    finally:
        await first.close()
    second = backend(tmp_path / "many")
    await second.open()
    try:
        found = await second.records.find("msg")
        assert [r["raw"] for r in found] == [item.value["raw"] for item in items]
    finally:
        await second.close()


async def test_find_after_a_key_pages_in_key_order(records: RecordStore) -> None:
    for n in range(1, 6):
        await records.put("page", f"k{n}", {"n": n, "s": "odd" if n % 2 else "even"}, index="s")
    first = await records.find("page", limit=2)
    assert [r["n"] for r in first] == [1, 2]
    assert [r["n"] for r in await records.find("page", limit=2, after="k2")] == [3, 4]
    assert [r["n"] for r in await records.find("page", after="k4")] == [5]
    assert [r["n"] for r in await records.find("page", "odd", after="k1")] == [3, 5]
    assert await records.find("page", after="k5") == []


async def test_find_with_fields_gives_only_those_fields_nested_as_stored(
    records: RecordStore,
) -> None:
    """``fields`` projects each record found (records.py ``project``): paths into nested
    objects, values of every JSON type as stored, a field absent, null or under a value that
    is not an object left out; order, index and paging as without it."""
    values = [
        {"sop": "a", "study": "s1", "attributes": {"00200013": {"vr": "IS", "Value": [2]},
         "00080060": {"vr": "CS", "Value": ["CT"]}}, "verdict": {"findings": []},
         "big": "x" * 5000, "n": 1.5, "flag": False},
        {"sop": "b", "study": "s1", "attributes": {"00080060": {"vr": "CS"}}, "verdict": None,
         "n": 0, "flag": True},
        {"sop": "c", "study": "s1", "attributes": "not an object", "n": -3},
        {"sop": "d", "study": "s2", "attributes": {"00200013": {"vr": "IS", "Value": [1]}}},
    ]  # fmt: skip
    for value in values:
        await records.put("inst", str(value["sop"]), value, index="study")
    fields = ["sop", "attributes.00200013", "attributes.00080060", "verdict", "n", "flag",
              "missing.deeper"]  # fmt: skip
    found = await records.find("inst", "s1", fields=fields)
    assert found == [
        {"sop": "a", "attributes": {"00200013": {"vr": "IS", "Value": [2]},
         "00080060": {"vr": "CS", "Value": ["CT"]}}, "verdict": {"findings": []}, "n": 1.5,
         "flag": False},
        {"sop": "b", "attributes": {"00080060": {"vr": "CS"}}, "n": 0, "flag": True},
        {"sop": "c", "n": -3},
    ]  # fmt: skip
    assert [r["sop"] for r in await records.find("inst", fields=["sop"], after="a", limit=2)] == [
        "b", "c",
    ]  # fmt: skip
    assert await records.find("inst", "s2", fields=[]) == [{}]
    # unchanged without fields
    assert (await records.find("inst", "s2"))[0] == values[3]


@pytest.mark.parametrize("fields", [["a..b"], ["$.a"], ["a'b"], ['a"b'], ["a b"], ["."], "sop"])
async def test_find_refuses_a_field_that_is_not_a_path_of_names(
    records: RecordStore, fields: list[str]
) -> None:
    await records.put("inst", "a", {"sop": "a"})
    with pytest.raises(ValueError, match="fields"):
        await records.find("inst", fields=fields)
