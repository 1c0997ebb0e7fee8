"""The (g)(10) "Additional Authorization Tests" (Group06) and access scenarios: invalid aud,
invalid token request, invalid PKCE (four cases), token revocation, SMART v1 scopes, fine-grained
(category) scopes, granular scope selection on the consent page, limited access and
unauthorized access."""

from __future__ import annotations

import html
from typing import Any

import pytest

from tests.api.smart.conftest import REDIRECT, Smart, pkce_pair
from tests.api.smart.world import COND_CATEGORY, OBS_CATEGORY, World

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"


async def test_invalid_aud_yields_no_code_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_invalid_aud``: aud=https://inferno.healthit.gov/invalid_aud gives no code
    (an error redirect to the registered URI, state echoed, is allowed)."""
    async with smart.browser() as browser:
        answer, _, state = await smart.authorize(
            world.symmetric, SCOPE, browser=browser, aud="https://inferno.healthit.gov/invalid_aud"
        )
    if answer.is_redirect:
        location = answer.headers["location"]
        assert location.startswith(REDIRECT + "?")
        assert "code=" not in location and "error=invalid_request" in location
        assert f"state={state}" in location
    else:
        assert answer.status_code >= 400 and 'name="password"' not in answer.text


async def test_invalid_token_request_bad_code_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_invalid_token_request`` (invalid code): a made-up code → 400."""
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    answer = await smart.exchange(done, world.public, code="invalid-code-value")
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


async def test_invalid_token_request_bad_client_id_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_invalid_token_request`` (invalid client_id): → 400 or 401."""
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    form = {"grant_type": "authorization_code", "code": done.code, "redirect_uri": REDIRECT,
            "code_verifier": done.verifier, "client_id": "no-such-client"}  # fmt: skip
    answer = await smart.token_request(form)
    assert answer.status_code in (400, 401)
    assert answer.json()["error"] == "invalid_client"


@pytest.mark.parametrize("case", ["missing", "blank", "wrong", "equals_challenge"])
async def test_invalid_pkce_g10(smart: Smart, world: World, case: str) -> None:
    """g10 ``smart_invalid_pkce`` (four launches): the code exchange fails with 400/401 when
    the code_verifier is missing, blank, wrong, or equal to the code_challenge; also for a
    confidential client."""
    verifier, challenge = pkce_pair()
    done = await smart.authorization(
        world.symmetric, SCOPE, world.patient_user,
        code_challenge=challenge, code_challenge_method="S256",
    )  # fmt: skip
    done.verifier = verifier
    given = {"missing": "<omit>", "blank": "", "wrong": pkce_pair()[0]}.get(case, challenge)
    answer = await smart.exchange(done, world.symmetric, secret=world.secret, code_verifier=given)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] in ("invalid_request", "invalid_grant")


async def test_token_revocation_g10(smart: Smart, world: World) -> None:
    """g10 ``token_revocation``: after revoking (RFC 7009) a FHIR read with the access token
    gives 401/403/404 and a refresh with the refresh token gives 400/401."""
    tokens = await smart.tokens(
        world.symmetric, SCOPE, world.clinician, secret=world.secret, patient=world.patient
    )
    read = await smart.fhir("GET", f"Patient/{world.patient}", tokens["access_token"])
    assert read.status_code == 200
    answer = await smart.http.post(
        "/auth/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(world.symmetric, world.secret),
    )
    assert answer.status_code == 200
    read = await smart.fhir("GET", f"Patient/{world.patient}", tokens["access_token"])
    assert read.status_code in (401, 403, 404)
    again = await smart.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        secret=(world.symmetric, world.secret),
    )
    assert again.status_code in (400, 401)


async def test_patient_revokes_through_management_endpoint(smart: Smart, world: World) -> None:
    """ONC: revocation at the patient's direction: the user lists their grants at the
    management endpoint and deletes one; the app's token stops working."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    own = {"Authorization": f"Bearer {tokens['access_token']}"}
    listed = await smart.http.get("/auth/grants", headers=own)
    assert listed.status_code == 200
    grant_id = tokens_grant(tokens)
    assert grant_id in [g["grant_id"] for g in listed.json()["grants"]]
    deleted = await smart.http.delete(f"/auth/grants/{grant_id}", headers=own)
    assert deleted.status_code == 204
    read = await smart.fhir("GET", f"Patient/{world.patient}", tokens["access_token"])
    assert read.status_code == 401


def tokens_grant(tokens: dict[str, Any]) -> str:
    from tests.api.smart.conftest import unverified_claims

    return str(unverified_claims(tokens["access_token"])["gid"])


async def test_v1_scopes_launch_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_v1_scopes``: v1 scopes (patient/*.read) are accepted and echoed in v1 form;
    the token reads and searches but cannot write."""
    scope = "launch/patient openid fhirUser offline_access patient/*.read"
    tokens = await smart.tokens(
        world.symmetric, scope, world.clinician, secret=world.secret, patient=world.patient
    )
    assert "patient/*.read" in tokens["scope"].split()
    token = tokens["access_token"]
    assert (await smart.fhir("GET", f"Patient/{world.patient}", token)).status_code == 200
    search = await smart.fhir("GET", "Observation", token)
    assert search.status_code == 200
    assert ids(search.json()) == set(world.observations.values())
    write = await smart.fhir("POST", "Patient", token, json={"resourceType": "Patient"})
    assert write.status_code == 403


def ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


async def test_fine_grained_scopes_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_granular_scopes`` (fine-grained, two launches): category-restricted scopes
    return only resources of those categories, whatever the search asks."""
    lab = f"patient/Observation.rs?category={OBS_CATEGORY}|laboratory"
    problems = f"patient/Condition.rs?category={COND_CATEGORY}|problem-list-item"
    scope = f"launch/patient openid fhirUser {lab} {problems} patient/Patient.rs"
    tokens = await smart.tokens(
        world.symmetric, scope, world.clinician, secret=world.secret, patient=world.patient
    )
    assert {lab, problems} <= set(tokens["scope"].split())
    token = tokens["access_token"]
    observations = await smart.fhir("GET", "Observation", token, params={"patient": world.patient})
    assert observations.status_code == 200
    assert ids(observations.json()) == {world.observations["laboratory"]}
    vital = await smart.fhir("GET", "Observation", token, params={"category": "vital-signs"})
    assert vital.status_code == 403 or not ids(vital.json())
    conditions = await smart.fhir("GET", "Condition", token)
    assert ids(conditions.json()) == {world.conditions["problem-list-item"]}
    other = world.observations["vital-signs"]
    assert (await smart.fhir("GET", f"Observation/{other}", token)).status_code in (403, 404)


async def test_granular_scope_selection_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_granular_scope_selection``: the app asks for resource-level Condition.rs
    and Observation.rs; on the consent page the user ticks only category choices; the server
    grants those granular scopes and not the resource-level ones."""
    scope = (
        "launch/patient openid fhirUser offline_access patient/Patient.rs "
        "patient/Condition.rs patient/Observation.rs"
    )
    lab = f"patient/Observation.rs?category={OBS_CATEGORY}|laboratory"
    concern = f"patient/Condition.rs?category={COND_CATEGORY}|health-concern"

    def pick(chosen: list[str]) -> list[str]:
        kept = [s for s in chosen if s not in ("patient/Condition.rs", "patient/Observation.rs")]
        return [*kept, lab, concern]

    done = await smart.authorization(world.public, scope, world.patient_user, scopes=pick)
    consent = done.pages[-1]
    assert f'value="{lab}"' in html.unescape(consent)  # the category choice was offered
    answer = await smart.exchange(done, world.public)
    granted = set(answer.json()["scope"].split())
    assert {lab, concern} <= granted
    assert not {"patient/Condition.rs", "patient/Observation.rs"} & granted
    token = answer.json()["access_token"]
    assert ids((await smart.fhir("GET", "Observation", token)).json()) == {
        world.observations["laboratory"]
    }
    assert ids((await smart.fhir("GET", "Condition", token)).json()) == {
        world.conditions["health-concern"]
    }


async def test_limited_access_g10(smart: Smart, world: World) -> None:
    """g10 ``smart_limited_app`` / ``resource_access``: the user deselects resource types; the
    granted scopes are exactly what was kept, and the other types answer 401/403."""
    wanted = ("Patient", "Observation", "Condition", "Encounter")
    scope = "launch/patient openid fhirUser offline_access " + " ".join(
        f"patient/{t}.rs" for t in wanted
    )

    def keep_patient_and_conditions(chosen: list[str]) -> list[str]:
        return [s for s in chosen if s not in ("patient/Observation.rs", "patient/Encounter.rs")]

    done = await smart.authorization(
        world.public, scope, world.patient_user, scopes=keep_patient_and_conditions
    )
    body = (await smart.exchange(done, world.public)).json()
    granted = set(body["scope"].split())
    assert {"patient/Patient.rs", "patient/Condition.rs"} <= granted
    assert not {"patient/Observation.rs", "patient/Encounter.rs"} & granted
    token = body["access_token"]
    assert (await smart.fhir("GET", f"Patient/{world.patient}", token)).status_code == 200
    assert (await smart.fhir("GET", "Condition", token)).status_code == 200
    for path in ("Observation", "Encounter", f"Observation/{world.observations['laboratory']}"):
        assert (await smart.fhir("GET", path, token)).status_code in (401, 403), path


async def test_unauthorized_access_g10(smart: Smart, world: World) -> None:
    """g10 ``unauthorized_access``: FHIR requests without a token → 401 (metadata stays open)."""
    for path in (f"Patient/{world.patient}", "Observation", "Patient?_id=" + world.patient):
        answer = await smart.fhir("GET", path)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert (await smart.fhir("GET", "metadata")).status_code == 200
