"""Validation over REST: writes are checked against the core definitions (bindings), the
profiles they claim and the profiles the telemedicine rule set requires; ``$validate`` at type
and instance level with ``profile`` and ``mode``; profiles stored on the server are used at once.
In-process and over a real socket (the ``client`` fixture)."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import httpx

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "profiles"
BASE = "https://telemedicine.example.org/fhir/StructureDefinition/"
JSON = {"Content-Type": "application/fhir+json"}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def issues(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    found: list[dict[str, Any]] = body["issue"]
    return found


def errors(response: httpx.Response) -> set[str]:
    return {i["expression"][0] for i in issues(response) if i["severity"] == "error"}


async def test_core_binding_refused_on_create(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "F"})
    assert response.status_code == 422
    assert errors(response) == {"Patient.gender"}
    assert issues(response)[0]["code"] == "code-invalid"
    ok = await client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "female"})
    assert ok.status_code == 201


async def test_claimed_profile_checked_on_write(client: httpx.AsyncClient) -> None:
    valid = fixture("teleconsultation-servicerequest/valid-direct-invitation.json")
    checked = await client.post("/fhir/ServiceRequest/$validate", json=valid, headers=JSON)
    assert errors(checked) == set(), checked.text
    case = fixture("teleconsultation-servicerequest/invalid-missing-reason.json")
    refused = await client.post("/fhir/ServiceRequest", json=case["resource"])
    assert refused.status_code == 422
    assert {e["expression"] for e in case["expect"]} <= errors(refused)


async def test_cn3_3_1_rule_set_requires_the_profile_unclaimed(client: httpx.AsyncClient) -> None:
    """A teleconsultation invitation (its code from teleconsultation-type) must meet the
    profile even without meta.profile: the shipped rule set requires it (CN-3.3.1)."""
    case = fixture("teleconsultation-servicerequest/invalid-missing-reason.json")
    resource = copy.deepcopy(case["resource"])
    resource.pop("meta", None)
    refused = await client.post("/fhir/ServiceRequest", json=resource)
    assert refused.status_code == 422
    assert "ServiceRequest.reasonCode" in errors(refused)
    plain = {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
             "subject": {"display": "someone"}}  # fmt: skip
    assert (await client.post("/fhir/ServiceRequest", json=plain)).status_code == 201


async def test_validate_type_level_with_profile_and_key(client: httpx.AsyncClient) -> None:
    case = fixture("teleradiology-servicerequest/invalid-pet-for-primary-interpretation.json")
    resource = case["resource"]
    response = await client.post("/fhir/ServiceRequest/$validate", json=resource, headers=JSON)
    assert response.status_code == 200
    keys = {
        ext["valueString"]
        for i in issues(response) for ext in i.get("extension", [])
    }  # fmt: skip
    assert {e["key"] for e in case["expect"] if "key" in e} <= keys
    params = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "gender": "female"}},
        {"name": "profile", "valueUri": BASE + "teleradiology-report"},
    ]}  # fmt: skip
    wrong = await client.post("/fhir/Patient/$validate", json=params)
    assert wrong.status_code == 200
    assert errors(wrong) == {"Patient"}


async def test_validate_ok_and_instance_level(client: httpx.AsyncClient) -> None:
    created = await client.post("/fhir/Patient", json={"resourceType": "Patient"})
    pid = created.json()["id"]
    ok = await client.post(f"/fhir/Patient/{pid}/$validate", json={"resourceType": "Parameters"})
    assert ok.status_code == 200
    assert errors(ok) == set()  # dom-6 (a narrative is advised) is a warning
    quiet = {"resourceType": "Basic", "code": {"text": "x"}, "text": {"status": "generated",
             "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'}}  # fmt: skip
    fine = await client.post("/fhir/Basic/$validate", json=quiet, headers=JSON)
    assert [i["severity"] for i in issues(fine)] == ["information"]
    update = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "id": "other"}},
        {"name": "mode", "valueCode": "update"},
    ]}  # fmt: skip
    mismatch = await client.post(f"/fhir/Patient/{pid}/$validate", json=update)
    assert mismatch.status_code == 400
    bad_mode = await client.post(
        "/fhir/Patient/$validate?mode=sideways", json={"resourceType": "Patient"}, headers=JSON
    )
    assert bad_mode.status_code == 400
    assert "mode" in json.dumps(bad_mode.json())
    delete = await client.post(f"/fhir/Patient/{pid}/$validate?mode=delete", json={
        "resourceType": "Parameters"})  # fmt: skip
    assert delete.status_code == 200


async def test_validate_full_checks_core_invariants(client: httpx.AsyncClient) -> None:
    patient = {"resourceType": "Patient", "contact": [{"gender": "male"}]}  # pat-1
    response = await client.post("/fhir/Patient/$validate", json=patient, headers=JSON)
    assert "Patient.contact[0]" in errors(response)
    stored = await client.post("/fhir/Patient", json=patient)  # a plain write skips them
    assert stored.status_code == 201


async def test_a_stored_profile_is_used(client: httpx.AsyncClient) -> None:
    sd = json.loads(
        (FIXTURES.parents[2] / "profiles" / "fsh-generated" / "resources"
         / "StructureDefinition-telemedicine-organization.json").read_text()
    )  # fmt: skip
    sd["url"] = "http://example.org/fhir/StructureDefinition/my-org"
    sd["id"] = "my-org"
    sd["snapshot"]["element"][0]["constraint"] = [
        {"key": "my-1", "severity": "error", "human": "a name is needed",
         "expression": "name.exists()"}
    ]  # fmt: skip
    assert (await client.put("/fhir/StructureDefinition/my-org", json=sd)).status_code in (200, 201)
    claim = {"resourceType": "Organization", "meta": {"profile": [sd["url"]]}}
    for _ in range(100):  # the registry follows the store within milliseconds (POST_COMMIT)
        response = await client.post("/fhir/Organization", json=claim)
        if response.status_code == 422:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 422
    assert "my-1" in response.text


def _unclaimed(name: str) -> tuple[dict[str, Any], set[str]]:
    case = fixture(name)
    resource = copy.deepcopy(case["resource"])
    resource.pop("meta", None)
    keys = {e.get("key") or e["expression"] for e in case["expect"]}
    return resource, keys


def _reported(response: httpx.Response) -> set[str]:
    found = set()
    for issue in issues(response):
        found |= {e["valueString"] for e in issue.get("extension", [])}
        found |= set(issue.get("expression", []))
    return found


async def test_ro12_nuclear_study_for_primary_interpretation_refused(
    client: httpx.AsyncClient,
) -> None:
    """The rule set applies the teleradiology profile to every request with a purpose, claimed
    or not: PET for a primary interpretation fails tr-sr-1 (RO-12)."""
    resource, keys = _unclaimed(
        "teleradiology-servicerequest/invalid-pet-for-primary-interpretation.json"
    )
    response = await client.post("/fhir/ServiceRequest", json=resource)
    assert response.status_code == 422
    assert keys <= _reported(response)


async def test_ro39_ro44_clinical_question_and_responsible_physician_required(
    client: httpx.AsyncClient,
) -> None:
    for name in ("invalid-missing-clinical-question", "invalid-missing-exam-responsible-physician",
                 "invalid-missing-reason"):  # fmt: skip
        resource, keys = _unclaimed(f"teleradiology-servicerequest/{name}.json")
        response = await client.post("/fhir/ServiceRequest", json=resource)
        assert response.status_code == 422, name
        assert keys <= _reported(response), name


async def test_ro4_purpose_must_be_coded(client: httpx.AsyncClient) -> None:
    resource, keys = _unclaimed("teleradiology-servicerequest/invalid-purpose-not-coded.json")
    response = await client.post("/fhir/ServiceRequest", json=resource)
    assert response.status_code == 422
    assert keys <= _reported(response)


async def test_ro15a_ro15b_ro21_2_report_claiming_the_profile(client: httpx.AsyncClient) -> None:
    """A report claiming teleradiology-report is refused without the interpreter's specialty
    (RO-15a), the request it answers (RO-15b) or, for an addendum, the initial report (RO-21.2)."""
    for name in ("invalid-interpreter-not-a-radiologist", "invalid-missing-request",
                 "invalid-addendum-without-initial-report"):  # fmt: skip
        case = fixture(f"teleradiology-report/{name}.json")
        response = await client.post("/fhir/DiagnosticReport", json=case["resource"])
        assert response.status_code == 422, name
        expected = {e.get("key") or e["expression"] for e in case["expect"]}
        assert expected <= _reported(response), name
