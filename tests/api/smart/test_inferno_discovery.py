"""Inferno SMART discovery: ``smart_discovery_stu2_2`` (well-known endpoint, required fields
and types, PKCE methods, capabilities, CORS) and ``smart_discovery`` STU1 (CapabilityStatement
``oauth-uris`` URLs equal to the well-known ones)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.auth.server.discovery import OAUTH_URIS
from tests.api.smart.conftest import FHIR, ISSUER, Smart

pytestmark = pytest.mark.asyncio(loop_scope="module")

#: (g)(10) standalone-patient and EHR-practitioner capability sets (well_known_capabilities).
G10_CAPABILITIES = {
    "launch-standalone", "launch-ehr", "client-public", "client-confidential-symmetric",
    "client-confidential-asymmetric", "sso-openid-connect", "context-standalone-patient",
    "context-banner", "context-style", "context-ehr-patient", "context-ehr-encounter",
    "permission-offline", "permission-patient", "permission-user", "authorize-post",
    "permission-v2", "permission-v1",
}  # fmt: skip


async def well_known(smart: Smart, **headers: str) -> dict[str, Any]:
    answer = await smart.http.get("/fhir/.well-known/smart-configuration", headers=headers)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


async def test_well_known_endpoint_stu2_2(smart: Smart) -> None:
    """Inferno ``well_known_endpoint`` (STU2.2 1.1): 200 JSON whatever the Accept header, every
    URL absolute; required fields present with their types."""
    for accept in ("application/json", "text/html", "*/*"):
        doc = await well_known(smart, Accept=accept)
    doc = await well_known(smart)
    urls = ("authorization_endpoint", "token_endpoint", "jwks_uri", "issuer",
            "introspection_endpoint", "revocation_endpoint", "management_endpoint")  # fmt: skip
    for name in urls:
        assert isinstance(doc[name], str) and doc[name].startswith("http://127.0.0.1:8080/")
    assert doc["issuer"] == ISSUER
    assert doc["token_endpoint"] == f"{ISSUER}/token"
    assert doc["authorization_endpoint"] == f"{ISSUER}/authorize"
    lists = (
        "grant_types_supported",
        "code_challenge_methods_supported",
        "capabilities",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
        "response_types_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    )
    for name in lists:
        assert isinstance(doc[name], list) and all(isinstance(v, str) for v in doc[name])
    assert "authorization_code" in doc["grant_types_supported"]
    assert "client_credentials" in doc["grant_types_supported"]
    assert doc["response_types_supported"] == ["code"]
    assert {"RS384", "ES384"} & set(doc["token_endpoint_auth_signing_alg_values_supported"])


async def test_well_known_pkce_methods_stu2(smart: Smart) -> None:
    """Inferno ``well_known_endpoint`` PKCE check: S256 listed, ``plain`` not listed."""
    doc = await well_known(smart)
    assert "S256" in doc["code_challenge_methods_supported"]
    assert "plain" not in doc["code_challenge_methods_supported"]


async def test_well_known_capabilities_g10(smart: Smart) -> None:
    """Inferno ``well_known_capabilities_stu2`` / g10 ``well_known_capabilities``: every
    capability (g)(10) requires is listed; ``sso-openid-connect`` brings issuer and jwks_uri."""
    doc = await well_known(smart)
    missing = G10_CAPABILITIES - set(doc["capabilities"])
    assert not missing, missing
    assert doc["issuer"] and doc["jwks_uri"]


async def test_claimed_capabilities_are_consistent(smart: Smart) -> None:
    """What the document claims is backed by the rest of it: each claimed client type has an
    auth method, authorize-post means POST works (tested in the launch modules), scopes
    listed are well-formed, permission-v1 lists v1 scopes, the JWKS is served."""
    doc = await well_known(smart)
    methods = set(doc["token_endpoint_auth_methods_supported"])
    claimed = set(doc["capabilities"])
    if "client-public" in claimed:
        assert "none" in methods
    if "client-confidential-symmetric" in claimed:
        assert "client_secret_basic" in methods
    if "client-confidential-asymmetric" in claimed:
        assert "private_key_jwt" in methods
    if "permission-v1" in claimed:
        assert any(s.endswith(".read") for s in doc["scopes_supported"])
    if "permission-offline" in claimed:
        assert "offline_access" in doc["scopes_supported"]
    if "permission-online" in claimed:
        assert "online_access" in doc["scopes_supported"]
    jwks = await smart.http.get(doc["jwks_uri"].removeprefix("http://127.0.0.1:8080"))
    assert jwks.status_code == 200 and jwks.json()["keys"]


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/.well-known/smart-configuration",
        "/fhir/metadata",
    ],
)
async def test_discovery_cors_stu2_2(smart: Smart, path: str) -> None:
    """Inferno ``cors_well_known_endpoint`` / ``cors_metadata_request`` (STU2.2): any origin may
    read the discovery documents: exactly one ``Access-Control-Allow-Origin: *``."""
    answer = await smart.http.get(path, headers={"Origin": "https://any-app.example.org"})
    assert answer.status_code == 200
    values = answer.headers.get_list("access-control-allow-origin")
    assert values == ["*"], f"one '*' expected, got {values}"


async def test_discovery_stu1_oauth_uris_match_well_known(smart: Smart) -> None:
    """Inferno ``smart_discovery`` STU1 (``discovery_stu1_group``): the CapabilityStatement's
    ``oauth-uris`` extension exists, has authorize and token, and every URL equals the
    well-known document's; ``security.service`` is coded SMART-on-FHIR."""
    doc = await well_known(smart)
    metadata = await smart.http.get("/fhir/metadata")
    assert metadata.status_code == 200
    security = metadata.json()["rest"][0]["security"]
    codes = [c["code"] for s in security["service"] for c in s["coding"]]
    assert "SMART-on-FHIR" in codes
    (ext,) = [e for e in security["extension"] if e["url"] == OAUTH_URIS]
    uris = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert {"authorize", "token"} <= set(uris)
    names = {"authorize": "authorization_endpoint", "token": "token_endpoint",
             "introspect": "introspection_endpoint", "revoke": "revocation_endpoint",
             "manage": "management_endpoint", "register": "registration_endpoint"}  # fmt: skip
    for short, value in uris.items():
        assert doc.get(names[short]) == value, short
    assert FHIR + "/.well-known/smart-configuration" in security.get("description", "")


async def test_openid_configuration(smart: Smart) -> None:
    """Inferno ``openid_retrieve_configuration`` / ``openid_required_configuration_fields``:
    ``{iss}/.well-known/openid-configuration`` with the fields it needs and RS256."""
    answer = await smart.http.get("/auth/.well-known/openid-configuration")
    assert answer.status_code == 200
    doc = answer.json()
    for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
                 "response_types_supported", "subject_types_supported",
                 "id_token_signing_alg_values_supported"):  # fmt: skip
        assert doc.get(name), name
    assert doc["issuer"] == ISSUER
    assert "RS256" in doc["id_token_signing_alg_values_supported"]
