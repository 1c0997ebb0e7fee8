"""Referential integrity over HTTP, in-process and over a real socket (the ``client`` fixture).

On by default: a local reference must point to an existing, non-deleted resource of a type the
element allows — any element, covered by a SearchParameter or not (``DiagnosticReport.
imagingStudy`` is not) — and a resource others refer to cannot be deleted (409 listing them).
``--referential-integrity off`` (``FHIR_SERVER_REFERENTIAL_INTEGRITY``) switches it off.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.settings import Settings
from tests.conftest import ServerProcess, asgi_client, running_application

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def unique() -> str:
    return uuid.uuid4().hex[:16]


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/fhir/{body['resourceType']}", json=body, headers=FHIR_JSON)


async def created(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    """POST ``body``, expect 201; the ``Type/id`` of the new resource."""
    response = await post(client, body)
    assert response.status_code == 201, response.text
    return f"{body['resourceType']}/{response.json()['id']}"


def report(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "CT"},
        **elements,
    }


def study(patient: str) -> dict[str, Any]:
    return {
        "resourceType": "ImagingStudy",
        "status": "available",
        "subject": {"reference": patient},
    }


def outcome(response: httpx.Response) -> tuple[list[str], list[list[str]], str]:
    """(issue codes, issue expressions, all diagnostics) of an OperationOutcome."""
    issues = response.json()["issue"]
    text = " ".join(issue.get("diagnostics", "") for issue in issues)
    return [i["code"] for i in issues], [i.get("expression", []) for i in issues], text


async def test_a_reference_no_search_parameter_covers_must_point_to_an_existing_resource(
    client: httpx.AsyncClient,
) -> None:
    patient = await created(client, {"resourceType": "Patient"})
    missing = f"ImagingStudy/{unique()}"
    refused = await post(
        client, report(subject={"reference": patient}, imagingStudy=[{"reference": missing}])
    )
    assert refused.status_code == 422, refused.text
    codes, expressions, text = outcome(refused)
    assert codes == ["not-found"]
    assert expressions == [["DiagnosticReport.imagingStudy[0]"]]
    assert "ImagingStudy" in text and missing.split("/")[1] not in text  # never the id (RO-1.4)

    existing = await created(client, study(patient))
    accepted = await post(
        client, report(subject={"reference": patient}, imagingStudy=[{"reference": existing}])
    )
    assert accepted.status_code == 201, accepted.text


async def test_a_reference_to_a_type_the_element_does_not_allow_is_refused(
    client: httpx.AsyncClient,
) -> None:
    patient = await created(client, {"resourceType": "Patient"})
    refused = await post(client, report(imagingStudy=[{"reference": patient}]))
    assert refused.status_code == 422, refused.text
    _, expressions, text = outcome(refused)
    assert expressions == [["DiagnosticReport.imagingStudy[0]"]]
    assert "ImagingStudy only" in text and patient.split("/")[1] not in text


async def test_absolute_references_to_this_server_are_checked_others_are_not(
    client: httpx.AsyncClient,
) -> None:
    base = f"{client.base_url}/fhir"  # the base the server sees: its own absolute URLs
    patient = await created(client, {"resourceType": "Patient"})
    refused = await post(client, report(subject={"reference": f"{base}/Patient/{unique()}"}))
    assert refused.status_code == 422, refused.text
    assert outcome(refused)[1] == [["DiagnosticReport.subject"]]
    assert (
        await post(client, report(subject={"reference": f"{base}/{patient}"}))
    ).status_code == 201
    elsewhere = "https://other.example.org/fhir/Patient/x"
    not_local = report(
        subject={"reference": elsewhere},
        contained=[
            {
                "resourceType": "ImagingStudy",
                "id": "s",
                "status": "available",
                "subject": {"reference": patient},
            }
        ],
        imagingStudy=[{"reference": "#s"}],
        resultsInterpreter=[{"identifier": {"system": "urn:x", "value": "1"}}],
    )
    assert (await post(client, not_local)).status_code == 201


async def test_contained_resources_references_are_checked(client: httpx.AsyncClient) -> None:
    contained = report(
        contained=[study(f"Patient/{unique()}") | {"id": "s"}], imagingStudy=[{"reference": "#s"}]
    )
    refused = await post(client, contained)
    assert refused.status_code == 422, refused.text
    assert outcome(refused)[1] == [["DiagnosticReport.contained[0].subject"]]


async def test_a_conditional_reference_outside_a_transaction_is_refused(
    client: httpx.AsyncClient,
) -> None:
    refused = await post(client, report(subject={"reference": "Patient?identifier=urn:x|1"}))
    assert refused.status_code == 422, refused.text
    _, expressions, text = outcome(refused)
    assert expressions == [["DiagnosticReport.subject"]] and "transaction" in text


async def test_versioned_references_are_checked_against_that_version(
    client: httpx.AsyncClient,
) -> None:
    id = unique()
    put = await client.put(
        f"/fhir/Patient/{id}", json={"resourceType": "Patient", "id": id}, headers=FHIR_JSON
    )
    assert put.status_code == 201, put.text
    updated = await client.put(
        f"/fhir/Patient/{id}",
        headers=FHIR_JSON,
        json={"resourceType": "Patient", "id": id, "active": True},
    )
    assert updated.status_code == 200, updated.text
    for version, status in ((1, 201), (2, 201), (3, 422)):
        answer = await post(
            client, report(subject={"reference": f"Patient/{id}/_history/{version}"})
        )
        assert answer.status_code == status, (version, answer.text)
    assert (await client.delete(f"/fhir/Patient/{id}")).status_code == 204
    # the deletion is version 3, and version 1 stays readable: still a valid target
    for version, status in ((1, 201), (3, 422)):
        answer = await post(
            client, report(subject={"reference": f"Patient/{id}/_history/{version}"})
        )
        assert answer.status_code == status, (version, answer.text)
    assert (await post(client, report(subject={"reference": f"Patient/{id}"}))).status_code == 422


async def test_deleting_a_referenced_resource_is_refused_until_its_referrers_are_gone(
    client: httpx.AsyncClient,
) -> None:
    patient = await created(client, {"resourceType": "Patient"})
    first = await created(client, report(subject={"reference": patient}))
    second = await created(
        client,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": patient},
        },
    )
    refused = await client.delete(f"/fhir/{patient}")
    assert refused.status_code == 409, refused.text
    codes, _, text = outcome(refused)
    assert codes[0] == "conflict"
    assert f"{first} at DiagnosticReport.subject" in text
    assert f"{second} at Encounter.subject" in text
    assert (await client.get(f"/fhir/{patient}")).status_code == 200

    assert (await client.delete(f"/fhir/{first}")).status_code == 204
    other = await created(client, {"resourceType": "Patient"})
    id = second.split("/")[1]
    moved = await client.put(
        f"/fhir/{second}",
        headers=FHIR_JSON,
        json={
            "resourceType": "Encounter",
            "id": id,
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": {"reference": other},
        },
    )
    assert moved.status_code == 200, moved.text
    assert (await client.delete(f"/fhir/{patient}")).status_code == 204
    assert (await client.get(f"/fhir/{patient}")).status_code == 410
    # and a deleted resource cannot be referred to any more
    assert (await post(client, report(subject={"reference": patient}))).status_code == 422


async def test_with_integrity_off_everything_is_accepted(tmp_path: Path) -> None:
    application = running_application(tmp_path / "d", referential_integrity=False)
    async with application as app, asgi_client(app) as client:
        await _accepted_without_integrity(client)


@pytest.mark.parametrize("how", ["option", "environment"])
def test_integrity_is_switched_off_from_the_command_line(tmp_path: Path, how: str) -> None:
    if how == "option":
        server = ServerProcess(tmp_path / "d", "--referential-integrity", "off")
    else:
        server = ServerProcess(tmp_path / "d", env={"FHIR_SERVER_REFERENTIAL_INTEGRITY": "off"})
    try:
        server.wait_ready()
        dangling = report(subject={"reference": f"Patient/{unique()}"})
        answer = httpx.post(
            f"{server.base}/fhir/DiagnosticReport", json=dangling, headers=FHIR_JSON
        )
        assert answer.status_code == 201, answer.text
    finally:
        server.stop()


async def _accepted_without_integrity(client: httpx.AsyncClient) -> None:
    patient = await created(client, {"resourceType": "Patient"})
    await created(
        client,
        report(
            subject={"reference": patient}, imagingStudy=[{"reference": f"ImagingStudy/{unique()}"}]
        ),
    )
    await created(client, report(imagingStudy=[{"reference": patient}]))  # a wrong type
    await created(client, report(subject={"reference": "Patient?identifier=urn:x|1"}))
    assert (await client.delete(f"/fhir/{patient}")).status_code == 204


def test_the_setting() -> None:
    assert Settings().referential_integrity is True
    for raw, value in (("off", False), ("on", True), ("false", False), ("1", True)):
        env = {"FHIR_SERVER_REFERENTIAL_INTEGRITY": raw}
        assert Settings.from_env(env).referential_integrity is value
    with pytest.raises(ValueError, match="on or off"):
        Settings.from_env({"FHIR_SERVER_REFERENTIAL_INTEGRITY": "of"})
