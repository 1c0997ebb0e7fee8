"""SQLite specifics of the record port (the contract is tests/contract/test_records_contract.py):
the schema migration that adds the ``record`` table (version 3 -> 4), and exactly-once ``take``
and ``put(if_absent=True)`` between two stores (two writer connections, as two processes) on
one database file."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from fhir_server.storage.port import ABSENT
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.records import find_sql
from fhir_server.storage.sqlite.schema import SCHEMA_VERSION
from tests.contract.test_references_contract import live


async def opened(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    return store


def schema_version(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()
        return str(row[0])


async def test_migration_from_version_3_adds_the_record_table(tmp_path: Path) -> None:
    path = tmp_path / "s"
    store = await opened(path)
    try:
        async with store.unit_of_work() as uow:
            uow.put(live("Patient", "p"), expected_version=ABSENT, interaction="create")
    finally:
        await store.close()
    with sqlite3.connect(path / "fhir.sqlite3") as conn:  # as version 3 left it
        conn.execute("DROP TABLE record")
        conn.execute("UPDATE schema_info SET value = '3' WHERE key = 'version'")
    store = await opened(path)
    try:
        assert schema_version(store.path) == str(SCHEMA_VERSION) == "4"
        assert await store.read("Patient", "p") is not None
        assert await store.records.get("user", "u") is None
        assert await store.records.put("user", "u", {"name": "a"}, index="name")
        assert await store.records.find("user", "a") == [{"name": "a"}]
    finally:
        await store.close()
    store = await opened(path)  # opening again keeps the records
    try:
        assert await store.records.get("user", "u") == {"name": "a"}
    finally:
        await store.close()


async def test_two_stores_on_one_file_take_a_record_exactly_once(tmp_path: Path) -> None:
    first = await opened(tmp_path / "s")
    second = await opened(tmp_path / "s")
    try:
        for n in range(20):
            await first.records.put("code", f"c{n}", {"n": n})
        takes = [s.records.take("code", f"c{n}") for n in range(20) for s in (first, second)]
        taken = [t for t in await asyncio.gather(*takes) if t is not None]
        assert sorted(t["n"] for t in taken) == list(range(20))
        puts = [
            s.records.put("jti", "j", {}, if_absent=True)
            for _ in range(10)
            for s in (first, second)
        ]
        assert (await asyncio.gather(*puts)).count(True) == 1
    finally:
        await first.close()
        await second.close()


async def test_find_by_index_reads_only_that_index_value(tmp_path: Path) -> None:
    """find(kind, value) searches the (kind, idx, key) index, never every record of the kind
    (SQLite preferred the primary key for the ORDER BY: 50 ms per call at 50,000 records)."""
    store = await opened(tmp_path / "s")
    try:
        assert await store.records.put("dicom-instance", "i1", {"study": "s1"}, index="study")
        for after in (False, True):
            sql = find_sql(indexed=True, after=after)
            with sqlite3.connect(store.path) as conn:
                args = ("k", "v", "a", 0.0, 10) if after else ("k", "v", 0.0, 10)
                rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}", args).fetchall()
            plan = " ".join(str(row[3]) for row in rows)
            assert "USING INDEX record_by_idx (kind=? AND idx=?" in plan, plan
        assert await store.records.find("dicom-instance", "s1") == [{"study": "s1"}]
        assert await store.records.find("dicom-instance", "s1", after="i1") == []
    finally:
        await store.close()
