"""``fhir-server serve --store mongodb://…`` as a user runs it: a real server process on a MongoDB
(mongoeco, or FHIR_SERVER_TEST_MONGODB_URL), used over HTTP; and a standalone MongoDB refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ServerProcess, free_port, running_application
from tests.mongoeco.fixture import MONGOECO_PYTHON, SERVER, database_url

pytestmark = [pytest.mark.mongo, pytest.mark.socket]

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@pytest.fixture
def mongo_fhir(mongo_server: str, tmp_path: Path) -> Iterator[ServerProcess]:
    url = database_url(mongo_server, str(tmp_path))
    proc = ServerProcess(tmp_path / "data", "--store", url)
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def test_serve_on_mongodb_round_trip_over_http(mongo_fhir: ServerProcess) -> None:
    with httpx.Client(base_url=mongo_fhir.base + "/fhir", timeout=30) as http:
        patient = {"resourceType": "Patient", "name": [{"family": "Ionescu", "given": ["Ana"]}]}
        created = http.post("/Patient", json=patient, headers=FHIR_JSON)
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        assert created.headers["ETag"] == 'W/"1"'
        patient |= {"id": pid, "gender": "female"}
        updated = http.put(f"/Patient/{pid}", json=patient, headers=FHIR_JSON)
        assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
        bundle = http.get("/Patient", params={"name": "ionescu", "gender": "female"}).json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [pid]
        history = http.get(f"/Patient/{pid}/_history").json()
        assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]
        assert http.get(f"/Patient/{pid}/_history/1").json()["meta"]["versionId"] == "1"

        transaction = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": "urn:uuid:0b5b1c8e-0000-4000-8000-000000000001",
                    "resource": {"resourceType": "Patient", "name": [{"family": "Popescu"}]},
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": "urn:uuid:0b5b1c8e-0000-4000-8000-000000000001"},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        }
        answer = http.post(mongo_fhir.base + "/fhir", json=transaction, headers=FHIR_JSON)
        assert answer.status_code == 200, answer.text
        new_patient = answer.json()["entry"][0]["response"]["location"].split("/")[1]
        found = http.get("/Observation", params={"subject": f"Patient/{new_patient}"}).json()
        assert [e["resource"]["subject"]["reference"] for e in found["entry"]] == [
            f"Patient/{new_patient}"
        ]

        refused = http.delete(f"/Patient/{new_patient}")  # still referred to by the Observation
        assert refused.status_code == 409
        assert "referential integrity" in refused.text
        assert http.delete(f"/Patient/{pid}").status_code in (200, 204)
        assert http.get(f"/Patient/{pid}").status_code == 410


def test_serve_refuses_a_standalone_mongodb(tmp_path: Path) -> None:
    if not MONGOECO_PYTHON.exists():
        pytest.skip("mongoeco is not installed (make mongoeco)")
    standalone = subprocess.Popen(
        [str(MONGOECO_PYTHON), str(SERVER), "--standalone"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert standalone.stdin is not None and standalone.stdout is not None
    try:
        url = database_url(standalone.stdout.readline().strip(), "standalone")
        run = serve_until_exit(url, tmp_path)
    finally:
        standalone.stdin.close()
        standalone.wait(timeout=10)
        standalone.stdout.close()
    assert run.returncode != 0
    assert "is a standalone server, which cannot make a unit of work atomic" in run.stderr
    assert "replicaSet" in run.stderr


def test_serve_refuses_a_store_that_is_not_a_url(tmp_path: Path) -> None:
    run = serve_until_exit("postgres://x/y", tmp_path)
    assert run.returncode == 2
    assert "--store must be 'sqlite'" in run.stderr
    leaky = serve_until_exit("postgres://admin:s3cret@x/y", tmp_path)
    assert leaky.returncode == 2 and "s3cret" not in leaky.stderr


def serve_until_exit(store: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """``fhir-server serve --store STORE``, expected to give up at start."""
    args = ["serve", "--store", store, "--port", str(free_port()), "--data-dir", str(data_dir)]
    return subprocess.run(
        [sys.executable, "-m", "fhir_server", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("backend", ["sqlite", "mongodb"])
async def test_application_keeps_blobs_beside_its_store(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store = None
    if backend == "mongodb":
        store = database_url(request.getfixturevalue("mongo_server"), str(tmp_path))
    async with running_application(tmp_path / "data", store=store) as app:
        info = await app.blobs.put("instance-1", b"DICM" * 1000, content_type="application/dicom")
        async with await app.blobs.stream("instance-1") as stream:
            assert await stream.read_all() == b"DICM" * 1000
    assert info.size == 4000
    on_disk = (tmp_path / "data" / "blobs").exists()
    assert on_disk == (backend == "sqlite")  # MongoDB keeps them in GridFS, not on disk
