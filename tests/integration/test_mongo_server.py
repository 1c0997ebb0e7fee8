"""``fhir-server serve --store mongodb://…`` as a user runs it: a real server process on a MongoDB
(mongoeco, or FHIR_SERVER_TEST_MONGODB_URL), used over HTTP; and a standalone MongoDB refused."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import ServerProcess, free_port, running_application
from tests.integration.smart_support import (
    SmartServer,
    add_client,
    add_user,
    backend_token,
    login_and_approve,
    make_key,
    public_jwks,
)
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
    args += ["--dicom-port", "0", "--mllp-port", "0"]
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


def test_smart_authorization_on_mongodb(
    mongo_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 7 on the MongoDB backend: clients and users registered by the CLI through the
    record port, a backend-services token, a code flow with login and consent, refresh
    rotation and revocation, with all of the authorization server's state in MongoDB."""
    monkeypatch.setenv("FHIR_SERVER_STORE", database_url(mongo_server, str(tmp_path)))
    data = tmp_path / "data"
    key = make_key("ES384")
    (tmp_path / "jwks.json").write_text(json.dumps(public_jwks(key)))
    add_client(data, "etl", "backend", jwks_file=tmp_path / "jwks.json")
    add_user(data, "dr-pop", "a long password", fhir_user="Practitioner/pop")
    redirect = "http://127.0.0.1:9/cb"
    add_client(data, "viewer", "public", redirect_uris=[redirect])
    server = SmartServer(data).start()
    try:
        token = backend_token(server, "etl", key, "system/*.cruds")
        auth = {"Authorization": f"Bearer {token}", **FHIR_JSON}
        created = httpx.post(
            f"{server.fhir}/Patient", json={"resourceType": "Patient"}, headers=auth
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        assert httpx.get(f"{server.fhir}/Patient/{pid}").status_code == 401

        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        query = {
            "response_type": "code", "client_id": "viewer", "redirect_uri": redirect,
            "scope": "launch/patient openid fhirUser offline_access patient/*.rs",
            "state": "s1", "aud": server.fhir, "code_challenge_method": "S256",
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        }  # fmt: skip
        back = login_and_approve(
            f"{server.issuer}/authorize?{urlencode(query)}", "dr-pop", "a long password",
            patient=pid,
        )  # fmt: skip
        code = parse_qs(urlsplit(back).query)["code"][0]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                "client_id": "viewer", "code_verifier": verifier}  # fmt: skip
        tokens = httpx.post(server.token_url, data=form).json()
        assert tokens.get("patient") == pid, tokens
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        read = httpx.get(f"{server.fhir}/Patient/{pid}", headers=bearer)
        assert read.status_code == 200, read.text
        refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
        refreshed = httpx.post(server.token_url, data=refresh).json()
        assert refreshed["refresh_token"] != tokens["refresh_token"]  # rotated
        revoke = {"token": refreshed["access_token"], "client_id": "viewer"}
        assert httpx.post(f"{server.issuer}/revoke", data=revoke).status_code == 200
        again = {"Authorization": f"Bearer {refreshed['access_token']}"}
        assert httpx.get(f"{server.fhir}/Patient/{pid}", headers=again).status_code == 401
    finally:
        server.stop()
