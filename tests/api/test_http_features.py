"""Prefer, content negotiation, _pretty, _summary/_elements, JSON Patch, history, search and
the CapabilityStatement over HTTP (http://hl7.org/fhir/R4/http.html)."""

from __future__ import annotations

import httpx

from tests.api.test_http_read_write import (
    FHIR_JSON,
    PATIENT,
    create,
    create_raw,
    id_suffix,
    json_of,
)

JSON_PATCH = {"Content-Type": "application/json-patch+json"}


async def test_prefer_return(client: httpx.AsyncClient) -> None:
    minimal = await client.post("/fhir/Patient", json=PATIENT, headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["Location"] and minimal.headers["ETag"] == 'W/"1"'
    oo = await client.post(
        "/fhir/Patient", json=PATIENT, headers={"Prefer": "return=OperationOutcome"}
    )
    assert oo.status_code == 201 and json_of(oo)["resourceType"] == "OperationOutcome"
    full = await client.post(
        "/fhir/Patient", json=PATIENT, headers={"Prefer": "return=representation"}
    )
    assert json_of(full)["resourceType"] == "Patient"


async def test_content_negotiation(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    plain = await client.get(f"/fhir/Patient/{id}", headers={"Accept": "application/json"})
    assert plain.headers["Content-Type"].startswith("application/json")
    fhir = await client.get(f"/fhir/Patient/{id}?_format=json")
    assert fhir.headers["Content-Type"].startswith(FHIR_JSON)
    browser = await client.get(
        f"/fhir/Patient/{id}", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    )
    assert browser.status_code == 200
    versioned = await client.get(
        f"/fhir/Patient/{id}", headers={"Accept": FHIR_JSON + "; fhirVersion=4.0"}
    )
    assert versioned.status_code == 200
    assert (
        await client.get(f"/fhir/Patient/{id}?_format=application/fhir%2Bjson")
    ).status_code == 200


async def test_pretty(client: httpx.AsyncClient) -> None:
    id = await create_raw(client)
    pretty = await client.get(f"/fhir/Patient/{id}?_pretty=true")
    assert b'\n  "resourceType": "Patient"' in pretty.content
    assert b'"valueDecimal": 1.50' in pretty.content
    compact = await client.get(f"/fhir/Patient/{id}")
    assert b"\n" not in compact.content


async def test_summary_and_elements_on_read(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    summary = json_of(await client.get(f"/fhir/Patient/{id}?_summary=true"))
    assert summary["name"] and "extension" not in summary
    assert any(t["code"] == "SUBSETTED" for t in summary["meta"]["tag"])
    elements = json_of(await client.get(f"/fhir/Patient/{id}?_elements=gender"))
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    full = json_of(await client.get(f"/fhir/Patient/{id}?_summary=false"))
    assert "tag" not in full["meta"]
    bad = await client.get(f"/fhir/Patient/{id}?_summary=maybe")
    assert bad.status_code == 400
    assert (await client.get(f"/fhir/Patient/{id}?_elements=nonsense")).status_code == 400
    assert (await client.get(f"/fhir/Patient/{id}?_summary=count")).status_code == 400


async def test_json_patch(client: httpx.AsyncClient) -> None:
    id = await create_raw(client)
    ops = [
        {"op": "test", "path": "/gender", "value": "female"},
        {"op": "replace", "path": "/gender", "value": "male"},
        {"op": "add", "path": "/name", "value": [{"given": ["Jim"]}]},
    ]
    patched = await client.patch(f"/fhir/Patient/{id}", json=ops, headers=JSON_PATCH)
    assert patched.status_code == 200, patched.text
    body = json_of(patched)
    assert body["gender"] == "male" and body["name"][0]["given"][-1] == "Jim"
    assert body["meta"]["versionId"] == "2" and b'"valueDecimal":1.50' in patched.content
    failed_test = await client.patch(
        f"/fhir/Patient/{id}", json=[{"op": "test", "path": "/gender", "value": "female"}],
        headers=JSON_PATCH,
    )  # fmt: skip
    assert failed_test.status_code == 422
    invalid_result = await client.patch(
        f"/fhir/Patient/{id}", json=[{"op": "add", "path": "/gender", "value": 42}],
        headers=JSON_PATCH,
    )  # fmt: skip
    assert invalid_result.status_code == 422
    malformed = await client.patch(f"/fhir/Patient/{id}", json={"op": "remove"}, headers=JSON_PATCH)
    assert malformed.status_code == 400
    id_change = await client.patch(
        f"/fhir/Patient/{id}", json=[{"op": "replace", "path": "/id", "value": "x"}],
        headers=JSON_PATCH,
    )  # fmt: skip
    assert id_change.status_code == 422
    xml_patch = await client.patch(
        f"/fhir/Patient/{id}", content=b"<Parameters/>",
        headers={"Content-Type": "application/fhir+xml"},
    )  # fmt: skip
    assert xml_patch.status_code == 415
    assert json_of(await client.get(f"/fhir/Patient/{id}"))["meta"]["versionId"] == "2"
    unknown = await client.patch(f"/fhir/Patient/nope-{id_suffix()}", json=ops, headers=JSON_PATCH)
    assert unknown.status_code == 404


async def test_instance_history_paging(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]
    for gender in ("female", "other", "unknown"):
        response = await client.put(
            f"/fhir/Patient/{id}", json={**PATIENT, "id": id, "gender": gender}
        )
        assert response.status_code == 200
    page = json_of(await client.get(f"/fhir/Patient/{id}/_history?_count=2"))
    assert page["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in page["entry"]] == ["4", "3"]
    links = {link["relation"]: link["url"] for link in page["link"]}
    assert links["self"].startswith("http") and "next" in links
    next_page = json_of(await client.get(httpx.URL(links["next"]).raw_path.decode()))
    assert [e["resource"]["meta"]["versionId"] for e in next_page["entry"]] == ["2", "1"]
    assert next_page["entry"][1]["request"] == {"method": "POST", "url": "Patient"}
    assert next_page["entry"][0]["response"]["etag"] == 'W/"2"'
    assert (await client.get(f"/fhir/Patient/unknown-{id_suffix()}/_history")).status_code == 404


async def test_history_since_and_levels(client: httpx.AsyncClient) -> None:
    first = await create(client)
    since = json_of(first)["meta"]["lastUpdated"]
    obs = await client.post(
        "/fhir/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
              "valueQuantity": {"value": 72.50, "unit": "kg"}},
    )  # fmt: skip
    assert obs.status_code == 201, obs.text
    obs_id = json_of(obs)["id"]
    typed = json_of(await client.get("/fhir/Observation/_history", params={"_since": since}))
    assert obs_id in [e["resource"]["id"] for e in typed["entry"]]
    assert all(e["resource"]["resourceType"] == "Observation" for e in typed["entry"])
    system = json_of(await client.get("/fhir/_history", params={"_since": since}))
    ids = [e["fullUrl"].rsplit("/", 1)[-1] for e in system["entry"]]
    assert obs_id in ids and json_of(first)["id"] in ids
    bad = await client.get("/fhir/_history?_since=yesterday")
    assert bad.status_code == 400 and "_since" in bad.text
    assert (await client.get("/fhir/_history?_count=-1")).status_code == 400
    assert (await client.get("/fhir/_history?foo=bar")).status_code == 400


async def test_minimal_search(client: httpx.AsyncClient) -> None:
    ids = [json_of(await create(client))["id"] for _ in range(3)]
    found = json_of(await client.get(f"/fhir/Patient?_id={ids[0]},{ids[2]}&_total=accurate"))
    assert found["type"] == "searchset" and found["total"] == 2
    assert sorted(e["resource"]["id"] for e in found["entry"]) == sorted([ids[0], ids[2]])
    post = await client.post(
        "/fhir/Patient/_search", content=f"_id={ids[1]}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert [e["resource"]["id"] for e in json_of(post)["entry"]] == [ids[1]]
    unknown = await client.get("/fhir/Patient?nickname=Chalmers")
    assert unknown.status_code == 400 and "nickname" in unknown.text


async def test_capability_statement(client: httpx.AsyncClient) -> None:
    cs = json_of(await client.get("/fhir/metadata"))
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    assert cs["kind"] == "instance" and cs["status"] == "active"
    rest = cs["rest"][0]
    patient = next(r for r in rest["resource"] if r["type"] == "Patient")
    codes = {i["code"] for i in patient["interaction"]}
    assert codes == {
        "read", "vread", "update", "patch", "delete", "history-instance", "history-type",
        "create", "search-type",
    }  # fmt: skip
    assert len(rest["resource"]) == 146
    assert {i["code"] for i in rest["interaction"]} == {
        "history-system",
        "search-system",
        "transaction",
        "batch",
    }
    assert patient["conditionalCreate"] is True and patient["conditionalUpdate"] is True
    assert patient["conditionalDelete"] == "single"
    params = {p["name"]: p for p in patient["searchParam"]}
    assert params["birthdate"]["type"] == "date"
    assert params["identifier"]["definition"] == (
        "http://hl7.org/fhir/SearchParameter/Patient-identifier"
    )
    assert params["identifier"]["documentation"]
    assert {"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"} <= set(params)
    assert {"_sort", "_count", "_include", "_revinclude"} <= set(params)
    assert "Patient:general-practitioner" in patient["searchInclude"]
    assert "Observation:subject" in patient["searchRevInclude"]
    assert "http://hl7.org/fhir/CompartmentDefinition/patient" in rest["compartment"]
    assert "application/json-patch+json" in cs["patchFormat"]


async def test_request_id_is_returned_and_can_be_given(client: httpx.AsyncClient) -> None:
    generated = await client.get("/fhir/metadata")
    assert len(generated.headers["X-Request-Id"]) >= 8
    given = await client.get("/fhir/Patient/nope", headers={"X-Request-Id": "ehr-trace-0001"})
    assert given.headers["X-Request-Id"] == "ehr-trace-0001"
    bad = await client.get("/fhir/metadata", headers={"X-Request-Id": "a b"})
    assert bad.headers["X-Request-Id"] != "a b"


async def test_legacy_dstu2_json_media_type_is_understood(client: httpx.AsyncClient) -> None:
    legacy = "application/json+fhir"
    created = await client.post(
        "/fhir/Patient", json=PATIENT, headers={"Content-Type": legacy, "Accept": legacy}
    )
    assert created.status_code == 201
    assert created.headers["Content-Type"].startswith(FHIR_JSON)
    xml = await client.get("/fhir/metadata", headers={"Accept": "application/xml+fhir"})
    assert xml.status_code == 406
