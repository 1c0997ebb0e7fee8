"""FHIRPath Patch over HTTP (http://hl7.org/fhir/R4/fhirpatch.html, http.html#patch): a
Parameters body as application/fhir+json (or application/json, application/json+fhir),
in-process and over a real socket (the ``client`` fixture)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_http_read_write import FHIR_JSON, create_raw, id_suffix, json_of
from tests.unit.interactions.test_fhirpath_patch import operation, parameters

FHIRPATH_PATCH = {"Content-Type": FHIR_JSON}


def issue(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = json_of(response)
    assert body["resourceType"] == "OperationOutcome"
    first: dict[str, Any] = body["issue"][0]
    return first


async def patch(
    client: httpx.AsyncClient, id: str, body: object, headers: dict[str, str] = FHIRPATH_PATCH
) -> httpx.Response:
    return await client.patch(f"/fhir/Patient/{id}", json=body, headers=headers)


async def test_fhirpath_patch_applies_and_keeps_decimals(client: httpx.AsyncClient) -> None:
    id = await create_raw(client)
    body = parameters(
        operation("replace", "Patient.gender", value={"valueCode": "male"}),
        operation("add", "Patient", name="name", value={"valueHumanName": {"given": ["Jim"]}}),
        operation("add", "Patient.name[0]", name="given", value={"valueString": "Jo"}),
        operation("add", "Patient", name="birthDate", value={"valueDate": "1970-01-01"}),
        operation("delete", "Patient.extension.where(url = 'http://example.org/y')"),
    )
    patched = await patch(client, id, body)
    assert patched.status_code == 200, patched.text
    result = json_of(patched)
    assert result["gender"] == "male" and result["name"] == [{"given": ["Jim", "Jo"]}]
    assert result["birthDate"] == "1970-01-01"
    assert [e["url"] for e in result["extension"]] == ["http://example.org/x"]
    assert result["meta"]["versionId"] == "2" and patched.headers["ETag"] == 'W/"2"'
    assert b'"valueDecimal":1.50' in patched.content
    assert json_of(await client.get(f"/fhir/Patient/{id}")) == result


async def test_other_json_media_types_and_if_match(client: httpx.AsyncClient) -> None:
    id = await create_raw(client)
    body = parameters(operation("replace", "Patient.gender", value={"valueCode": "other"}))
    stale = await patch(client, id, body, {"Content-Type": FHIR_JSON, "If-Match": 'W/"5"'})
    assert stale.status_code == 412
    fresh = await patch(client, id, body, {"Content-Type": FHIR_JSON, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200, fresh.text
    plain = await patch(client, id, body, {"Content-Type": "application/json"})
    legacy = await patch(client, id, body, {"Content-Type": "application/json+fhir"})
    assert (plain.status_code, legacy.status_code) == (200, 200)
    assert json_of(legacy)["meta"]["versionId"] == "4"
    xml = await client.patch(
        f"/fhir/Patient/{id}",
        content=b"<Parameters/>",
        headers={"Content-Type": "application/fhir+xml"},
    )
    assert "application/fhir+json" in issue(xml, 415)["diagnostics"]


async def test_malformed_patch_is_400_naming_the_part(client: httpx.AsyncClient) -> None:
    id = await create_raw(client)
    missing_value = parameters(
        operation("delete", "Patient.birthDate"), operation("replace", "Patient.gender")
    )
    first = issue(await patch(client, id, missing_value), 400)
    assert first["expression"] == ["Parameters.parameter[1]"]
    assert "'value' is required for 'replace'" in first["diagnostics"]
    bad_path = issue(await patch(client, id, parameters(operation("delete", "Patient.name["))), 400)
    assert bad_path["expression"] == ["Parameters.parameter[0].part[1]"]
    unknown = issue(await patch(client, id, parameters(operation("delete", "Patient.nick"))), 400)
    assert unknown["expression"] == ["Parameters.parameter[0].part[1]"]
    assert issue(await patch(client, id, {"resourceType": "Patient"}), 400)["code"] == "invalid"
    empty = await client.patch(f"/fhir/Patient/{id}", headers=FHIRPATH_PATCH)
    assert "Parameters" in issue(empty, 400)["diagnostics"]
    assert json_of(await client.get(f"/fhir/Patient/{id}"))["meta"]["versionId"] == "1"


async def test_patch_that_cannot_apply_is_422_naming_operation_and_path(
    client: httpx.AsyncClient,
) -> None:
    id = await create_raw(client)
    path = "Patient.name.where(use = 'official').family"
    body = parameters(
        operation("replace", "Patient.gender", value={"valueCode": "male"}),
        operation("replace", path, value={"valueString": "X"}),
    )
    failed = issue(await patch(client, id, body), 422)
    assert failed["expression"] == ["Parameters.parameter[1]"]
    assert path in failed["diagnostics"]
    assert "matches no element" in failed["diagnostics"]
    wrong_type = parameters(
        operation("add", "Patient", name="maritalStatus", value={"valueString": "SECRET-1"})
    )
    mismatch = await patch(client, id, wrong_type)
    assert issue(mismatch, 422)["expression"] == [
        "Parameters.parameter[0]",
        "Parameters.parameter[0].part[3]",
    ]
    assert b"SECRET-1" not in mismatch.content
    read = json_of(await client.get(f"/fhir/Patient/{id}"))
    assert read["gender"] == "female" and read["meta"]["versionId"] == "1"  # all or nothing


async def test_identity_and_validity_of_the_result(client: httpx.AsyncClient) -> None:
    id = await create_raw(client)
    id_change = parameters(operation("replace", "Patient.id", value={"valueId": "other"}))
    assert "'id'" in issue(await patch(client, id, id_change), 422)["diagnostics"]
    id_removal = parameters(operation("delete", "Patient.id"))
    assert issue(await patch(client, id, id_removal), 422)["code"] == "invalid"
    bad_date = parameters(
        operation("add", "Patient", name="birthDate", value={"valueDate": "soon"})
    )
    invalid = issue(await patch(client, id, bad_date), 422)
    assert invalid["expression"] == ["Patient.birthDate"]
    bad_json_type = parameters(operation("replace", "Patient.gender", value={"valueBoolean": True}))
    assert issue(await patch(client, id, bad_json_type), 422)["expression"] == ["Patient.gender"]
    assert json_of(await client.get(f"/fhir/Patient/{id}"))["meta"]["versionId"] == "1"


async def test_unknown_and_deleted_resources(client: httpx.AsyncClient) -> None:
    body = parameters(operation("delete", "Patient.gender"))
    assert (await patch(client, f"nope-{id_suffix()}", body)).status_code == 404
    id = await create_raw(client)
    assert (await client.delete(f"/fhir/Patient/{id}")).status_code in (200, 204)
    assert issue(await patch(client, id, body), 410)["code"] == "deleted"
    response = await client.patch(f"/fhir/NoSuchType/{id}", json=body, headers=FHIRPATH_PATCH)
    assert issue(response, 404)["code"] == "not-found"


async def test_capability_statement_lists_fhirpath_patch(client: httpx.AsyncClient) -> None:
    statement = json_of(await client.get("/fhir/metadata"))
    assert {"application/json-patch+json", "application/fhir+json"} <= set(statement["patchFormat"])
