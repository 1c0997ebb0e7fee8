"""transaction Bundles over HTTP (http://hl7.org/fhir/R4/http.html#transaction): one unit of work,
all or nothing, processing order, fullUrl and conditional reference resolution, the conditional
headers of each entry, Prefer, and errors naming the failing entry. Runs in-process and over a
real socket (the ``client`` fixture)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_http_read_write import PATIENT

SYS = "urn:oid:1.2.40.0.34.99.1"


def json_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The JSON body of a response that must have ``status``."""
    assert response.status_code == status, response.text
    data = response.json()
    assert isinstance(data, dict)
    return data


def tx(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def put(
    url: str, resource: dict[str, Any], full_url: str | None = None, **request: str
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "PUT", "url": url, **request},
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def call(method: str, url: str, **request: str) -> dict[str, Any]:
    return {"request": {"method": method, "url": url, **request}}


def patient(identifier: str, **more: Any) -> dict[str, Any]:
    return {**PATIENT, "identifier": [{"system": SYS, "value": identifier}], **more}


def order(
    subject: str, requester: str | None = None, text: str = "Teleradiology reading"
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "code": {"text": text},
        "subject": {"reference": subject},
    }
    if requester:
        out["requester"] = {"reference": requester}
    return out


async def count(client: httpx.AsyncClient, type_: str, query: str) -> int:
    bundle = json_of(await client.get(f"/fhir/{type_}?{query}&_total=accurate"), 200)
    return int(bundle["total"])


async def test_order_arrives_as_one_transaction(client: httpx.AsyncClient) -> None:
    """Patient + Practitioner + ServiceRequest + Task, linked by urn:uuid fullUrls."""
    pat, doc, req = (f"urn:uuid:7a1c2f4e-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))
    task = {
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "focus": {"reference": req},
        "for": {"reference": pat},
        "basedOn": [{"reference": req}],
    }
    doctor = {"resourceType": "Practitioner", "name": [{"family": "Popescu"}]}
    bundle = tx(
        post(task, "urn:uuid:7a1c2f4e-0000-4000-8000-000000000004"),
        post(order(pat, doc), req),
        post(doctor, doc),
        post(patient("tx-1"), pat),
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    assert answer["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in answer["entry"]]
    assert statuses == ["201 Created"] * 4
    locations = [e["response"]["location"] for e in answer["entry"]]
    assert [loc.split("/")[0] for loc in locations] == [
        "Task", "ServiceRequest", "Practitioner", "Patient"
    ]  # fmt: skip
    assert all(loc.endswith("/_history/1") for loc in locations)
    assert all(e["response"]["etag"] == 'W/"1"' for e in answer["entry"])
    patient_ref = "/".join(locations[3].split("/")[:2])
    order_ref = "/".join(locations[1].split("/")[:2])
    stored_order = json_of(await client.get(f"/fhir/{order_ref}"), 200)
    assert stored_order["subject"]["reference"] == patient_ref
    assert stored_order["requester"]["reference"] == "/".join(locations[2].split("/")[:2])
    stored_task = json_of(await client.get("/fhir/" + "/".join(locations[0].split("/")[:2])), 200)
    assert stored_task["focus"]["reference"] == order_ref
    assert stored_task["for"]["reference"] == patient_ref
    # the representation is the stored resource, with its new id
    assert answer["entry"][3]["resource"]["id"] == patient_ref.split("/")[1]


async def test_one_bad_entry_stores_nothing_and_names_the_entry(client: httpx.AsyncClient) -> None:
    bad = patient("tx-2b", birthDate="1974-13-45")
    bundle = tx(
        post(patient("tx-2a"), "urn:uuid:11111111-0000-4000-8000-000000000001"),
        post(order("urn:uuid:11111111-0000-4000-8000-000000000001", text="tx-2 reading")),
        post(bad, "urn:uuid:11111111-0000-4000-8000-000000000003"),
    )
    outcome = json_of(await client.post("/fhir", json=bundle), 422)
    issue = outcome["issue"][0]
    assert issue["expression"] == ["Bundle.entry[2].resource.birthDate"]
    assert "entry 2" in issue["diagnostics"].lower()
    assert "urn:uuid:11111111-0000-4000-8000-000000000003" in issue["diagnostics"]
    assert "1974-13-45" not in str(outcome)  # submitted values are never echoed
    assert await count(client, "Patient", f"identifier={SYS}|tx-2a") == 0
    assert await count(client, "ServiceRequest", "code:text=tx-2") == 0


async def test_processing_order_delete_post_put_then_get(client: httpx.AsyncClient) -> None:
    created = json_of(await client.post("/fhir/Patient", json=patient("tx-3-old")), 201)
    bundle = tx(
        call("GET", "Patient/tx-3-new"),
        put("Patient/tx-3-new", {**patient("tx-3-new"), "id": "tx-3-new"}),
        call("GET", f"Patient?identifier={SYS}|tx-3-old"),
        call("DELETE", f"Patient/{created['id']}"),
        post(patient("tx-3-posted")),
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    entries = answer["entry"]
    assert entries[0]["response"]["status"] == "200 OK"  # the GET sees the PUT of its transaction
    assert entries[0]["resource"]["id"] == "tx-3-new"
    assert entries[1]["response"]["status"] == "201 Created"
    assert entries[2]["resource"]["type"] == "searchset"
    assert "entry" not in entries[2]["resource"]  # the GET sees the DELETE too
    assert entries[3]["response"]["status"] == "204 No Content"
    assert entries[4]["response"]["status"] == "201 Created"
    assert (await client.get(f"/fhir/Patient/{created['id']}")).status_code == 410


async def test_if_none_exist_matches_and_references_follow(client: httpx.AsyncClient) -> None:
    existing = json_of(await client.post("/fhir/Patient", json=patient("tx-4")), 201)
    pat = "urn:uuid:44444444-0000-4000-8000-000000000001"
    bundle = tx(
        post(patient("tx-4"), pat, ifNoneExist=f"identifier={SYS}|tx-4"),
        post(order(pat)),
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    first, second = answer["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["resource"]["id"] == existing["id"]
    assert second["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert await count(client, "Patient", f"identifier={SYS}|tx-4") == 1


async def test_conditional_update_and_delete_entries(client: httpx.AsyncClient) -> None:
    kept = json_of(await client.post("/fhir/Patient", json=patient("tx-5a")), 201)
    gone = json_of(await client.post("/fhir/Patient", json=patient("tx-5b")), 201)
    bundle = tx(
        put(f"Patient?identifier={SYS}|tx-5a", patient("tx-5a", gender="female")),
        put(f"Patient?identifier={SYS}|tx-5c", patient("tx-5c")),
        call("DELETE", f"Patient?identifier={SYS}|tx-5b"),
        call("DELETE", f"Patient?identifier={SYS}|tx-5-nobody"),
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    updated, created, deleted, nothing = answer["entry"]
    assert updated["response"]["status"] == "200 OK"
    assert updated["resource"]["id"] == kept["id"]
    assert updated["resource"]["gender"] == "female"
    assert updated["response"]["etag"] == 'W/"2"'
    assert created["response"]["status"] == "201 Created"
    assert deleted["response"]["status"] == "204 No Content"
    assert nothing["response"]["status"] == "204 No Content"
    assert (await client.get(f"/fhir/Patient/{gone['id']}")).status_code == 410


async def test_conditional_references(client: httpx.AsyncClient) -> None:
    stored = json_of(await client.post("/fhir/Patient", json=patient("tx-6a")), 201)
    bundle = tx(
        post(order(f"Patient?identifier={SYS}|tx-6a")),
        post(order(f"Patient?identifier={SYS}|tx-6b")),  # created by this same transaction
        post(patient("tx-6b"), "urn:uuid:66666666-0000-4000-8000-000000000001"),
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    new_patient = answer["entry"][2]["resource"]["id"]
    assert answer["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{stored['id']}"
    assert answer["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{new_patient}"


async def test_conditional_reference_without_one_match_fails(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        json_of(await client.post("/fhir/Patient", json=patient("tx-7-twice")), 201)
    for query, found in (("tx-7-nobody", "no resource"), ("tx-7-twice", "several")):
        bundle = tx(post(patient("tx-7-x")), post(order(f"Patient?identifier={SYS}|{query}")))
        outcome = json_of(await client.post("/fhir", json=bundle), 412)
        issue = outcome["issue"][0]
        assert issue["expression"] == ["Bundle.entry[1].resource.subject"]
        assert found in issue["diagnostics"]
    assert await count(client, "Patient", f"identifier={SYS}|tx-7-x") == 0


async def test_if_match_per_entry(client: httpx.AsyncClient) -> None:
    made = json_of(
        await client.put("/fhir/Patient/tx-8", json={**patient("tx-8"), "id": "tx-8"}), 201
    )
    assert made["meta"]["versionId"] == "1"
    stale = tx(
        post(patient("tx-8-other")),
        put("Patient/tx-8", {**patient("tx-8"), "id": "tx-8", "gender": "other"}, ifMatch='W/"7"'),
    )
    issue = json_of(await client.post("/fhir", json=stale), 412)["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].request.ifMatch"]
    assert await count(client, "Patient", f"identifier={SYS}|tx-8-other") == 0
    fresh = tx(put("Patient/tx-8", {**patient("tx-8"), "id": "tx-8"}, ifMatch='W/"1"'))
    answer = json_of(await client.post("/fhir", json=fresh), 200)
    assert answer["entry"][0]["response"]["etag"] == 'W/"2"'


async def test_conditional_entries_if_match_and_bad_criteria_name_their_entry(
    client: httpx.AsyncClient,
) -> None:
    """A conditional update's ifMatch is checked against the version its criteria matched; an
    unknown search parameter in any conditional entry's criteria is refused at that entry,
    whatever the entries before it (the conditional searches run together before planning)."""
    json_of(await client.post("/fhir/Patient", json=patient("tx-8c")), 201)
    url = f"Patient?identifier={SYS}|tx-8c"
    stale = tx(post(patient("tx-8c-other")), put(url, patient("tx-8c"), ifMatch='W/"3"'))
    issue = json_of(await client.post("/fhir", json=stale), 412)["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].request.ifMatch"]
    fresh = tx(put(url, patient("tx-8c", gender="male"), ifMatch='W/"1"'))
    answer = json_of(await client.post("/fhir", json=fresh), 200)
    assert answer["entry"][0]["response"]["etag"] == 'W/"2"'
    for bad, element in (
        (put("Patient?no-such-parameter=x", patient("tx-8c-bad")), "url"),
        (call("DELETE", "Patient?no-such-parameter=x"), "url"),
        (post(patient("tx-8c-bad"), ifNoneExist="no-such-parameter=x"), "ifNoneExist"),
    ):
        bundle = tx(put(url, patient("tx-8c")), post(patient("tx-8c-other")), bad)
        outcome = json_of(await client.post("/fhir", json=bundle), 400)
        assert outcome["issue"][0]["expression"] == [f"Bundle.entry[2].request.{element}"]
        assert "no-such-parameter" in outcome["issue"][0]["diagnostics"], outcome
    assert await count(client, "Patient", f"identifier={SYS}|tx-8c-other") == 0


async def test_if_none_match_on_get_entries(client: httpx.AsyncClient) -> None:
    json_of(await client.put("/fhir/Patient/tx-9", json={**patient("tx-9"), "id": "tx-9"}), 201)
    bundle = tx(
        call("GET", "Patient/tx-9", ifNoneMatch='W/"1"'),
        call("GET", "Patient/tx-9", ifNoneMatch='W/"0"'),
        call("GET", "Patient/tx-9-unknown"),
    )
    entries = json_of(await client.post("/fhir", json=bundle), 200)["entry"]
    assert entries[0]["response"]["status"] == "304 Not Modified"
    assert "resource" not in entries[0]
    assert entries[1]["response"]["status"] == "200 OK"
    assert entries[2]["response"]["status"] == "404 Not Found"
    assert entries[2]["response"]["outcome"]["issue"][0]["code"] == "not-found"


async def test_same_resource_twice_fails(client: httpx.AsyncClient) -> None:
    body = {**patient("tx-10"), "id": "tx-10"}
    bundle = tx(put("Patient/tx-10", body), put("Patient/tx-10", body))
    issue = json_of(await client.post("/fhir", json=bundle), 412)["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].request.url"]
    assert (await client.get("/fhir/Patient/tx-10")).status_code == 404


async def test_prefer_minimal_and_operation_outcome(client: httpx.AsyncClient) -> None:
    bundle = tx(post(patient("tx-11")))
    minimal = json_of(
        await client.post("/fhir", json=bundle, headers={"Prefer": "return=minimal"}), 200
    )
    assert "resource" not in minimal["entry"][0]
    assert minimal["entry"][0]["response"]["status"] == "201 Created"
    outcome = json_of(
        await client.post("/fhir", json=bundle, headers={"Prefer": "return=OperationOutcome"}), 200
    )
    entry = outcome["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["outcome"]["resourceType"] == "OperationOutcome"


async def test_links_everywhere_in_a_resource_are_rewritten(client: httpx.AsyncClient) -> None:
    """urn:uuid links inside extensions, contained resources, uri elements and the narrative;
    canonical elements are left alone (bundle.html#references)."""
    pat = "urn:uuid:12121212-0000-4000-8000-000000000001"
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "CT head"},
        "subject": {"reference": pat},
        "text": {
            "status": "generated",
            "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><a href="{pat}">patient</a></div>',
        },
        "extension": [{"url": "http://x.org/ext/about", "valueReference": {"reference": pat}}],
        "contained": [
            {"resourceType": "Observation", "id": "o1", "status": "final",
             "code": {"text": "finding"}, "subject": {"reference": pat}}
        ],
        "result": [{"reference": "#o1"}],
        "presentedForm": [{"contentType": "text/plain", "url": pat}],
    }  # fmt: skip
    answer = json_of(
        await client.post("/fhir", json=tx(post(report), post(patient("tx-12"), pat))), 200
    )
    new = f"Patient/{answer['entry'][1]['resource']['id']}"
    stored = answer["entry"][0]["resource"]
    assert stored["subject"]["reference"] == new
    assert stored["extension"][0]["valueReference"]["reference"] == new
    assert stored["contained"][0]["subject"]["reference"] == new
    assert stored["presentedForm"][0]["url"] == new
    assert f'href="{new}"' in stored["text"]["div"]
    assert stored["result"][0]["reference"] == "#o1"


async def test_too_many_entries_is_413(tmp_path: Any) -> None:
    from fhir_server.api.app import create_app
    from fhir_server.bootstrap import build
    from fhir_server.settings import Settings

    application = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d", max_bundle_entries=3)
    )
    await application.start()
    try:
        app = create_app(application.service, application)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            bundle = tx(*(post(patient(f"tx-13-{n}")) for n in range(4)))
            issue = json_of(await c.post("/fhir", json=bundle), 413)["issue"][0]
            assert issue["expression"] == ["Bundle.entry"]
            assert "at most 3" in issue["diagnostics"]
    finally:
        await application.stop()


async def test_malformed_entries_are_400_naming_them(client: httpx.AsyncClient) -> None:
    cases = [
        ({"request": {"method": "FETCH", "url": "Patient"}}, "Bundle.entry[0].request.method"),
        ({"request": {"method": "GET"}}, "Bundle.entry[0].request.url"),
        ({"resource": PATIENT}, "Bundle.entry[0].request"),
        ({"request": {"method": "POST", "url": "Patient"}}, "Bundle.entry[0].resource"),
        ({"resource": {**PATIENT, "resourceType": "Practitioner"},
          "request": {"method": "POST", "url": "Patient"}},
         "Bundle.entry[0].resource.resourceType"),
        (call("GET", "NotAType/1"), "Bundle.entry[0].request.url"),
    ]  # fmt: skip
    for entry, where in cases:
        issue = json_of(await client.post("/fhir", json=tx(entry)), 400)["issue"][0]
        assert issue["expression"] == [where], entry


async def test_patch_entries_json_patch_and_fhirpath_patch(client: httpx.AsyncClient) -> None:
    import base64
    import json

    json_of(await client.put("/fhir/Patient/tx-14", json={**patient("tx-14"), "id": "tx-14"}), 201)
    fhirpath_patch = {
        "resourceType": "Parameters",
        "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"},
            {"name": "path", "valueString": "Patient.birthDate"},
            {"name": "value", "valueDate": "1980-01-02"},
        ]}],
    }  # fmt: skip
    document = [{"op": "replace", "path": "/gender", "value": "female"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(document).encode()).decode(),
    }
    bundle = tx(
        {"resource": fhirpath_patch, "request": {"method": "PATCH", "url": "Patient/tx-14"}},
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    assert answer["entry"][0]["resource"]["birthDate"] == "1980-01-02"
    batch = tx(
        {"resource": binary, "request": {"method": "PATCH", "url": "Patient/tx-14"}}, kind="batch"
    )
    answer = json_of(await client.post("/fhir", json=batch), 200)
    assert answer["entry"][0]["resource"]["gender"] == "female"
    assert answer["entry"][0]["response"]["etag"] == 'W/"3"'
