"""Inferno token groups: ``smart_token_refresh_stu2``, ``smart_token_introspection_stu2_2``,
``backend_services_authorization`` (bulk data), and the g10 asymmetric-client launch
(``smart_asymmetric_launch``: private_key_jwt with a JWKS URL, refresh with an assertion)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.smart.conftest import FHIR, TOKEN_URL, Smart, unverified_claims
from tests.api.smart.world import World
from tests.integration.smart_support import (
    JWT_BEARER,
    LoopbackServer,
    client_assertion,
    make_key,
    public_jwks,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


async def launched(smart: Smart, world: World, scope: str = SCOPE) -> dict[str, Any]:
    return await smart.tokens(
        world.symmetric, scope, world.clinician, secret=world.secret, patient=world.patient
    )


async def refresh(
    smart: Smart, world: World, token: str, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token}
    if scope is not None:
        form["scope"] = scope
    return await smart.token_request(form, secret=(world.symmetric, world.secret))


# -- token refresh (smart_token_refresh_stu2) ------------------------------------------------


async def test_token_refresh_without_scope_stu2(smart: Smart, world: World) -> None:
    """Inferno ``token_refresh`` (no scope), ``token_refresh_response_headers``,
    ``token_refresh_response_body``, then ``patient_access`` with the new token."""
    first = await launched(smart, world)
    answer = await refresh(smart, world, first["refresh_token"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["pragma"] == "no-cache"
    body = answer.json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    assert set(body["scope"].split()) <= set(first["scope"].split())
    assert body["refresh_token"] and body["refresh_token"] != first["refresh_token"]
    assert body.get("patient") == world.patient
    read = await smart.fhir("GET", f"Patient/{world.patient}", body["access_token"])
    assert read.status_code == 200


async def test_token_refresh_with_subset_scope_stu2(smart: Smart, world: World) -> None:
    """Inferno ``token_refresh`` with a scope parameter: a subset is granted as asked."""
    subset = "launch/patient offline_access patient/Patient.rs"
    first = await launched(smart, world, scope=SCOPE.replace("patient/*.rs", "patient/Patient.rs"))
    answer = await refresh(smart, world, first["refresh_token"], scope=subset)
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["scope"].split()) == set(subset.split())


async def test_invalid_refresh_token_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_invalid_token_refresh``: an unknown refresh token → 400 or 401."""
    answer = await refresh(smart, world, "not-a-refresh-token")
    assert answer.status_code in (400, 401)
    assert answer.json()["error"] in ("invalid_grant", "invalid_client")


# -- token introspection (smart_token_introspection_stu2_2) ----------------------------------


async def introspect(smart: Smart, token: str, **kwargs: Any) -> httpx.Response:
    return await smart.http.post("/auth/introspect", data={"token": token}, **kwargs)


async def test_introspection_active_token_stu2_2(smart: Smart, world: World) -> None:
    """Inferno ``token_introspection_response`` (active): 200 JSON, active, exact client_id,
    the same scope set, exp not in the past, the launch context, iss/sub of the id_token and
    fhirUser."""
    tokens = await launched(smart, world)
    answer = await introspect(smart, tokens["access_token"], auth=(world.symmetric, world.secret))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith(
        "application/json"
    )
    body = answer.json()
    assert body["active"] is True
    assert body["client_id"] == world.symmetric
    assert set(body["scope"].split()) == set(tokens["scope"].split())
    assert body["exp"] >= time.time() - 600
    assert body["patient"] == world.patient
    id_claims = unverified_claims(tokens["id_token"])  # its signature: the OIDC tests
    assert body["iss"] == id_claims["iss"] and body["sub"] == id_claims["sub"]
    assert body["fhirUser"] == f"{FHIR}/Practitioner/{world.practitioner}"


async def test_introspection_with_bearer_token(smart: Smart, world: World) -> None:
    """SMART token-introspection: an access-controlled endpoint SHALL accept a SMART bearer
    token in Authorization."""
    tokens = await launched(smart, world)
    answer = await introspect(
        smart,
        tokens["access_token"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert answer.status_code == 200 and answer.json()["active"] is True


async def test_introspection_invalid_token_stu2_2(smart: Smart, world: World) -> None:
    """Inferno ``token_introspection_response`` (invalid): 200 and exactly {"active": false}."""
    answer = await introspect(smart, "garbage.token.value", auth=(world.symmetric, world.secret))
    assert answer.status_code == 200
    assert answer.json() == {"active": False}


async def test_introspection_requires_authentication(smart: Smart, world: World) -> None:
    """S17: the endpoint is access-controlled (no credentials → 401 invalid_client)."""
    tokens = await launched(smart, world)
    answer = await introspect(smart, tokens["access_token"])
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_client"


# -- backend services (bulk_data_authorization → backend_services_*) --------------------------


@pytest.fixture(scope="module")
def backend_keys() -> dict[str, Any]:
    return {"RS384": make_key("RS384"), "ES384": make_key("ES384")}


async def backend_client(smart: Smart, keys: dict[str, Any]) -> str:
    return await smart.add_client(
        "bulk-backend", "backend", jwks=public_jwks(*keys.values()), scope="system/*.rs"
    )


async def test_backend_bad_grant_type(smart: Smart, backend_keys: dict[str, Any]) -> None:
    """Inferno ``backend_services_invalid_grant_type``: grant_type=not_a_grant_type → 400."""
    client = await backend_client(smart, backend_keys)
    form = {"grant_type": "not_a_grant_type", "scope": "system/*.rs"}
    answer = await smart.token_request(form, key=backend_keys["RS384"], client_id=client)
    assert answer.status_code == 400
    assert answer.json()["error"] == "unsupported_grant_type"


async def test_backend_bad_assertion_type(smart: Smart, backend_keys: dict[str, Any]) -> None:
    """Inferno ``backend_services_invalid_client_assertion``: a wrong
    client_assertion_type → 400 or 401."""
    client = await backend_client(smart, backend_keys)
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": "not_an_assertion_type",
        "client_assertion": client_assertion(backend_keys["RS384"], client, TOKEN_URL),
    }
    answer = await smart.token_request(form)
    assert answer.status_code in (400, 401)


async def test_backend_invalid_jwt(smart: Smart, backend_keys: dict[str, Any]) -> None:
    """Inferno ``backend_services_invalid_jwt``: an assertion signed by an unregistered key,
    and a malformed one → 400 or 401."""
    client = await backend_client(smart, backend_keys)
    stranger = make_key("RS384", kid=backend_keys["RS384"].kid)
    for assertion in (client_assertion(stranger, client, TOKEN_URL), "not.a.jwt"):
        form = {
            "grant_type": "client_credentials",
            "scope": "system/*.rs",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        }
        answer = await smart.token_request(form)
        assert answer.status_code in (400, 401), answer.text


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
async def test_backend_success(smart: Smart, backend_keys: dict[str, Any], alg: str) -> None:
    """Inferno ``backend_services_token_response``: 200, token_type bearer, numeric expires_in
    (≤ 300), scope; no refresh token; no-store. Both SMART algorithms work."""
    client = await backend_client(smart, backend_keys)
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs"}
    answer = await smart.token_request(form, key=backend_keys[alg], client_id=client)
    assert answer.status_code in (200, 201), answer.text
    body = answer.json()
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 300
    assert body["scope"] == "system/Patient.rs"
    assert "refresh_token" not in body
    assert answer.headers["cache-control"] == "no-store"
    search = await smart.fhir("GET", "Patient", body["access_token"])
    assert search.status_code == 200


# -- asymmetric client standalone launch (g10 smart_asymmetric_launch) ------------------------


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    try:
        yield server
    finally:
        server.stop()


async def test_asymmetric_launch_with_jwks_url_g10(
    smart: Smart, world: World, jwks_server: LoopbackServer
) -> None:
    """g10 ``smart_asymmetric_launch``: a confidential asymmetric client registered with a
    JWKS URL exchanges its code with private_key_jwt (RS384), gets an id_token, and refreshes
    with a new client assertion."""
    key = make_key("RS384")
    jwks_server.serve_json("/jwks.json", public_jwks(key))
    url = f"{jwks_server.base}/jwks.json"
    client = await smart.add_client("app-jwks-url", "confidential", jwks_url=url)
    body = await smart.tokens(client, SCOPE, world.clinician, key=key, patient=world.patient)
    assert body["id_token"] and body["refresh_token"]
    assert "/jwks.json" in jwks_server.requests
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    answer = await smart.token_request(form, key=key, client_id=client)
    assert answer.status_code == 200, answer.text
    without = {"grant_type": "refresh_token", "refresh_token": answer.json()["refresh_token"],
               "client_id": client}  # fmt: skip
    refused = await smart.token_request(without)
    assert refused.status_code in (400, 401)  # a confidential client must authenticate (S10)
