"""Issue 7.4: tokens of an external identity provider, configured by issuer and JWKS URL, are
accepted and mean what our own scopes mean; anything else from it is refused with 401."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from fhir_server.bootstrap import Application, make_app
from fhir_server.core.context import RequestContext
from tests.conftest import running_application
from tests.integration.smart_support import LoopbackServer

BASE = "http://127.0.0.1:8080"
FHIR = f"{BASE}/fhir"
IDP = "https://idp.hospital.example/realms/tele"


@pytest.fixture(scope="module")
def idp_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "idp-1", "alg": "RS256"})


@pytest.fixture(scope="module")
def idp(idp_key: RSAKey) -> Iterator[LoopbackServer]:
    jwks = json.dumps({"keys": [idp_key.as_dict(private=False)]}).encode()
    server = LoopbackServer({"/jwks": ("application/json", jwks)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def application(tmp_path: Path, idp: LoopbackServer) -> AsyncIterator[Application]:
    async with running_application(
        tmp_path / "data", auth="smart", external_issuer=IDP, external_jwks_url=idp.base + "/jwks"
    ) as app:
        await app.service.update(
            RequestContext(), "Patient", "p1", {"resourceType": "Patient", "id": "p1"}
        )
        await app.service.update(
            RequestContext(), "Patient", "p2", {"resourceType": "Patient", "id": "p2"}
        )
        yield app


@pytest.fixture
async def http(application: Application) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(application))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


def idp_token(key: RSAKey, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": IDP, "sub": "nurse-7", "aud": FHIR, "iat": now, "exp": now + 300,
        "azp": "ward-app", "scope": "openid patient/Patient.rs", "patient": "p1",
    }  # fmt: skip
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key, algorithms=["RS256"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_external_token_grants_its_scopes(http: httpx.AsyncClient, idp_key: RSAKey) -> None:
    token = idp_token(idp_key)
    assert (await http.get("/fhir/Patient/p1", headers=bearer(token))).status_code == 200
    other = await http.get("/fhir/Patient/p2", headers=bearer(token))
    assert other.status_code == 403  # patient/ scope: only the patient in context
    listed = await http.get("/fhir/Patient", headers=bearer(token))
    ids = [e["resource"]["id"] for e in listed.json().get("entry", [])]
    assert ids == ["p1"]


async def test_external_scp_list_is_read_too(http: httpx.AsyncClient, idp_key: RSAKey) -> None:
    token = idp_token(idp_key, scope=None, scp=["user/Patient.rs"], patient=None)
    listed = await http.get("/fhir/Patient", headers=bearer(token))
    assert listed.status_code == 200 and len(listed.json()["entry"]) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "https://elsewhere.example/fhir"},
        {"exp": int(time.time()) - 3600},
        {"iss": "https://unknown-idp.example"},
    ],
    ids=["foreign-audience", "expired", "untrusted-issuer"],
)
async def test_invalid_external_tokens_are_401(
    http: httpx.AsyncClient, idp_key: RSAKey, overrides: dict[str, Any]
) -> None:
    response = await http.get("/fhir/Patient/p1", headers=bearer(idp_token(idp_key, **overrides)))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="fhir-server", error=')
    assert response.json()["resourceType"] == "OperationOutcome"


async def test_token_signed_by_another_key_is_401(http: httpx.AsyncClient) -> None:
    stranger = RSAKey.generate_key(2048, parameters={"kid": "idp-1", "alg": "RS256"})
    response = await http.get("/fhir/Patient/p1", headers=bearer(idp_token(stranger)))
    assert response.status_code == 401
