"""Everything the server answers is itself valid R4: the CapabilityStatement, history and
searchset Bundles, and OperationOutcomes pass the same structural validation as writes."""

from __future__ import annotations

import httpx

from fhir_server.core import fhirjson
from fhir_server.validation import validate_structure
from tests.api.test_http_read_write import PATIENT, json_of


def assert_valid(response: httpx.Response) -> None:
    resource = fhirjson.loads(response.content)
    issues = validate_structure(resource)
    assert issues == [], [(i.expression, i.diagnostics) for i in issues]


async def test_answers_are_valid_r4(inproc: httpx.AsyncClient) -> None:
    assert_valid(await inproc.get("/fhir/metadata"))
    created = await inproc.post("/fhir/Patient", json=PATIENT)
    id = json_of(created)["id"]
    await inproc.delete(f"/fhir/Patient/{id}")
    assert_valid(await inproc.get(f"/fhir/Patient/{id}/_history"))
    assert_valid(await inproc.get("/fhir/_history?_count=1"))
    assert_valid(await inproc.get("/fhir/Patient?_total=accurate"))
    assert_valid(await inproc.get(f"/fhir/Patient/{id}"))  # 410 OperationOutcome
    assert_valid(await inproc.post("/fhir/Patient", json={**PATIENT, "birthDate": "x"}))
    assert_valid(
        await inproc.post(
            "/fhir/Patient", json=PATIENT, headers={"Prefer": "return=OperationOutcome"}
        )
    )
    summary = await inproc.post("/fhir/Patient", json=PATIENT)
    assert_valid(await inproc.get(f"/fhir/Patient/{json_of(summary)['id']}?_summary=true"))


async def test_batch_and_transaction_responses_are_valid_r4(inproc: httpx.AsyncClient) -> None:
    made = json_of(await inproc.post("/fhir/Patient", json=PATIENT))
    entries = [
        {"fullUrl": "urn:uuid:5e1f6b2a-0000-4000-8000-000000000001", "resource": PATIENT,
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": f"Patient/{made['id']}", "ifNoneMatch": 'W/"1"'}},
        {"request": {"method": "GET", "url": "Patient?_count=1"}},
        {"request": {"method": "DELETE", "url": "Patient/never-there"}},
    ]  # fmt: skip
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
        for prefer in ("representation", "minimal", "OperationOutcome"):
            headers = {"Prefer": f"return={prefer}"}
            assert_valid(await inproc.post("/fhir", json=bundle, headers=headers))
    invalid = {"resource": {**PATIENT, "birthDate": "x"}, "request": entries[0]["request"]}
    failing = [*entries, {"request": {"method": "GET", "url": "Patient/unknown"}}, invalid]
    assert_valid(
        await inproc.post(
            "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": failing}
        )
    )
    assert_valid(
        await inproc.post(
            "/fhir", json={"resourceType": "Bundle", "type": "transaction", "entry": failing}
        )
    )
