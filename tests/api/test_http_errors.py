"""Every error is an OperationOutcome with the right status, and a rejected write changes
nothing (http://hl7.org/fhir/R4/http.html#Status)."""

from __future__ import annotations

import httpx
import pytest

from tests.api.test_http_read_write import FHIR_JSON, PATIENT, create, json_of


def outcome(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = json_of(response)
    assert body["resourceType"] == "OperationOutcome"
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    return body


def first_issue(response: httpx.Response, status: int) -> dict[str, object]:
    issues = outcome(response, status)["issue"]
    assert isinstance(issues, list)
    issue = issues[0]
    assert isinstance(issue, dict)
    return issue


@pytest.mark.parametrize(
    "content", [b"{not json", b"", b"[]", b'"text"', b'{"resourceType": "Patient", "x": NaN}']
)
async def test_malformed_json_is_400(client: httpx.AsyncClient, content: bytes) -> None:
    response = await client.post(
        "/fhir/Patient", content=content, headers={"Content-Type": FHIR_JSON}
    )
    assert first_issue(response, 400)["code"] == "invalid"


async def test_resource_type_must_match_the_url(client: httpx.AsyncClient) -> None:
    response = await client.post("/fhir/Observation", json=PATIENT)
    issue = first_issue(response, 400)
    assert issue["expression"] == ["resourceType"]
    missing = await client.post("/fhir/Patient", json={"gender": "male"})
    assert first_issue(missing, 400)["expression"] == ["resourceType"]


async def test_update_body_id_must_match_the_url(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    wrong = await client.put(f"/fhir/Patient/{id}", json={**PATIENT, "id": "other"})
    assert first_issue(wrong, 400)["expression"] == ["Patient.id"]
    missing = await client.put(f"/fhir/Patient/{id}", json=PATIENT)
    assert first_issue(missing, 400)["expression"] == ["Patient.id"]
    assert json_of(await client.get(f"/fhir/Patient/{id}"))["meta"]["versionId"] == "1"


async def test_ro1_4_invalid_is_422_naming_the_element_without_its_value(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/fhir/Patient", json={**PATIENT, "birthDate": "25/12/1974"})
    issue = first_issue(response, 422)
    assert issue["expression"] == ["Patient.birthDate"]
    assert "25/12/1974" not in str(issue.get("diagnostics"))  # no submitted value echoed
    unknown = await client.post("/fhir/Patient", json={**PATIENT, "favouriteColour": "red"})
    issue = first_issue(unknown, 422)
    assert issue["expression"] == ["Patient.favouriteColour"]
    nested = await client.post("/fhir/Patient", json={**PATIENT, "name": [{"given": "Peter"}]})
    assert first_issue(nested, 422)["expression"] == ["Patient.name[0].given"]


async def test_cn4_1_4_rejected_update_changes_nothing(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    bad = await client.put(f"/fhir/Patient/{id}", json={**PATIENT, "id": id, "gender": 5})
    outcome(bad, 422)
    current = json_of(await client.get(f"/fhir/Patient/{id}"))
    assert current["meta"]["versionId"] == "1" and current["gender"] == "male"
    history = json_of(await client.get(f"/fhir/Patient/{id}/_history"))
    assert len(history["entry"]) == 1


async def test_method_not_allowed_is_405(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    assert first_issue(await client.post(f"/fhir/Patient/{id}", json=PATIENT), 405)["code"] == (
        "not-supported"
    )
    outcome(await client.patch("/fhir/Patient"), 405)


async def test_unknown_path_is_404_operation_outcome(client: httpx.AsyncClient) -> None:
    outcome(await client.get("/fhir/Patient/1/_history/1/extra"), 404)


async def test_xml_body_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/fhir/Patient",
        content=b"<Patient xmlns='http://hl7.org/fhir'/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    assert "XML" in str(first_issue(response, 415)["diagnostics"])
    form = await client.post(
        "/fhir/Patient",
        content=b"a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    outcome(form, 415)


async def test_xml_answer_is_406(client: httpx.AsyncClient) -> None:
    outcome(await client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"}), 406)
    outcome(await client.get("/fhir/metadata?_format=xml"), 406)
    outcome(
        await client.get("/fhir/metadata", headers={"Accept": FHIR_JSON + "; fhirVersion=3.0"}), 406
    )


async def test_conflicting_version_is_409_or_412(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    first = await client.patch(
        f"/fhir/Patient/{id}",
        json=[{"op": "replace", "path": "/gender", "value": "female"}],
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    assert first.status_code == 200
    second = await client.patch(
        f"/fhir/Patient/{id}",
        json=[{"op": "replace", "path": "/gender", "value": "other"}],
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    outcome(second, 412)


async def test_payload_too_large_is_413(tmp_path: object) -> None:
    from pathlib import Path

    from fhir_server.api.app import create_app
    from fhir_server.bootstrap import build
    from fhir_server.settings import Settings

    assert isinstance(tmp_path, Path)
    application = build(Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"))
    await application.start()
    try:
        app = create_app(application.service, application, max_body_bytes=100)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            outcome(await c.post("/fhir/Patient", json=PATIENT), 413)
    finally:
        await application.stop()


async def test_base_processes_only_batch_and_transaction(client: httpx.AsyncClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "document", "entry": []}
    issue = first_issue(await client.post("/fhir", json=bundle), 400)
    assert issue["expression"] == ["Bundle.type"]
    issue = first_issue(await client.post("/fhir", json=PATIENT), 400)
    assert "Bundle" in str(issue["diagnostics"])


async def test_large_invalid_resource_is_422_too(client: httpx.AsyncClient) -> None:
    """Large resources are validated in a worker thread; errors still name the element."""
    names = [{"family": f"F{n}", "given": ["G" * 50]} for n in range(1500)]
    names[1200]["given"] = "not-a-list"  # type: ignore[assignment]
    response = await client.post("/fhir/Patient", json={**PATIENT, "name": names})
    assert len(response.request.content) > 64 * 1024
    assert first_issue(response, 422)["expression"] == ["Patient.name[1200].given"]
