"""batch Bundles over HTTP (http://hl7.org/fhir/R4/http.html#transaction): every entry is
processed alone, as the equivalent REST request, and answers with its own status; one failing
entry changes nothing for the others."""

from __future__ import annotations

import httpx

from tests.api.test_http_transaction import SYS, call, count, json_of, order, patient, post, put, tx


async def test_each_entry_has_its_own_outcome(client: httpx.AsyncClient) -> None:
    bundle = tx(
        post(patient("b-1a")),
        post(patient("b-1b", birthDate="1974-13-45")),
        call("GET", "Patient/b-1-unknown"),
        put("Patient/b-1c", {**patient("b-1c"), "id": "b-1c"}),
        call("DELETE", "Patient/b-1c-never"),
        call("GET", f"Patient?identifier={SYS}|b-1a"),
        kind="batch",
    )
    answer = json_of(await client.post("/fhir", json=bundle), 200)
    assert answer["type"] == "batch-response"
    entries = answer["entry"]
    assert [e["response"]["status"] for e in entries] == [
        "201 Created", "422 Unprocessable Entity", "404 Not Found", "201 Created",
        "204 No Content", "200 OK",
    ]  # fmt: skip
    issue = entries[1]["response"]["outcome"]["issue"][0]
    assert issue["expression"] == ["Bundle.entry[1].resource.birthDate"]
    assert "resource" not in entries[1]
    assert len(entries[5]["resource"]["entry"]) == 1  # the POST of entry 0 was stored
    assert await count(client, "Patient", f"identifier={SYS}|b-1b") == 0
    assert (await client.get("/fhir/Patient/b-1c")).status_code == 200


async def test_batch_entries_do_not_resolve_each_other(client: httpx.AsyncClient) -> None:
    """Entries of a batch are independent: a urn:uuid in one is not another's identity, and a
    reference nobody can resolve is refused in its own entry only."""
    pat = "urn:uuid:b0b0b0b0-0000-4000-8000-000000000001"
    bundle = tx(
        post(patient("b-2"), pat),
        post(order(f"Patient?identifier={SYS}|b-2")),
        kind="batch",
    )
    entries = json_of(await client.post("/fhir", json=bundle), 200)["entry"]
    assert entries[0]["response"]["status"] == "201 Created"
    assert entries[1]["response"]["status"].startswith("4")
    assert entries[1]["response"]["outcome"]["issue"][0]["expression"][0].startswith(
        "Bundle.entry[1]"
    )


async def test_batch_conditional_writes(client: httpx.AsyncClient) -> None:
    json_of(await client.post("/fhir/Patient", json=patient("b-3")), 201)
    bundle = tx(
        post(patient("b-3"), ifNoneExist=f"identifier={SYS}|b-3"),
        put(f"Patient?identifier={SYS}|b-3", patient("b-3", gender="female")),
        call("DELETE", f"Patient?identifier={SYS}|b-3-nobody"),
        kind="batch",
    )
    entries = json_of(await client.post("/fhir", json=bundle), 200)["entry"]
    assert [e["response"]["status"] for e in entries] == ["200 OK", "200 OK", "204 No Content"]
    assert entries[1]["resource"]["gender"] == "female"


async def test_batch_prefer_minimal(client: httpx.AsyncClient) -> None:
    bundle = tx(post(patient("b-4")), kind="batch")
    response = await client.post("/fhir", json=bundle, headers={"Prefer": "return=minimal"})
    entry = json_of(response, 200)["entry"][0]
    assert "resource" not in entry
    assert entry["response"]["location"].startswith("Patient/")
