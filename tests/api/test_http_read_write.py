"""HTTP semantics of create, read, vread, update, delete (http://hl7.org/fhir/R4/http.html),
in-process and over a real socket (the ``client`` fixture)."""

from __future__ import annotations

import uuid
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

FHIR_JSON = "application/fhir+json"
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "active": True,
    "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "extension": [{"url": "http://example.org/weight-kg", "valueDecimal": 1.50}],
}
RAW_PATIENT = (
    b'{"resourceType":"Patient","gender":"female","extension":[{"url":"http://example.org/x",'
    b'"valueDecimal":1.50},{"url":"http://example.org/y","valueDecimal":0.0000001}],'
    b'"meta":{"tag":[{"system":"http://example.org/t","code":"a"}],"versionId":"77"}}'
)


def id_suffix() -> str:
    return uuid.uuid4().hex[:12]


def json_of(response: httpx.Response) -> dict[str, Any]:
    data = response.json()
    assert isinstance(data, dict)
    return data


async def create(client: httpx.AsyncClient, body: dict[str, Any] = PATIENT) -> httpx.Response:
    response = await client.post("/fhir/Patient", json=body, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 201, response.text
    return response


async def create_raw(client: httpx.AsyncClient, raw: bytes = RAW_PATIENT) -> str:
    """Create from exact bytes (httpx's json= would turn 1.50 into 1.5); returns the id."""
    response = await client.post("/fhir/Patient", content=raw, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 201, response.text
    return str(json_of(response)["id"])


async def test_create_assigns_id_and_versions(client: httpx.AsyncClient) -> None:
    response = await create(client, {**PATIENT, "id": "ignored-by-create"})
    body = json_of(response)
    assert body["id"] != "ignored-by-create"
    assert body["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{body['id']}/_history/1")
    assert response.headers["Location"].startswith("http")
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    last_modified = parsedate_to_datetime(response.headers["Last-Modified"])
    assert last_modified.year >= 2026
    assert body["meta"]["lastUpdated"].endswith("Z")


async def test_read_returns_what_was_stored_with_decimals_exact(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/fhir/Patient", content=RAW_PATIENT, headers={"Content-Type": FHIR_JSON}
    )
    assert created.status_code == 201, created.text
    id = json_of(created)["id"]
    read = await client.get(f"/fhir/Patient/{id}")
    assert read.status_code == 200
    assert b'"valueDecimal":1.50' in read.content
    assert b'"valueDecimal":0.0000001' in read.content
    body = json_of(read)
    assert body["meta"]["versionId"] == "1"  # the client's versionId is not kept
    assert body["meta"]["tag"] == [{"system": "http://example.org/t", "code": "a"}]
    assert read.headers["ETag"] == 'W/"1"'


async def test_read_unknown_is_404_with_operation_outcome(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/Patient/does-not-exist")
    assert response.status_code == 404
    outcome = json_of(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == "not-found"


async def test_unknown_resource_type_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/Patientt/1")
    assert response.status_code == 404
    assert "Patientt" in json_of(response)["issue"][0]["diagnostics"]


async def test_invalid_id_in_url_is_400(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/Patient/" + "x" * 65)
    assert response.status_code == 400


async def test_update_versions_and_vread(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    updated = await client.put(f"/fhir/Patient/{id}", json={**PATIENT, "id": id, "gender": "other"})
    assert updated.status_code == 200, updated.text
    assert updated.headers["ETag"] == 'W/"2"'
    assert json_of(updated)["meta"]["versionId"] == "2"
    v1 = await client.get(f"/fhir/Patient/{id}/_history/1")
    assert v1.status_code == 200 and json_of(v1)["gender"] == "male"
    v2 = await client.get(f"/fhir/Patient/{id}/_history/2")
    assert json_of(v2)["gender"] == "other"
    assert (await client.get(f"/fhir/Patient/{id}/_history/3")).status_code == 404
    assert (await client.get(f"/fhir/Patient/{id}/_history/x")).status_code == 404


async def test_update_as_create_with_client_id(client: httpx.AsyncClient) -> None:
    id = f"client-chosen-{id_suffix()}"
    response = await client.put(f"/fhir/Patient/{id}", json={**PATIENT, "id": id})
    assert response.status_code == 201, response.text
    assert response.headers["Location"].endswith(f"/Patient/{id}/_history/1")
    assert json_of(response)["id"] == id


async def test_if_match_optimistic_locking(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    body = {**PATIENT, "id": id}
    stale = await client.put(f"/fhir/Patient/{id}", json=body, headers={"If-Match": 'W/"2"'})
    assert stale.status_code == 412
    assert json_of(stale)["resourceType"] == "OperationOutcome"
    fresh = await client.put(f"/fhir/Patient/{id}", json=body, headers={"If-Match": 'W/"1"'})
    assert fresh.status_code == 200
    bad = await client.put(f"/fhir/Patient/{id}", json=body, headers={"If-Match": "garbage"})
    assert bad.status_code == 400
    assert json_of(await client.get(f"/fhir/Patient/{id}"))["meta"]["versionId"] == "2"


async def test_cn3_5_ro40c_delete_is_a_versioned_tombstone(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    deleted = await client.delete(f"/fhir/Patient/{id}")
    assert deleted.status_code == 204
    assert deleted.headers["ETag"] == 'W/"2"'
    gone = await client.get(f"/fhir/Patient/{id}")
    assert gone.status_code == 410
    assert json_of(gone)["issue"][0]["code"] == "deleted"
    again = await client.delete(f"/fhir/Patient/{id}")
    assert again.status_code == 204  # deleting again is not an error and adds no version
    history = json_of(await client.get(f"/fhir/Patient/{id}/_history"))
    entries = history["entry"]
    assert [e["request"]["method"] for e in entries] == ["DELETE", "POST"]
    assert "resource" not in entries[0]
    assert (await client.get(f"/fhir/Patient/{id}/_history/1")).status_code == 200
    assert (await client.get(f"/fhir/Patient/{id}/_history/2")).status_code == 410
    revived = await client.put(f"/fhir/Patient/{id}", json={**PATIENT, "id": id})
    assert revived.status_code == 201
    assert json_of(revived)["meta"]["versionId"] == "3"


async def test_delete_unknown_is_not_an_error(client: httpx.AsyncClient) -> None:
    assert (await client.delete("/fhir/Patient/never-existed-" + id_suffix())).status_code == 204


async def test_delete_with_stale_if_match_is_412(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    response = await client.delete(f"/fhir/Patient/{id}", headers={"If-Match": 'W/"9"'})
    assert response.status_code == 412
    assert (await client.get(f"/fhir/Patient/{id}")).status_code == 200


async def test_conditional_read_not_modified(client: httpx.AsyncClient) -> None:
    created = await create(client)
    id = json_of(created)["id"]
    same = await client.get(f"/fhir/Patient/{id}", headers={"If-None-Match": 'W/"1"'})
    assert same.status_code == 304
    since = await client.get(
        f"/fhir/Patient/{id}", headers={"If-Modified-Since": created.headers["Last-Modified"]}
    )
    assert since.status_code == 304
    changed = await client.get(f"/fhir/Patient/{id}", headers={"If-None-Match": 'W/"0"'})
    assert changed.status_code == 200
