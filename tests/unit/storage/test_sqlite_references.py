"""SQLite specifics of referential integrity (storage/sqlite/integrity.py): the ``ref_link`` rows,
the migration that fills them (schema 2 -> 3), and refusals inside a group commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_server.core.errors import DanglingReference, DeleteConflict
from fhir_server.storage.port import ABSENT, ResourceVersion
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.schema import SCHEMA_VERSION
from fhir_server.validation.references import LocalReference
from tests.contract.test_references_contract import live, put, ref, tombstone
from tests.unit.storage.test_sqlite_group_commit import groups_of, in_one_group

T0 = live("Patient", "x").last_updated


def rows(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT r.type, r.id, l.path, l.target_type, l.target_id, l.target_version "
            "FROM ref_link l JOIN resource r ON r.rid = l.rid ORDER BY r.rid, l.path"
        ).fetchall()


async def opened(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    return store


async def test_rows_follow_the_current_version(tmp_path: Path) -> None:
    store = await opened(tmp_path / "s")
    try:
        await put(store, live("Patient", "p"))
        await put(store, live("Observation", "o", 1), [ref("Patient/p")], check=False)
        assert rows(store.path) == [
            ("Observation", "o", "Observation.subject", "Patient", "p", None)
        ]
        refs = [ref("Patient/p", "Observation.focus[0]", 1), ref("Group/g", "Observation.subject")]
        await put(store, live("Observation", "o", 2), refs, check=False)
        assert rows(store.path) == [
            ("Observation", "o", "Observation.focus[0]", "Patient", "p", 1),
            ("Observation", "o", "Observation.subject", "Group", "g", None),
        ]
        await put(store, tombstone("Observation", "o", 3))
        assert rows(store.path) == []
    finally:
        await store.close()


def body(kind: str, id: str, **elements: Any) -> bytes:
    return orjson.dumps({"resourceType": kind, "id": id, **elements})


async def test_migration_from_version_2_fills_the_references_of_current_versions(
    tmp_path: Path,
) -> None:
    """A version-2 database (no ``ref_link``) gets the relative references of the current body
    of each live resource; absolute URLs (the base URL is unknown) and deleted resources none."""
    path = tmp_path / "s"
    store = await opened(path)
    versions = [
        ResourceVersion("Patient", "p", 1, T0, "PUT", body("Patient", "p")),
        ResourceVersion("Observation", "o", 1, T0, "PUT", body(
            "Observation", "o", status="final", code={"text": "x"},
            subject={"reference": "Patient/old"})),
        ResourceVersion("Observation", "o", 2, T0, "PUT", body(
            "Observation", "o", status="final", code={"text": "x"},
            subject={"reference": "Patient/p"},
            performer=[{"reference": "https://fhir.example.org/Practitioner/abs"},
                       {"reference": "Practitioner/d/_history/2"}])),
        ResourceVersion("Encounter", "gone", 1, T0, "PUT", body(
            "Encounter", "gone", status="finished", subject={"reference": "Patient/p"})),
        ResourceVersion("Encounter", "gone", 2, T0, "DELETE", None),
    ]  # fmt: skip
    try:
        for v in versions:  # written without references, as version 2 did
            async with store.unit_of_work() as uow:
                uow.put(v, expected_version=v.version - 1 or ABSENT, interaction="update")
    finally:
        await store.close()
    with sqlite3.connect(path / "fhir.sqlite3") as conn:
        conn.execute("DROP TABLE ref_link")
        conn.execute("UPDATE schema_info SET value = '2' WHERE key = 'version'")
    store = await opened(path)
    try:
        assert rows(store.path) == [
            ("Observation", "o", "Observation.performer[1]", "Practitioner", "d", 2),
            ("Observation", "o", "Observation.subject", "Patient", "p", None),
        ]
        with sqlite3.connect(store.path) as conn:
            version = conn.execute("SELECT value FROM schema_info WHERE key = 'version'")
            assert version.fetchone() == (str(SCHEMA_VERSION),) == ("4",)
        with pytest.raises(DeleteConflict):  # the migrated rows protect Patient/p
            await put(store, tombstone("Patient", "p", 2))
    finally:
        await store.close()
    store = await opened(path)  # opening again migrates nothing twice
    try:
        assert len(rows(store.path)) == 2
    finally:
        await store.close()


async def test_a_refused_one_put_unit_writes_nothing_so_its_group_is_not_replayed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One-put units run without a savepoint: the integrity check comes before any write, or
    the whole group would be rolled back and replayed."""
    store = await opened(tmp_path / "s")
    try:
        await put(store, live("Patient", "p"))
        await put(store, live("Observation", "o"), [ref("Patient/p")])
        transactions = 0
        run = store._group._transaction

        def counted(*args: Any) -> Any:
            nonlocal transactions
            transactions += 1
            return run(*args)

        monkeypatch.setattr(store._group, "_transaction", counted)
        groups = groups_of(store)
        dangling = [LocalReference("Observation.subject", "Patient", "nobody")]
        outcomes = await in_one_group(
            store,
            put(store, live("Patient", "a")),
            put(store, tombstone("Patient", "p", 2)),
            put(store, live("Observation", "x"), dangling),
            put(store, live("Patient", "b")),
        )
        assert [type(o).__name__ for o in outcomes] == [
            "NoneType", "DeleteConflict", "DanglingReference", "NoneType",
        ]  # fmt: skip
        assert isinstance(outcomes[2], DanglingReference)
        assert transactions == 1 and len(groups) == 1
        assert await store.read("Observation", "x") is None
        assert (await store.read("Patient", "b")) is not None
    finally:
        await store.close()
