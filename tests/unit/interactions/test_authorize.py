"""Scope enforcement rules one by one (interactions/authorize.py, authorize_search.py), through
the service with a real SQLite store. The matrix over every interaction and token kind is in
test_authorize_matrix.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.bootstrap import Application
from fhir_server.core import fhirjson
from fhir_server.core.errors import Forbidden
from fhir_server.interactions.service import FhirService
from tests.unit.interactions.authorize_corpus import (
    CATEGORY,
    LAB,
    SERVER,
    corpus_app,
    ctx,
    keys_in,
    observation,
)

VITALS = f"{CATEGORY}|vital-signs"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Application]:
    async with corpus_app(tmp_path) as application:
        yield application


@pytest.fixture
def service(app: Application) -> FhirService:
    return app.service


async def test_ro24_missing_scope_names_what_would_allow_it(service: FhirService) -> None:
    with pytest.raises(Forbidden) as raised:
        await service.search_type(ctx("patient/Patient.rs", "p1"), "Observation")
    assert raised.value.diagnostics == (
        "The access token grants no scope to search Observation (needs patient/Observation.s, "
        "user/Observation.s or system/Observation.s)"
    )
    with pytest.raises(Forbidden, match="no scope to read Observation"):
        await service.read(ctx("patient/Observation.s", "p1"), "Observation", "o1")
    with pytest.raises(Forbidden, match="without a patient in context"):
        await service.read(ctx("patient/*.rs"), "Patient", "p1")


async def test_ro24_capabilities_need_no_scope(service: FhirService) -> None:
    found = await service.capabilities(ctx("openid"))
    assert found["resourceType"] == "CapabilityStatement"


@pytest.mark.parametrize(
    "scopes", ["user/AuditEvent.rs", "user/*.rs", "patient/AuditEvent.rs", "patient/*.cruds"]
)
async def test_ro24_audit_events_only_through_system_scopes(
    service: FhirService, scopes: str
) -> None:
    with pytest.raises(Forbidden, match=r"needs system/AuditEvent\.r\)"):
        await service.read(ctx(scopes, "p1"), "AuditEvent", "a1")
    with pytest.raises(Forbidden):
        await service.search_system(ctx(scopes, "p1"), [("_type", "AuditEvent")])
    shown = await service.read(ctx("system/AuditEvent.r"), "AuditEvent", "a1")
    assert keys_in(shown) == {("AuditEvent", "a1")}


async def test_ro24_patient_scope_reads_its_own_compartment_only(service: FhirService) -> None:
    p1 = ctx("patient/*.rs", "p1")
    assert keys_in(await service.read(p1, "Observation", "o1")) == {("Observation", "o1")}
    with pytest.raises(Forbidden, match="outside the patient compartment"):
        await service.read(p1, "Observation", "o3")
    with pytest.raises(Forbidden):
        await service.read(p1, "Patient", "p2")
    found = await service.search_type(p1, "Observation", [("_total", "accurate")])
    assert keys_in(found) == {("Observation", "o1"), ("Observation", "o2")}
    assert found["total"] == 2  # the restriction is in the criteria: totals stay right


async def test_ro24_compartment_search_of_another_patient_is_forbidden(
    service: FhirService,
) -> None:
    p1 = ctx("patient/*.rs", "p1")
    with pytest.raises(Forbidden, match="Patient/p2 is not the patient in context"):
        await service.search_compartment(p1, "Patient", "p2", "Observation")
    with pytest.raises(Forbidden):
        await service.search_compartment(p1, "Patient", "p2", "*")
    found = await service.search_compartment(p1, "Patient", "p1", "*")
    assert ("Observation", "o3") not in keys_in(found)
    mine = await service.search_compartment(ctx("user/*.rs"), "Patient", "p2", "Observation")
    assert keys_in(mine) == {("Observation", "o3")}


async def test_ro24_granular_scopes_are_ored_in_the_criteria(service: FhirService) -> None:
    both = ctx(
        f"patient/Observation.rs?category={LAB} patient/Observation.rs?category={VITALS}", "p1"
    )
    found = await service.search_type(both, "Observation", [("_total", "accurate")])
    assert keys_in(found) == {("Observation", "o1"), ("Observation", "o2")}
    assert found["total"] == 2
    lab = ctx(f"patient/Observation.rs?category={LAB}", "p1")
    found = await service.search_type(lab, "Observation", [("_total", "accurate")])
    assert keys_in(found) == {("Observation", "o1")} and found["total"] == 1
    with pytest.raises(Forbidden):
        await service.read(lab, "Observation", "o2")


async def test_ro24_granular_scopes_that_cannot_be_merged_filter_each_page(
    service: FhirService,
) -> None:
    mixed = ctx(f"user/Observation.rs?category={LAB} user/Observation.rs?code=2-9")
    await service.update(SERVER, "Observation", "v9", observation("v9", "p2", "vital-signs", "2-9"))
    found = await service.search_type(mixed, "Observation", [("_total", "accurate")])
    assert keys_in(found) == {("Observation", "o1"), ("Observation", "o3"), ("Observation", "v9")}
    assert "total" not in found  # a total of the unfiltered criteria would leak a count
    with pytest.raises(Forbidden, match="_summary=count"):
        await service.search_type(mixed, "Observation", [("_summary", "count")])


async def test_ro24_system_search_keeps_the_types_the_token_may_search(
    service: FhirService,
) -> None:
    token = ctx("user/Observation.rs user/Patient.rs")
    found = await service.search_system(token)
    assert {t for t, _ in keys_in(found)} == {"Observation", "Patient"}
    with pytest.raises(Forbidden, match="search Medication"):
        await service.search_system(token, [("_type", "Observation,Medication")])
    with pytest.raises(Forbidden, match="any resource type"):
        await service.search_system(ctx("user/Observation.r"))


async def test_ro24_includes_leave_out_what_the_token_may_not_read(
    service: FhirService,
) -> None:
    token = ctx("patient/MedicationRequest.rs patient/Patient.rs", "p1")
    found = await service.search_type(
        token, "MedicationRequest", [("_include", "MedicationRequest:medication"),
                                     ("_include", "MedicationRequest:subject")]
    )  # fmt: skip
    assert keys_in(found) == {("MedicationRequest", "mr1"), ("Patient", "p1")}
    rev = await service.search_type(
        ctx("patient/Patient.rs patient/Observation.rs", "p1"), "Patient",
        [("_revinclude", "Observation:subject"), ("_revinclude", "MedicationRequest:subject")],
    )  # fmt: skip
    assert keys_in(rev) == {("Patient", "p1"), ("Observation", "o1"), ("Observation", "o2")}


async def test_ro24_chains_and_has_into_restricted_types_are_refused(
    service: FhirService,
) -> None:
    p1 = ctx("patient/*.rs", "p1")
    with pytest.raises(Forbidden, match="chained search into Patient"):
        await service.search_type(p1, "Observation", [("subject:Patient.name", "Two")])
    with pytest.raises(Forbidden, match="_has search into Observation"):
        await service.search_type(p1, "Patient", [("_has:Observation:subject:code", "1-8")])
    user = ctx("user/*.rs")
    found = await service.search_type(user, "Observation", [("subject:Patient.name", "Two")])
    assert keys_in(found) == {("Observation", "o3")}


async def test_ro24_history_shows_only_the_versions_within_scope(
    service: FhirService,
) -> None:
    moved = observation("o1", "p2", "laboratory")
    await service.update(SERVER, "Observation", "o1", moved)  # o1 v2 is p2's
    p1 = ctx("patient/*.rs", "p1")
    found = await service.history(p1, (), "Observation", "o1")
    assert [e["response"]["etag"] for e in found["entry"]] == ['W/"1"']
    assert keys_in(await service.vread(p1, "Observation", "o1", "1")) == {("Observation", "o1")}
    with pytest.raises(Forbidden):
        await service.vread(p1, "Observation", "o1", "2")
    with pytest.raises(Forbidden):
        await service.read(p1, "Observation", "o1")
    with pytest.raises(Forbidden):
        await service.history(p1, (), "Observation", "o3")
    await service.delete(SERVER, "Observation", "o2")
    type_history = fhirjson.loads(fhirjson.dumps(await service.history(p1, (), "Observation")))
    shown = [
        (e["request"]["method"], e.get("resource", {}).get("id")) for e in type_history["entry"]
    ]
    assert shown == [("PUT", "o2"), ("PUT", "o1")]  # no deletion, nothing of p2


async def test_cn414_patient_scopes_never_write_outside_the_compartment_types(
    service: FhirService,
) -> None:
    token = ctx("patient/Medication.cruds patient/Observation.cruds", "p1")
    medication = {"resourceType": "Medication", "code": {"text": "x"}}
    with pytest.raises(Forbidden, match="no scope to create Medication"):
        await service.create(token, "Medication", medication)
    assert keys_in(await service.read(token, "Medication", "m1")) == {("Medication", "m1")}


async def test_cn414_granular_write_scopes_check_the_content(service: FhirService) -> None:
    token = ctx(f"patient/Observation.cru?category={LAB}", "p1")
    created = await service.create(token, "Observation", observation("x", "p1", "laboratory"))
    assert created.created
    with pytest.raises(Forbidden, match="create the Observation as written"):
        await service.create(token, "Observation", observation("y", "p1", "vital-signs"))
    with pytest.raises(Forbidden, match="update Observation/o2"):
        await service.update(token, "Observation", "o2", observation("o2", "p1", "laboratory"))


async def test_cn414_a_forbidden_transaction_entry_fails_the_whole_transaction(
    app: Application, service: FhirService
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": observation("n1", "p1", "laboratory"),
             "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Medication/m1"}},
        ],
    }  # fmt: skip
    with pytest.raises(Forbidden) as raised:
        await service.batch_or_transaction(ctx("patient/Observation.c", "p1"), bundle)
    assert raised.value.issues[0].expression[0].startswith("Bundle.entry[1]")
    stored = await service.search_type(SERVER, "Observation", [("identifier", "urn:t|n1")])
    assert keys_in(stored) == set()


async def test_cn414_a_forbidden_batch_entry_gets_its_own_403(service: FhirService) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": observation("n1", "p1", "laboratory"),
             "request": {"method": "POST", "url": "Observation"}},
            {"resource": observation("n2", "p2", "laboratory"),
             "request": {"method": "POST", "url": "Observation"}},
            {"request": {"method": "GET", "url": "Observation/o3"}},
        ],
    }  # fmt: skip
    answer = await service.batch_or_transaction(ctx("patient/Observation.crs", "p1"), bundle)
    found = fhirjson.loads(fhirjson.dumps(answer))
    statuses = [e["response"]["status"] for e in found["entry"]]
    assert statuses[0].startswith("201") and statuses[1:] == ["403 Forbidden"] * 2
    assert keys_in(found) == {("Observation", found["entry"][0]["resource"]["id"])}
