"""Inferno SMART launch groups: ``smart_standalone_launch_stu2_2`` (confidential symmetric
client), ``smart_ehr_launch_stu2_2`` (launch handle, context, banner, style), and
``smart_openid_connect_stu2_2`` (id_token and fhirUser), plus the g10 unauthorized-access
check on the launched patient."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.api.smart.conftest import APP_ORIGIN, FHIR, ISSUER, REDIRECT, Smart
from tests.api.smart.world import World

pytestmark = pytest.mark.asyncio(loop_scope="module")

STANDALONE_SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
EHR_SCOPE = "launch openid fhirUser offline_access user/*.rs"


def check_token_response(body: dict[str, Any], requested: str) -> None:
    """Inferno ``token_response_body`` (STU2): access_token, token_type bearer, numeric
    expires_in, scope present; granted scopes a subset of the requested ones."""
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert body["token_type"].lower() == "bearer"
    assert isinstance(body["expires_in"], int) and 0 < body["expires_in"] <= 3600
    assert isinstance(body["scope"], str) and body["scope"]
    assert set(body["scope"].split()) <= set(requested.split())


async def test_standalone_launch_symmetric_stu2_2(smart: Smart, world: World) -> None:
    """Inferno ``smart_standalone_launch_stu2_2``: app_redirect (GET, PKCE S256),
    code_received (code and the same state), token_exchange with HTTP Basic, token_response
    body and headers; the picked patient is in context."""
    done = await smart.authorization(
        world.symmetric, STANDALONE_SCOPE, world.clinician, patient=world.patient
    )
    assert done.location.startswith(REDIRECT + "?")
    assert done.params["state"] == done.state
    assert "error" not in done.params
    answer = await smart.exchange(done, world.symmetric, secret=world.secret)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"  # token_response_headers
    assert answer.headers["pragma"] == "no-cache"
    body = answer.json()
    check_token_response(body, STANDALONE_SCOPE)
    assert body["patient"] == world.patient
    assert body["refresh_token"] and body["id_token"]
    assert set(body["scope"].split()) == set(STANDALONE_SCOPE.split())


async def test_standalone_launch_authorize_post(smart: Smart, world: World) -> None:
    """Capability ``authorize-post`` (STU2 ``app_redirect_test_stu2`` POST variant): the same
    launch with the authorization request sent as a form POST."""
    body = await smart.tokens(
        world.symmetric, STANDALONE_SCOPE, world.clinician, secret=world.secret,
        patient=world.patient, method="POST",
    )  # fmt: skip
    check_token_response(body, STANDALONE_SCOPE)


async def test_unauthorized_then_authorized_patient_read_g10(smart: Smart, world: World) -> None:
    """g10 ``unauthorized_access_test`` / standalone ``patient_access``: Patient/{id} without a
    token → 401; with the launch's token → 200."""
    body = await smart.tokens(
        world.symmetric, STANDALONE_SCOPE, world.clinician, secret=world.secret,
        patient=world.patient,
    )  # fmt: skip
    assert (await smart.fhir("GET", f"Patient/{world.patient}")).status_code == 401
    read = await smart.fhir("GET", f"Patient/{world.patient}", body["access_token"])
    assert read.status_code == 200 and read.json()["id"] == world.patient


async def test_public_client_launch_and_token_cors_stu2_2(smart: Smart, world: World) -> None:
    """g10 Group06 public-client standalone launch, and Inferno ``cors_token_exchange`` (STU2.2):
    the token answer to a browser app carries its registered origin."""
    done = await smart.authorization(world.public, STANDALONE_SCOPE, world.patient_user)
    form = {
        "grant_type": "authorization_code", "code": done.code, "redirect_uri": REDIRECT,
        "code_verifier": done.verifier, "client_id": world.public,
    }  # fmt: skip
    answer = await smart.token_request(form, headers={"Origin": APP_ORIGIN})
    assert answer.status_code == 200, answer.text
    assert answer.headers.get_list("access-control-allow-origin") == [APP_ORIGIN]
    body = answer.json()
    check_token_response(body, STANDALONE_SCOPE)
    assert body["patient"] == world.patient  # the patient user's own record


async def ehr_launch(smart: Smart, world: World, **context: Any) -> str:
    payload = {"patient": world.patient, "encounter": world.encounter, **context}
    answer = await smart.http.post(
        "/auth/launch", json=payload, headers={"Authorization": f"Bearer {smart.admin_token}"}
    )
    assert answer.status_code == 201, answer.text
    assert 0 < answer.json()["expires_in"] <= 300
    return str(answer.json()["launch"])


async def test_ehr_launch_stu2_2(smart: Smart, world: World) -> None:
    """Inferno ``smart_ehr_launch_stu2_2`` (g10 EHR practitioner, POST authorize): the launch
    handle is echoed; the token response carries patient, encounter, need_patient_banner and
    smart_style_url, and the style URL is fetchable JSON (``token_response_body`` EHR)."""
    launch = await ehr_launch(smart, world, need_patient_banner=True)
    body = await smart.tokens(
        world.symmetric, EHR_SCOPE, world.clinician, secret=world.secret, launch=launch,
        method="POST",
    )  # fmt: skip
    check_token_response(body, EHR_SCOPE)
    assert body["patient"] == world.patient
    assert body["encounter"] == world.encounter
    assert body["need_patient_banner"] is True
    style_url = body["smart_style_url"]
    assert style_url.startswith("http://127.0.0.1:8080/")
    style = await smart.http.get(style_url.removeprefix("http://127.0.0.1:8080"))
    assert style.status_code == 200 and style.headers["content-type"].startswith("application/json")
    assert isinstance(style.json(), dict) and style.json()
    read = await smart.fhir("GET", f"Encounter/{world.encounter}", body["access_token"])
    assert read.status_code == 200


async def test_ehr_launch_with_patient_scopes_g10(smart: Smart, world: World) -> None:
    """g10 Group06 ``ehr_launch_with_patient_scopes``: patient/ scopes in an EHR launch give the
    launch's patient in context, and the patient compartment confines the token."""
    launch = await ehr_launch(smart, world, need_patient_banner=False)
    scope = "launch openid fhirUser patient/*.rs"
    body = await smart.tokens(
        world.symmetric, scope, world.clinician, secret=world.secret, launch=launch
    )
    assert body["patient"] == world.patient and body["need_patient_banner"] is False
    token = body["access_token"]
    assert (await smart.fhir("GET", f"Patient/{world.patient}", token)).status_code == 200
    assert (await smart.fhir("GET", f"Patient/{world.other_patient}", token)).status_code in (
        403, 404,
    )  # fmt: skip


async def id_token_claims(smart: Smart, id_token: str, client_id: str) -> dict[str, Any]:
    """Inferno ``openid_token_header`` / ``openid_token_payload``: RS256 with a kid found in the
    JWKS, valid signature, iss = issuer, aud = client_id, exp/iat/sub (60 s leeway)."""
    config = (await smart.http.get("/auth/.well-known/openid-configuration")).json()
    jwks = (await smart.http.get(config["jwks_uri"].removeprefix("http://127.0.0.1:8080"))).json()
    assert all(k["kty"] == "RSA" for k in jwks["keys"])  # openid_retrieve_jwks
    keys = KeySet.import_key_set(jwks)
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    claims = dict(token.claims)
    assert claims["iss"] == ISSUER == config["issuer"]
    assert claims["aud"] == client_id or client_id in claims["aud"]
    now = time.time()
    assert claims["exp"] > now - 60 and claims["iat"] <= now + 60
    assert isinstance(claims["sub"], str) and 0 < len(claims["sub"]) < 256
    return claims


async def test_openid_connect_stu2_2(smart: Smart, world: World) -> None:
    """Inferno ``smart_openid_connect_stu2_2``: id_token decoded and verified; the nonce echoed;
    ``fhirUser`` an absolute URL of a Practitioner readable with the access token (also with
    CORS for the app's origin, STU2.2 ``openid_fhir_user_claim``)."""
    body = await smart.tokens(
        world.symmetric, EHR_SCOPE.replace("launch ", ""), world.clinician, secret=world.secret,
        nonce="n-0S6_WzA2Mj",
    )  # fmt: skip
    claims = await id_token_claims(smart, body["id_token"], world.symmetric)
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    fhir_user = claims["fhirUser"]
    assert fhir_user == f"{FHIR}/Practitioner/{world.practitioner}"
    read = await smart.http.get(
        fhir_user.removeprefix("http://127.0.0.1:8080"),
        headers={"Authorization": f"Bearer {body['access_token']}", "Origin": APP_ORIGIN},
    )
    assert read.status_code == 200 and read.json()["resourceType"] == "Practitioner"
    assert read.headers.get("access-control-allow-origin") == APP_ORIGIN


async def test_openid_without_fhiruser_scope_has_no_claim(smart: Smart, world: World) -> None:
    """``fhirUser`` is a claim of the ``fhirUser`` scope only (SMART scopes-and-launch-context)."""
    body = await smart.tokens(
        world.symmetric, "openid user/Patient.rs", world.clinician, secret=world.secret
    )
    claims = await id_token_claims(smart, body["id_token"], world.symmetric)
    assert "fhirUser" not in claims
