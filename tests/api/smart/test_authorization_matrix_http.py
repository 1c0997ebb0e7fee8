"""The authorization matrix over HTTP with real tokens from the authorization server: token
kinds (patient-level with a patient in context, patient read-only, user-level, system,
granular, wrong interaction letter) by interactions (read, vread, search with _include and
_revinclude, compartment search, history, create, update, patch, delete, batch, transaction).
A denial is 403 with an OperationOutcome and nothing leaks; a missing, invalid, expired,
revoked or foreign-audience token is 401 with a WWW-Authenticate challenge (S18)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.api.smart.conftest import Smart
from tests.api.smart.test_security_checklist_a import foreign_token
from tests.api.smart.world import OBS_CATEGORY, World, observation

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Tokens:
    patient: str  # patient/*.cruds, the world's patient in context
    patient_read: str  # patient/*.rs
    user: str  # user/*.cruds (clinician)
    system: str  # system/*.cruds
    granular: str  # patient/Observation.rs?category=laboratory + patient/Patient.rs
    read_only_letter: str  # patient/Observation.r (no s)
    search_only_letter: str  # patient/Observation.s (no r)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tokens(smart: Smart, world: World) -> Tokens:
    async def patient_token(scope: str) -> str:
        body = await smart.tokens(world.public, f"launch/patient {scope}", world.patient_user)
        return str(body["access_token"])

    user = await smart.tokens(world.symmetric, "user/*.cruds", world.clinician, secret=world.secret)
    return Tokens(
        patient=await patient_token("patient/*.cruds"),
        patient_read=await patient_token("patient/*.rs"),
        user=str(user["access_token"]),
        system=smart.admin_token,
        granular=await patient_token(
            f"patient/Patient.rs patient/Observation.rs?category={OBS_CATEGORY}|laboratory"
        ),
        read_only_letter=await patient_token("patient/Observation.r"),
        search_only_letter=await patient_token("patient/Observation.s"),
    )


def denied(answer: httpx.Response, *also: int) -> None:
    assert answer.status_code in (403, *also), f"{answer.status_code}: {answer.text[:300]}"
    assert answer.json()["resourceType"] == "OperationOutcome"


#: Types outside the Patient compartment: readable with a patient scope for them (the
#: enforcement's documented rule), so they belong to no patient here.
OUTSIDE_COMPARTMENT = {"Practitioner", "OperationOutcome"}


def patients_in(bundle: dict[str, Any]) -> set[str]:
    """The patient each returned resource belongs to (Patient: itself)."""
    owners = set()
    for entry in bundle.get("entry", []):
        resource = entry.get("resource")
        if resource is None or resource["resourceType"] in OUTSIDE_COMPARTMENT:
            continue  # a deleted version in a history has no resource
        if resource["resourceType"] == "Patient":
            owners.add(resource["id"])
        else:
            owners.add(resource["subject"]["reference"].removeprefix("Patient/"))
    return owners


# -- patient-level ---------------------------------------------------------------------------


async def test_patient_read_vread(smart: Smart, world: World, tokens: Tokens) -> None:
    own = await smart.fhir("GET", f"Patient/{world.patient}", tokens.patient)
    assert own.status_code == 200
    version = own.json()["meta"]["versionId"]
    vread = await smart.fhir("GET", f"Patient/{world.patient}/_history/{version}", tokens.patient)
    assert vread.status_code == 200
    denied(await smart.fhir("GET", f"Patient/{world.other_patient}", tokens.patient), 404)
    other = f"Patient/{world.other_patient}/_history/1"
    denied(await smart.fhir("GET", other, tokens.patient), 404)


async def test_patient_search_include_revinclude(
    smart: Smart, world: World, tokens: Tokens
) -> None:
    for path in (
        "Observation",
        "Observation?_include=Observation:subject",
        "Patient?_revinclude=Observation:subject",
        f"Observation?subject=Patient/{world.other_patient}",
        "Patient",
    ):
        answer = await smart.fhir("GET", path, tokens.patient)
        if answer.status_code == 403:
            denied(answer)
            continue
        assert answer.status_code == 200, path
        assert patients_in(answer.json()) <= {world.patient}, path
    both = await smart.fhir("GET", "Patient?_revinclude=Observation:subject", tokens.patient)
    assert len(both.json()["entry"]) == 1 + len(world.observations)


async def test_patient_compartment_and_history(smart: Smart, world: World, tokens: Tokens) -> None:
    own = await smart.fhir("GET", f"Patient/{world.patient}/Observation", tokens.patient)
    assert own.status_code == 200 and patients_in(own.json()) == {world.patient}
    other = await smart.fhir("GET", f"Patient/{world.other_patient}/Observation", tokens.patient)
    if other.status_code == 200:
        assert not patients_in(other.json())
    else:
        denied(other, 404)
    history = await smart.fhir("GET", f"Patient/{world.patient}/_history", tokens.patient)
    assert history.status_code == 200
    type_history = await smart.fhir("GET", "Observation/_history", tokens.patient)
    if type_history.status_code == 200:
        assert patients_in(type_history.json()) <= {world.patient}
    else:
        denied(type_history)
    system_history = await smart.fhir("GET", "_history", tokens.patient_read)
    if system_history.status_code == 200:
        assert patients_in(system_history.json()) <= {world.patient}
    else:
        denied(system_history)


async def test_patient_writes(smart: Smart, world: World, tokens: Tokens) -> None:
    mine = observation(world.patient, "laboratory")
    created = await smart.fhir("POST", "Observation", tokens.patient, json=mine)
    assert created.status_code == 201
    obs_id = created.json()["id"]
    denied(
        await smart.fhir(
            "POST", "Observation", tokens.patient, json=observation(world.other_patient, "survey")
        )
    )
    theirs = await smart.create(observation(world.other_patient, "survey"))
    moved = {**mine, "id": obs_id, "subject": {"reference": f"Patient/{world.other_patient}"}}
    denied(await smart.fhir("PUT", f"Observation/{obs_id}", tokens.patient, json=moved))
    updated = await smart.fhir(
        "PUT", f"Observation/{obs_id}", tokens.patient, json={**mine, "id": obs_id}
    )
    assert updated.status_code == 200
    patch = [{"op": "replace", "path": "/status", "value": "amended"}]
    headers = {"Content-Type": "application/json-patch+json"}
    patched = await smart.fhir(
        "PATCH", f"Observation/{obs_id}", tokens.patient, content=_json(patch), headers=headers
    )
    assert patched.status_code == 200, patched.text
    other_patch = await smart.fhir(
        "PATCH", f"Observation/{theirs}", tokens.patient, content=_json(patch), headers=headers
    )
    denied(other_patch, 404)
    denied(await smart.fhir("DELETE", f"Observation/{theirs}", tokens.patient), 404)
    assert (await smart.fhir("GET", f"Observation/{theirs}", tokens.system)).status_code == 200
    gone = await smart.fhir("DELETE", f"Observation/{obs_id}", tokens.patient)
    assert gone.status_code in (200, 204)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


async def test_patient_read_only_cannot_write(smart: Smart, world: World, tokens: Tokens) -> None:
    target = world.observations["laboratory"]
    body = observation(world.patient, "laboratory")
    denied(await smart.fhir("POST", "Observation", tokens.patient_read, json=body))
    denied(
        await smart.fhir(
            "PUT", f"Observation/{target}", tokens.patient_read, json={**body, "id": target}
        )
    )
    denied(await smart.fhir("DELETE", f"Observation/{target}", tokens.patient_read))


def bundle(kind: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


async def test_patient_batch_and_transaction(smart: Smart, world: World, tokens: Tokens) -> None:
    reads = bundle("batch", [
        {"request": {"method": "GET", "url": f"Patient/{world.patient}"}},
        {"request": {"method": "GET", "url": f"Patient/{world.other_patient}"}},
    ])  # fmt: skip
    answer = await smart.fhir("POST", "", tokens.patient, json=reads)
    assert answer.status_code == 200
    first, second = answer.json()["entry"]
    assert first["response"]["status"].startswith("200")
    assert second["response"]["status"][:3] in ("403", "404")
    assert second.get("resource", {}).get("resourceType", "OperationOutcome") == "OperationOutcome"
    foreign = bundle("transaction", [
        {"resource": observation(world.patient, "survey"),
         "request": {"method": "POST", "url": "Observation"}},
        {"resource": observation(world.other_patient, "survey"),
         "request": {"method": "POST", "url": "Observation"}},
    ])  # fmt: skip
    denied(await smart.fhir("POST", "", tokens.patient, json=foreign))
    fine = bundle("transaction", foreign["entry"][:1])
    assert (await smart.fhir("POST", "", tokens.patient, json=fine)).status_code == 200


# -- user, system, granular, wrong letter ------------------------------------------------------


async def test_user_and_system_levels(smart: Smart, world: World, tokens: Tokens) -> None:
    for token in (tokens.user, tokens.system):
        other = await smart.fhir("GET", f"Patient/{world.other_patient}", token)
        assert other.status_code == 200
        search = await smart.fhir("GET", "Observation", token)
        assert {world.patient, world.other_patient} <= patients_in(search.json())
        created = await smart.fhir("POST", "Patient", token, json={"resourceType": "Patient"})
        assert created.status_code == 201
    denied(await smart.fhir("GET", "AuditEvent", tokens.user))  # AuditEvent is system-only


async def test_granular_category_scope(smart: Smart, world: World, tokens: Tokens) -> None:
    search = await smart.fhir("GET", "Observation", tokens.granular)
    assert search.status_code == 200
    categories = {
        c["code"] for e in search.json()["entry"] for c in e["resource"]["category"][0]["coding"]
    }
    assert categories == {"laboratory"}
    vital = world.observations["vital-signs"]
    denied(await smart.fhir("GET", f"Observation/{vital}", tokens.granular), 404)
    denied(await smart.fhir("GET", "Condition", tokens.granular))
    body = observation(world.patient, "laboratory")
    denied(await smart.fhir("POST", "Observation", tokens.granular, json=body))


async def test_wrong_interaction_letter(smart: Smart, world: World, tokens: Tokens) -> None:
    lab = world.observations["laboratory"]
    assert (await smart.fhir("GET", f"Observation/{lab}", tokens.read_only_letter)).status_code == (
        200
    )
    denied(await smart.fhir("GET", "Observation", tokens.read_only_letter))
    assert (await smart.fhir("GET", "Observation", tokens.search_only_letter)).status_code == 200
    denied(await smart.fhir("GET", f"Observation/{lab}", tokens.search_only_letter))
    denied(await smart.fhir("GET", f"Patient/{world.patient}", tokens.search_only_letter))


# -- 401: missing, invalid, expired, revoked, foreign audience -----------------------------------


def unauthenticated(answer: httpx.Response, error: bool = True) -> None:
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is error
    assert answer.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "Patient/x"), ("GET", "Observation"), ("POST", "Patient"), ("DELETE", "Patient/x"),
     ("POST", ""), ("GET", "_history")],
)  # fmt: skip
async def test_missing_and_invalid_tokens(smart: Smart, method: str, path: str) -> None:
    body = {"resourceType": "Patient"} if method == "POST" and path else None
    if method == "POST" and not path:
        body = bundle("batch", [])
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    unauthenticated(await smart.fhir(method, path, None, **kwargs), error=False)
    unauthenticated(await smart.fhir(method, path, "not-a-token", **kwargs))
    unauthenticated(await smart.fhir(method, path, "a.b.c", **kwargs))
    foreign = foreign_token(smart, "https://other.example/fhir")
    unauthenticated(await smart.fhir(method, path, foreign, **kwargs))


async def test_expired_and_revoked_tokens(smart: Smart, world: World) -> None:
    body = await smart.tokens(world.public, "launch/patient patient/*.rs", world.patient_user)
    token = body["access_token"]
    smart.clock.advance(3700)
    try:
        unauthenticated(await smart.fhir("GET", f"Patient/{world.patient}", token))
    finally:
        smart.clock.advance(-3700)
    assert (await smart.fhir("GET", f"Patient/{world.patient}", token)).status_code == 200
    revoke = await smart.http.post("/auth/revoke", data={"token": token, "client_id": world.public})
    assert revoke.status_code == 200
    unauthenticated(await smart.fhir("GET", f"Patient/{world.patient}", token))
