"""``fhir-server migrate``: a SQLite data dir copied into another store, every version in order.

The source is filled through the server's own HTTP API (in-process): a transaction of Patients
and Observations linked by ``urn:uuid:`` references, updates, JSON patches, deletions, a
resource deleted and created again, a batch and a conditional create. The migration runs as a
subprocess, as an operator runs it, into a SQLite data dir and (``-m mongo``) into MongoDB
(mongoeco, or FHIR_SERVER_TEST_MONGODB_URL). Then every version must read back equal (vread),
the system history must list them in the same order, searches must find the same resources,
and the references must be there (a referenced Patient cannot be deleted). A migration killed
midway resumes without duplicates; a target that holds other data is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.bootstrap import Application, build, make_blob_store
from fhir_server.events.hooks import Hooks
from fhir_server.migrate import Tools, migrate, open_store, server_tools
from fhir_server.settings import Settings
from fhir_server.storage.port import HistoryQuery, OutboxEvent, ResourceStore, ResourceVersion
from tests.conftest import asgi_client, running_application
from tests.mongoeco.fixture import database_url, mongo_server  # noqa: F401


@dataclass(frozen=True, slots=True)
class Scale:
    """How much the source holds, and how a killed migration is run, per target."""

    patients: int  # and as many Observations, in one transaction
    renamed: int  # Patients updated (version 2)
    patched: int  # of which patched too (version 3)
    batch_size: int  # of the migration that is killed
    kill_after: int  # versions in the target


SQLITE = Scale(patients=600, renamed=150, patched=40, batch_size=10, kill_after=400)
#: mongoeco (an imitation of MongoDB in Python) stores a few dozen versions per second.
MONGO = Scale(patients=30, renamed=8, patched=4, batch_size=5, kill_after=20)
JSON_PATCH = "application/json-patch+json"
SEARCHES = (
    "Patient?family=Migrated",
    "Patient?family=Renamed",
    "Patient?birthdate=ge1990-01-01",
    "Patient?identifier=urn:example:mrn|mrn-7",
    "Patient?_has:Observation:subject:code=http://loinc.org|8867-4",
    "Observation?code=http://loinc.org|8867-4",
    "Observation?subject=Patient/phoenix",
    "Observation?subject:Patient.family=Renamed",
    "Observation?value-quantity=gt70",
    "Patient?_id=phoenix",
    "Patient?gender=female&_sort=-birthdate",
)


# --- the source -----------------------------------------------------------------------------


def _patient(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:example:mrn", "value": f"mrn-{i}"}],
        "name": [{"family": "Migrated", "given": [f"P{i}"]}],
        "gender": "female" if i % 2 else "male",
        "birthDate": f"{1950 + i % 60}-0{1 + i % 9}-1{i % 10}",
    }


def _transaction(scale: Scale) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    for i in range(scale.patients):
        patient = f"urn:uuid:{uuid.uuid4()}"
        entries.append(
            {"fullUrl": patient, "resource": _patient(i),
             "request": {"method": "POST", "url": "Patient"}}
        )  # fmt: skip
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": patient},
            "valueQuantity": {"value": 50 + i % 50, "unit": "/min",
                              "system": "http://unitsofmeasure.org", "code": "/min"},
        }  # fmt: skip
        entries.append(
            {"resource": observation, "request": {"method": "POST", "url": "Observation"}}
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


async def populate(client: httpx.AsyncClient, scale: Scale, extra: int = 0) -> None:
    """Fill a store; ``extra`` > 0: a later, smaller round of changes (the source growing)."""
    if extra:
        for i in range(extra):
            await _ok(await client.post("/fhir/Patient", json=_patient(10_000 + i)))
        await _ok(await client.put("/fhir/Patient/phoenix", json=_phoenix("Again")))
        return
    bundle = await _ok(await client.post("/fhir", json=_transaction(scale)))
    ids = [e["response"]["location"].split("/")[1] for e in bundle["entry"][::2]]
    for i, id in enumerate(ids[: scale.renamed]):
        body = {**_patient(i), "id": id, "name": [{"family": "Renamed", "given": [f"P{i}"]}]}
        await _ok(await client.put(f"/fhir/Patient/{id}", json=body))
    for id in ids[: scale.patched]:
        patch = [{"op": "add", "path": "/active", "value": True}]
        headers = {"Content-Type": JSON_PATCH}
        await _ok(await client.patch(f"/fhir/Patient/{id}", json=patch, headers=headers))
    observations = await _ok(await client.get(f"/fhir/Observation?subject=Patient/{ids[-1]}"))
    await _ok(
        await client.delete(f"/fhir/Observation/{observations['entry'][0]['resource']['id']}")
    )
    await _ok(await client.delete(f"/fhir/Patient/{ids[-1]}"))  # deleted, unreferenced now
    await _ok(await client.put("/fhir/Patient/phoenix", json=_phoenix("First")))
    await _ok(await client.delete("/fhir/Patient/phoenix"))
    await _ok(await client.put("/fhir/Patient/phoenix", json=_phoenix("Reborn")))  # version 3
    observation = {
        "resourceType": "Observation", "status": "final", "code": {"text": "note"},
        "subject": {"reference": "Patient/phoenix"},
    }  # fmt: skip
    batch = {
        "resourceType": "Bundle", "type": "batch",
        "entry": [{"resource": observation, "request": {"method": "POST", "url": "Observation"}},
                  {"resource": _patient(9_999), "request": {"method": "POST", "url": "Patient"}}],
    }  # fmt: skip
    await _ok(await client.post("/fhir", json=batch))
    headers = {"If-None-Exist": "identifier=urn:example:mrn|mrn-cond"}
    conditional = {
        **_patient(0),
        "identifier": [{"system": "urn:example:mrn", "value": "mrn-cond"}],
    }
    for _ in range(2):  # the second one finds the first: one resource
        await _ok(await client.post("/fhir/Patient", json=conditional, headers=headers))


def _phoenix(family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "phoenix", "name": [{"family": family}]}


async def _fill(data_dir: Path, scale: Scale, extra: int = 0) -> None:
    async with running_application(data_dir) as app, asgi_client(app) as client:
        await populate(client, scale, extra)


@pytest.fixture(scope="module")
def filled_sources(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Scale], Path]:
    """The filled source of each scale, built once per module when first asked for."""
    built: dict[Scale, Path] = {}

    def get(scale: Scale) -> Path:
        if scale not in built:
            data_dir = tmp_path_factory.mktemp("migrate-source") / "data"
            asyncio.run(_fill(data_dir, scale))
            built[scale] = data_dir
        return built[scale]

    return get


@pytest.fixture
def scale(request: pytest.FixtureRequest) -> Scale:
    if "target" in request.fixturenames and request.getfixturevalue("target").startswith("mongo"):
        return MONGO
    return SQLITE


@pytest.fixture
def source(filled_sources: Callable[[Scale], Path], scale: Scale, tmp_path: Path) -> Path:
    """A copy of the filled source for one test (some tests write more to it)."""
    copy = tmp_path / "source"
    shutil.copytree(filled_sources(scale), copy)
    return copy


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the migration writes: a new SQLite data dir, or a new MongoDB database."""
    if request.param == "sqlite":
        return str(tmp_path / "target")
    server: str = request.getfixturevalue("mongo_server")
    return database_url(server, f"{request.node.nodeid}-{uuid.uuid4()}")


# --- running and comparing ------------------------------------------------------------------


def run_migrate(source: Path, target: str, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "fhir_server", "migrate", "--from", str(source), "--to", target]
    return subprocess.run([*args, *extra], capture_output=True, text=True, timeout=600)


@asynccontextmanager
async def opened(store: ResourceStore) -> AsyncIterator[ResourceStore]:
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def all_history(store: ResourceStore) -> list[ResourceVersion]:
    """Every version, newest first (the system history)."""
    found: list[ResourceVersion] = []
    cursor = None
    while True:
        page = await store.history(HistoryQuery(count=500, cursor=cursor))
        found += page.entries
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


async def assert_same_versions(source: Path, target: str) -> int:
    async with opened(open_store(str(source))) as mine, opened(open_store(target)) as theirs:
        expected = await all_history(mine)
        copied = await all_history(theirs)
        assert [(v.resource_type, v.id, v.version) for v in copied] == [
            (v.resource_type, v.id, v.version) for v in expected
        ]
        for version in expected:
            got = await theirs.vread(version.resource_type, version.id, version.version)
            assert got == version
            current = await mine.read(version.resource_type, version.id)
            assert await theirs.read(version.resource_type, version.id) == current
    return len(expected)


@asynccontextmanager
async def serving(where: str) -> AsyncIterator[httpx.AsyncClient]:
    """The server on a SQLite data dir or a MongoDB URL, in-process."""
    if where.startswith("mongodb"):
        settings: dict[str, Any] = {"store": where}
        data_dir = Path(tempfile.mkdtemp(prefix="fhir-mongo-"))  # the store is in MongoDB
    else:
        settings, data_dir = {}, Path(where)
    async with running_application(data_dir, **settings) as app, asgi_client(app) as client:
        yield client


async def search_ids(client: httpx.AsyncClient, query: str) -> list[str]:
    bundle = await _ok(await client.get(f"/fhir/{query}&_count=1000"))
    assert "next" not in {link["relation"] for link in bundle.get("link", [])}
    return [entry["resource"]["id"] for entry in bundle.get("entry", [])]


async def assert_same_searches(source: Path, target: str, scale: Scale) -> None:
    queries = [q if "?" in q else q + "?" for q in SEARCHES]
    async with serving(str(source)) as mine:
        expected = {q: await search_ids(mine, q) for q in queries}
    async with serving(target) as theirs:
        for query in queries:
            assert await search_ids(theirs, query) == expected[query], query
        assert expected["Observation?subject=Patient/phoenix"]  # the searches find something
        referenced = expected["Observation?subject:Patient.family=Renamed"]
        assert len(referenced) == scale.renamed
        # the references were recomputed: a referenced Patient cannot be deleted
        observation = await _ok(await theirs.get(f"/fhir/Observation/{referenced[0]}"))
        response = await theirs.delete(f"/fhir/{observation['subject']['reference']}")
        assert response.status_code == 409, response.text


# --- tests ----------------------------------------------------------------------------------


async def test_migrate_copies_every_version_in_order(
    source: Path, target: str, scale: Scale
) -> None:
    result = run_migrate(source, target)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "verified: the target holds" in result.stdout
    assert "migrate: " in result.stderr and "versions (100.0%)" in result.stderr  # progress
    total = await assert_same_versions(source, target)
    assert f"copied {total:,} versions (0 already in the target)" in result.stdout
    again = run_migrate(source, target)  # nothing left to do
    assert again.returncode == 0, again.stderr + again.stdout
    assert f"copied 0 versions ({total:,} already in the target)" in again.stdout
    await assert_same_searches(source, target, scale)


async def test_migrate_copies_the_lasting_records_again_on_each_run(
    source: Path, target: str
) -> None:
    """Users, clients and keys (no expiry) are copied, a run again copies changes made on the
    source since; codes and tokens (they expire) stay behind. (The third lasting record is the
    imaging index's upgrade marker, written when the source's server started: index_upgrade.py.)"""
    later = datetime.now(UTC) + timedelta(hours=1)
    async with opened(open_store(str(source))) as mine:
        await mine.records.put("user", "alice", {"name": "alice", "team": "a"}, index="team")
        await mine.records.put("client", "app", {"id": "app", "redirect": ["https://é.example"]})
        await mine.records.put("code", "c1", {"client": "app"}, expires=later)
    result = run_migrate(source, target)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "and 3 records" in result.stdout
    async with opened(open_store(str(source))) as mine:
        await mine.records.put("user", "alice", {"name": "alice", "team": "b"}, index="team")
    again = run_migrate(source, target)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "copied 0 versions" in again.stdout and "and 3 records" in again.stdout
    async with opened(open_store(target)) as theirs:
        assert await theirs.records.find("user", "b") == [{"name": "alice", "team": "b"}]
        assert await theirs.records.find("user", "a") == []
        assert await theirs.records.get("client", "app") == {
            "id": "app",
            "redirect": ["https://é.example"],
        }
        assert await theirs.records.get("code", "c1") is None


async def test_migrate_copies_the_bytes_of_the_dicom_instances(source: Path, target: str) -> None:
    """The instance records are lasting records; the bytes they name are in the blob store
    (a row, a version file, a segment), which the migration copies too (GridFS, or the SQLite
    target's blobs/), once."""
    stored = {
        "1.2.826.0.1.3680043.8.498.1": b"DICM small" * 10,
        "1.2.826.0.1.3680043.8.498.2": b"L" * 300_000,
        "1.2.826.0.1.3680043.8.498.3": b"S" * 300_000,  # as the ingest writes it: a segment
    }
    async with opened(open_store(str(source))) as mine:
        blobs = make_blob_store(None, source, mine)
        await blobs.open()
        for uid, data in stored.items():
            if uid.endswith(".3"):
                await blobs.put_if_absent(uid, data, content_type="application/dicom")
            else:
                await blobs.put(uid, data, content_type="application/dicom")
            record = {"study": "1.2.3", "sop_instance": uid, "blob": uid}
            await mine.records.put("dicom-instance", uid, record, index="study")
        await mine.records.put("dicom-instance", "1.2.9", {"study": "1.2.3", "blob": "1.2.9"})
        await blobs.close()
    result = run_migrate(source, target)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "copied the bytes of 3 DICOM instances (0 already in the target)" in result.stdout
    assert list((source / "blobs" / "segments").glob("*.seg"))
    assert "1 DICOM instance record(s) name bytes the source does not hold (e.g. 1.2.9)" in (
        result.stdout
    )
    async with opened(open_store(target)) as theirs:
        location = target if target.startswith("mongodb") else None
        copies = make_blob_store(location, Path(target), theirs)
        await copies.open()
        try:
            for uid, data in stored.items():
                async with await copies.stream(uid) as stream:
                    assert await stream.read_all() == data
        finally:
            await copies.close()
    again = run_migrate(source, target)
    assert again.returncode == 0, again.stderr + again.stdout
    assert "copied the bytes of 0 DICOM instances (3 already in the target)" in again.stdout


async def test_refuses_a_source_whose_instances_await_indexing_after_a_power_failure(
    source: Path, tmp_path: Path
) -> None:
    """Instances whose rows a power failure lost have them back once the blob store is opened
    again, but their records only once the server has started (it indexes them again): a
    migration before would leave them out, so it is refused with what to do."""
    async with opened(open_store(str(source))) as mine:
        blobs = make_blob_store(None, source, mine)
        await blobs.open()
        await blobs.close()
    with contextlib.closing(sqlite3.connect(source / "fhir.sqlite3")) as conn, conn:
        conn.execute(
            "INSERT INTO blob_restored (key, note) VALUES ('1.2.3.4', '{\"channel\": \"c-store\"}')"
        )
    result = run_migrate(source, str(tmp_path / "target"))
    assert result.returncode == 2, result.stdout
    assert "1 DICOM instance(s) of" in result.stderr
    assert "start `fhir-server serve` on it once" in result.stderr
    assert not (tmp_path / "target" / "fhir.sqlite3").exists()


def _copied_so_far(target: str, enough: int) -> int:
    async def count() -> int:
        store = open_store(target)
        if target.startswith("mongodb"):  # no open(): its index builds would write beside the
            try:  # migration's transactions, which mongoeco then fails as conflicting
                return len((await store.history(HistoryQuery(count=enough))).entries)
            finally:
                await store.close()
        async with opened(store):
            return len((await store.history(HistoryQuery(count=enough))).entries)

    return asyncio.run(count())


def test_killed_migration_resumes_without_duplicates(
    source: Path, target: str, scale: Scale
) -> None:
    args = ["migrate", "--from", str(source), "--to", target, "--batch-size"]
    args.append(str(scale.batch_size))
    process = subprocess.Popen(
        [sys.executable, "-m", "fhir_server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    try:
        while _copied_so_far(target, scale.kill_after) < scale.kill_after:  # units committed
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    result = run_migrate(source, target)
    assert result.returncode == 0, result.stderr + result.stdout
    total = asyncio.run(assert_same_versions(source, target))
    copied = int(result.stdout.split("copied ")[1].split(" versions")[0].replace(",", ""))
    assert 0 < copied <= total - scale.kill_after, result.stdout  # resumed, did not start again
    assert f"({total - copied:,} already in the target)" in result.stdout


def test_migration_catches_up_after_the_source_grew(
    source: Path, target: str, scale: Scale
) -> None:
    assert run_migrate(source, target).returncode == 0
    asyncio.run(_fill(source, scale, extra=5))
    result = run_migrate(source, target)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "copied 6 versions" in result.stdout  # 5 new Patients, phoenix version 4
    asyncio.run(assert_same_versions(source, target))


async def test_refuses_a_target_holding_other_data(source: Path, tmp_path: Path) -> None:
    target = str(tmp_path / "target")
    assert run_migrate(source, target).returncode == 0
    async with serving(target) as client:  # the target moves on: phoenix version 4
        await _ok(await client.put("/fhir/Patient/phoenix", json=_phoenix("Elsewhere")))
    result = run_migrate(source, target)
    assert result.returncode == 2, result.stdout
    assert "conflicts with the source: Patient/phoenix is at version 4 in the target but 3 " in (
        result.stderr
    )
    assert result.stdout == ""
    other = str(tmp_path / "other")
    async with serving(other) as client:
        await _ok(await client.post("/fhir/Patient", json=_patient(1)))
    result = run_migrate(source, other)
    assert result.returncode == 2 and "is in the target but not in the source" in result.stderr
    assert run_migrate(source, str(source)).returncode == 2  # not onto itself


async def test_migrated_history_triggers_no_post_commit_hook(source: Path, tmp_path: Path) -> None:
    """A hook that already had a cursor in the target, and one registered afterwards, see only
    the writes made after the migration."""
    target = tmp_path / "target"
    seen: list[OutboxEvent] = []
    two = asyncio.Event()

    async def hook(event: OutboxEvent) -> None:
        seen.append(event)
        if len(seen) >= 2:
            two.set()

    def hooks(*names: str) -> Hooks:
        registry = Hooks()
        for name in names:
            registry.on_post_commit(name, hook)
        return registry

    async with with_hooks(target, hooks("early")):
        pass  # the relay registered the cursor of "early" before the migration
    tools = server_tools(source)
    tools = Tools(tools.index, ("early",), tools.base_url)
    summary = await migrate(source, str(target), tools=tools, stream=io.StringIO())
    assert summary.copied > SQLITE.patients and not summary.mismatches()
    async with with_hooks(target, hooks("early", "late")) as app:
        await asyncio.sleep(0.3)  # the relay runs at start and every 0.05 s
        assert seen == []
        async with asgi_client(app) as client:
            await _ok(await client.post("/fhir/Patient", json=_patient(1)))
        await asyncio.wait_for(two.wait(), timeout=10)
        await asyncio.sleep(0.2)  # and nothing more
    assert [(e.resource_type, e.interaction) for e in seen] == [("Patient", "create")] * 2


@asynccontextmanager
async def with_hooks(data_dir: Path, hooks: Hooks) -> AsyncIterator[Application]:
    app = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=data_dir),
        hooks=hooks,
        relay_poll_interval=0.05,
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


def test_progress_redraws_one_line_on_a_terminal() -> None:
    from fhir_server.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    ticks: Iterator[float] = iter([0.0, 1.0, 2.0, 3.0])
    stream = Terminal()
    progress = Progress(200, stream, clock=lambda: next(ticks))
    progress.advance(copied=50)
    progress.advance(copied=50, skipped=50)
    progress.finish()
    text = stream.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "150/200 versions (75.0%), 50 copied/s, ETA 0:00:01" in text
    assert "200/200" not in text and "[" + "#" * 22 + "." * 8 + "]" in text
