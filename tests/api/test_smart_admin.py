"""Issue 7.6 and 7.7: users and clients through the storage port, the admin API under a system
scope, the EHR launch API, the CLI (`users add`, `clients add`, `token`) and the demo accounts
`make run` creates on an empty store."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from fhir_server.auth.server.accounts import AccountError, new_client, new_user
from fhir_server.bootstrap import Application, make_app
from fhir_server.core.context import RequestContext
from tests.conftest import running_application
from tests.integration.smart_support import (
    JWT_BEARER,
    SigningKey,
    client_assertion,
    make_key,
    public_jwks,
)

BASE = "http://127.0.0.1:8080"
TOKEN_URL = f"{BASE}/auth/token"


@pytest.fixture
async def application(tmp_path: Path) -> AsyncIterator[Application]:
    async with running_application(tmp_path / "data", auth="smart") as app:
        yield app


@pytest.fixture
async def http(application: Application) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(application))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def backend(application: Application, client_id: str, scope: str) -> SigningKey:
    key = make_key("ES384")
    assert application.smart is not None
    await application.smart.accounts.add_client(
        new_client(client_id, "backend", jwks=public_jwks(key), scope=scope)
    )
    return key


async def token(http: httpx.AsyncClient, client_id: str, key: SigningKey, scope: str) -> str:
    form = {
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion(key, client_id, TOKEN_URL),
    }  # fmt: skip
    answer = await http.post("/auth/token", data=form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


async def test_admin_api_needs_system_admin_scope(
    application: Application, http: httpx.AsyncClient
) -> None:
    key = await backend(application, "ops", "system/Admin.cruds system/*.cruds")
    fhir_only = await token(http, "ops", key, "system/*.cruds")
    refused = await http.get("/auth/admin/users", headers=bearer(fhir_only))
    assert refused.status_code == 403 and "system/Admin" in refused.json()["error_description"]
    assert (await http.get("/auth/admin/users")).status_code == 401

    admin = await token(http, "ops", key, "system/Admin.cruds")
    created = await http.post(
        "/auth/admin/users", headers=bearer(admin),
        json={"username": "dr-ana", "password": "long enough pass", "fhir_user": "Practitioner/9"},
    )  # fmt: skip
    assert created.status_code == 201 and "password_hash" not in created.text
    listed = (await http.get("/auth/admin/users", headers=bearer(admin))).json()["users"]
    assert [u["username"] for u in listed] == ["dr-ana"]
    assert "password" not in json.dumps(listed)

    app = await http.post(
        "/auth/admin/clients", headers=bearer(admin),
        json={"client_id": "viewer", "type": "confidential",
              "redirect_uris": ["https://viewer.example/cb"]},
    )  # fmt: skip
    assert app.status_code == 201
    secret = app.json()["client_secret"]  # generated once, shown once
    assert len(secret) >= 32 and "secret_hash" not in app.text
    bad = await http.post(
        "/auth/admin/clients", headers=bearer(admin),
        json={"client_id": "x", "type": "public", "redirect_uris": ["http://evil.example/cb"]},
    )  # fmt: skip
    assert bad.status_code == 400 and "loopback" in bad.json()["error_description"]
    assert (await http.delete("/auth/admin/users/dr-ana", headers=bearer(admin))).status_code == 204
    assert (await http.delete("/auth/admin/users/dr-ana", headers=bearer(admin))).status_code == 404


async def test_launch_api_makes_single_context_handles(
    application: Application, http: httpx.AsyncClient
) -> None:
    await application.service.update(
        RequestContext(), "Patient", "p1", {"resourceType": "Patient", "id": "p1"}
    )
    key = await backend(application, "portal", "system/Launch.c")
    portal = await token(http, "portal", key, "system/Launch.c")
    made = await http.post("/auth/launch", headers=bearer(portal), json={"patient": "p1"})
    assert made.status_code == 201 and made.json()["expires_in"] <= 300
    assert len(made.json()["launch"]) >= 24  # opaque, unguessable (S24)
    missing = await http.post("/auth/launch", headers=bearer(portal), json={"patient": "nope"})
    assert missing.status_code == 400
    other = await backend(application, "etl", "system/*.cruds")
    etl = await token(http, "etl", other, "system/*.cruds")  # * never covers Launch
    assert (
        await http.post("/auth/launch", headers=bearer(etl), json={"patient": "p1"})
    ).status_code == 403


def test_accounts_refuse_unsafe_registrations() -> None:
    with pytest.raises(AccountError, match="8 characters"):
        new_user("u", "short")
    with pytest.raises(AccountError, match="redirect"):
        new_client("app", "public")
    with pytest.raises(AccountError, match="JWKS"):
        new_client("svc", "backend")
    with pytest.raises(AccountError, match="system/"):
        new_client("svc", "backend", jwks=public_jwks(make_key("RS384")), scope="user/*.rs")
    with pytest.raises(AccountError, match="user information"):
        new_client("app", "public", redirect_uris=("https://a:b@app.example/cb",))
    with pytest.raises(AccountError, match="unknown scopes"):
        new_client("app", "public", redirect_uris=("https://app.example/cb",), scope="bogus/x")
    stored = new_user("nurse", "a long password")
    assert stored.password_hash.startswith("$argon2id$")


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fhir_server", *args],
        input=stdin, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_cli_registers_users_and_clients(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = run_cli("users", "add", "dr-li", "--password-stdin", "--data-dir", data,
                    "--fhir-user", "Practitioner/li", stdin="a long password\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    again = run_cli("users", "add", "dr-li", "--password-stdin", "--data-dir", data,
                    stdin="a long password\n")  # fmt: skip
    assert again.returncode == 2 and "exists already" in again.stderr
    secret = run_cli("clients", "add", "ris", "--type", "confidential", "--generate-secret",
                     "--redirect-uri", "https://ris.example/cb", "--data-dir", data)  # fmt: skip
    assert secret.returncode == 0 and len(secret.stdout.strip()) >= 32
    wrong = run_cli("clients", "add", "x", "--type", "backend", "--data-dir", data)
    assert wrong.returncode == 2 and "JWKS" in wrong.stderr


def test_demo_accounts_on_first_start_only(tmp_path: Path) -> None:
    """Issue 7.7: `make run` (serve --demo) creates clearly labelled demo accounts once, and
    `fhir-server token` gets a token with the demo backend client."""
    from tests.conftest import ServerProcess

    data = tmp_path / "data"
    first = ServerProcess(data, "--auth", "smart", "--demo")
    try:
        first.wait_ready()
        credentials = (data / "DEMO-CREDENTIALS.txt").read_text()
        assert "DEMO ACCOUNTS" in credentials and "demo-backend" in credentials
        assert oct((data / "DEMO-CREDENTIALS.txt").stat().st_mode & 0o777) == "0o600"
        key = str(data / "demo-backend-key.json")
        got = run_cli(
            "token", "--client", "demo-backend", "--key", key, "--fhir-base", first.base + "/fhir"
        )
        assert got.returncode == 0, got.stderr
        patients = httpx.get(f"{first.base}/fhir/Patient", headers=bearer(got.stdout.strip()))
        assert patients.status_code == 200 and len(patients.json()["entry"]) == 2
    finally:
        first.stop()
    second = ServerProcess(data, "--auth", "smart", "--demo")
    try:
        second.wait_ready()
        assert "DEMO ACCOUNTS CREATED" not in second.log.read_text()
    finally:
        second.stop()


async def test_deleting_a_client_ends_its_tokens(
    application: Application, http: httpx.AsyncClient
) -> None:
    key = await backend(application, "ops", "system/Admin.cruds")
    admin = await token(http, "ops", key, "system/Admin.cruds")
    leaving_key = await backend(application, "leaving", "system/Patient.rs")
    leaving = await token(http, "leaving", leaving_key, "system/Patient.rs")
    assert (await http.get("/fhir/Patient", headers=bearer(leaving))).status_code == 200
    gone = await http.delete("/auth/admin/clients/leaving", headers=bearer(admin))
    assert gone.status_code == 204
    refused = await http.get("/fhir/Patient", headers=bearer(leaving))
    assert refused.status_code == 401 and "no longer registered" in refused.text
