"""Search over HTTP: type, system and compartment search, result parameters, includes, paging
links, strict and lenient handling, and conditional create/update/delete (race-free).

The socket variant shares one server across tests, so every test uses its own identifier system.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.api.test_http_read_write import json_of


def unique_system() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient(system: str, value: str, family: str = "Chen", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": family, "given": ["Li"]}],
        **extra,
    }


async def post(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(f"/fhir/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return json_of(response)


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    ]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((li["url"] for li in bundle["link"] if li["relation"] == relation), None)


def relative(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_token_string_and_date_search(client: httpx.AsyncClient) -> None:
    system = unique_system()
    a = await post(client, patient(system, "1", "Müller", birthDate="1980-05-01"))
    b = await post(client, patient(system, "2", "Muller", birthDate="1990"))
    await post(client, patient(system, "3", "Smith", birthDate="2001-01-01"))
    found = json_of(
        await client.get("/fhir/Patient", params={"identifier": f"{system}|1,{system}|2"})
    )
    assert sorted(ids(found)) == sorted([f"Patient/{a['id']}", f"Patient/{b['id']}"])
    assert found["type"] == "searchset"
    by_name = json_of(
        await client.get("/fhir/Patient", params={"identifier": f"{system}|", "family": "mull"})
    )
    assert sorted(ids(by_name)) == sorted([f"Patient/{a['id']}", f"Patient/{b['id']}"])
    exact = json_of(
        await client.get(
            "/fhir/Patient", params={"identifier": f"{system}|", "family:exact": "Müller"}
        )
    )
    assert ids(exact) == [f"Patient/{a['id']}"]
    dated = json_of(
        await client.get(
            "/fhir/Patient",
            params=[("identifier", f"{system}|"), ("birthdate", "ge1985"), ("birthdate", "lt2000")],
        )
    )
    assert ids(dated) == [f"Patient/{b['id']}"]


async def test_post_search_equals_get(client: httpx.AsyncClient) -> None:
    system = unique_system()
    a = await post(client, patient(system, "1"))
    response = await client.post(
        "/fhir/Patient/_search",
        content=f"identifier={system}|1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert ids(json_of(response)) == [f"Patient/{a['id']}"]


async def test_unknown_parameter_is_400_and_lenient_ignores_it(client: httpx.AsyncClient) -> None:
    response = await client.get("/fhir/Patient", params={"nonsense": "x"})
    assert response.status_code == 400
    outcome = json_of(response)
    assert outcome["resourceType"] == "OperationOutcome"
    assert "nonsense" in outcome["issue"][0]["diagnostics"]
    system = unique_system()
    a = await post(client, patient(system, "1"))
    lenient = await client.get(
        "/fhir/Patient",
        params={"nonsense": "x", "identifier": f"{system}|1"},
        headers={"Prefer": "handling=lenient"},
    )
    assert lenient.status_code == 200
    bundle = json_of(lenient)
    assert ids(bundle) == [f"Patient/{a['id']}"]
    self_link = link(bundle, "self")
    assert self_link is not None and "nonsense" not in self_link and "identifier" in self_link


async def test_paging_follows_next_and_previous_links(client: httpx.AsyncClient) -> None:
    system = unique_system()
    created = [(await post(client, patient(system, str(n))))["id"] for n in range(7)]
    first = json_of(
        await client.get("/fhir/Patient", params={"identifier": f"{system}|", "_count": "3"})
    )
    pages = [ids(first)]
    bundle = first
    while (next_url := link(bundle, "next")) is not None:
        bundle = json_of(await client.get(relative(next_url)))
        pages.append(ids(bundle))
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i.split("/")[1] for p in pages for i in p] == created
    previous = link(bundle, "previous")
    assert previous is not None
    back = json_of(await client.get(relative(previous)))
    assert ids(back) == pages[1]
    assert link(first, "previous") is None


async def test_total_and_summary_count(client: httpx.AsyncClient) -> None:
    system = unique_system()
    for n in range(3):
        await post(client, patient(system, str(n)))
    plain = json_of(await client.get("/fhir/Patient", params={"identifier": f"{system}|"}))
    assert "total" not in plain
    accurate = json_of(
        await client.get("/fhir/Patient", params={"identifier": f"{system}|", "_total": "accurate"})
    )
    assert accurate["total"] == 3
    counted = json_of(
        await client.get("/fhir/Patient", params={"identifier": f"{system}|", "_summary": "count"})
    )
    assert counted["total"] == 3 and "entry" not in counted


async def test_sort_on_two_keys(client: httpx.AsyncClient) -> None:
    system = unique_system()
    a = await post(client, patient(system, "1", "Bravo", birthDate="1990"))
    b = await post(client, patient(system, "2", "Alpha", birthDate="1990"))
    c = await post(client, patient(system, "3", "Alpha", birthDate="1970"))
    sorted_ = json_of(
        await client.get(
            "/fhir/Patient", params={"identifier": f"{system}|", "_sort": "family,-birthdate"}
        )
    )
    assert ids(sorted_) == [f"Patient/{b['id']}", f"Patient/{c['id']}", f"Patient/{a['id']}"]


async def test_include_revinclude_chain_has_and_compartment(client: httpx.AsyncClient) -> None:
    system = unique_system()
    org = await post(client, {"resourceType": "Organization", "name": f"Clinic {system}"})
    pat = await post(
        client,
        patient(system, "1", managingOrganization={"reference": f"Organization/{org['id']}"}),
    )
    obs = await post(
        client,
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": system, "code": "bp"}]},
            "subject": {"reference": f"Patient/{pat['id']}"},
        },
    )
    included = json_of(
        await client.get(
            "/fhir/Observation",
            params={"code": f"{system}|bp", "_include": "Observation:subject"},
        )
    )
    assert ids(included) == [f"Observation/{obs['id']}"]
    assert ids(included, "include") == [f"Patient/{pat['id']}"]
    iterated = json_of(
        await client.get(
            "/fhir/Observation",
            params=[
                ("code", f"{system}|bp"),
                ("_include", "Observation:subject"),
                ("_include:iterate", "Patient:organization"),
            ],
        )
    )
    assert sorted(ids(iterated, "include")) == sorted(
        [f"Patient/{pat['id']}", f"Organization/{org['id']}"]
    )
    reverse = json_of(
        await client.get(
            "/fhir/Patient",
            params={"identifier": f"{system}|1", "_revinclude": "Observation:subject"},
        )
    )
    assert ids(reverse, "include") == [f"Observation/{obs['id']}"]
    chained = json_of(
        await client.get(
            "/fhir/Observation",
            params={"subject:Patient.organization.name": f"Clinic {system}"},
        )
    )
    assert ids(chained) == [f"Observation/{obs['id']}"]
    has = json_of(
        await client.get("/fhir/Patient", params={"_has:Observation:subject:code": f"{system}|bp"})
    )
    assert ids(has) == [f"Patient/{pat['id']}"]
    compartment = json_of(await client.get(f"/fhir/Patient/{pat['id']}/Observation"))
    assert ids(compartment) == [f"Observation/{obs['id']}"]
    everything = json_of(await client.get(f"/fhir/Patient/{pat['id']}/*"))
    assert f"Observation/{obs['id']}" in ids(everything)


async def test_system_search_with_type(client: httpx.AsyncClient) -> None:
    system = unique_system()
    pat = await post(client, patient(system, "1"))
    tag = {"system": system, "code": "t"}
    obs = await post(
        client,
        {
            "resourceType": "Observation",
            "meta": {"tag": [tag]},
            "status": "final",
            "code": {"text": "x"},
        },
    )
    tagged = json_of(await client.get("/fhir", params={"_tag": f"{system}|t"}))
    assert ids(tagged) == [f"Observation/{obs['id']}"]
    by_id = json_of(
        await client.get("/fhir", params={"_id": pat["id"], "_type": "Patient,Observation"})
    )
    assert ids(by_id) == [f"Patient/{pat['id']}"]


async def test_conditional_create_returns_the_existing_match(client: httpx.AsyncClient) -> None:
    system = unique_system()
    first = await client.post(
        "/fhir/Patient",
        json=patient(system, "1"),
        headers={"If-None-Exist": f"identifier={system}|1"},
    )
    assert first.status_code == 201
    again = await client.post(
        "/fhir/Patient",
        json=patient(system, "1"),
        headers={"If-None-Exist": f"identifier={system}|1"},
    )
    assert again.status_code == 200
    assert json_of(again)["id"] == json_of(first)["id"]
    await post(client, patient(system, "1"))  # a duplicate made on purpose, without condition
    many = await client.post(
        "/fhir/Patient",
        json=patient(system, "1"),
        headers={"If-None-Exist": f"identifier={system}|1"},
    )
    assert many.status_code == 412


async def test_fifty_concurrent_conditional_creates_make_one_resource(
    client: httpx.AsyncClient,
) -> None:
    system = unique_system()
    headers = {"If-None-Exist": f"identifier={system}|same"}
    responses = await asyncio.gather(
        *(
            client.post("/fhir/Patient", json=patient(system, "same"), headers=headers)
            for _ in range(50)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 49 + [201], statuses
    assert len({json_of(r)["id"] for r in responses}) == 1
    found = json_of(
        await client.get(
            "/fhir/Patient", params={"identifier": f"{system}|same", "_total": "accurate"}
        )
    )
    assert found["total"] == 1


async def test_conditional_update_and_delete(client: httpx.AsyncClient) -> None:
    system = unique_system()
    query = f"identifier={system}|1"
    created = await client.put(f"/fhir/Patient?{query}", json=patient(system, "1", "First"))
    assert created.status_code == 201
    id = json_of(created)["id"]
    updated = await client.put(f"/fhir/Patient?{query}", json=patient(system, "1", "Second"))
    assert updated.status_code == 200
    assert json_of(updated)["id"] == id and json_of(updated)["meta"]["versionId"] == "2"
    wrong_id = await client.put(
        f"/fhir/Patient?{query}", json={**patient(system, "1"), "id": "other"}
    )
    assert wrong_id.status_code == 400
    deleted = await client.delete(f"/fhir/Patient?{query}")
    assert deleted.status_code == 204
    assert (await client.get(f"/fhir/Patient/{id}")).status_code == 410
    nothing = await client.delete(f"/fhir/Patient?{query}")
    assert nothing.status_code == 204
    await post(client, patient(system, "2"))
    await post(client, patient(system, "2"))
    many = await client.delete(f"/fhir/Patient?identifier={system}|2")
    assert many.status_code == 412
    no_criteria = await client.delete("/fhir/Patient")
    assert no_criteria.status_code == 400


async def test_search_errors_name_the_parameter(client: httpx.AsyncClient) -> None:
    for params, name in [
        ({"birthdate": "not-a-date"}, "birthdate"),
        ({"family:bogus": "x"}, "family"),
        ({"_sort": "nonsense"}, "_sort"),
        ({"_count": "-1"}, "_count"),
        ({"subject.name": "x"}, "subject"),
    ]:
        response = await client.get("/fhir/Patient", params=params)
        assert response.status_code == 400, (params, response.text)
        assert name in json_of(response)["issue"][0]["diagnostics"], params
