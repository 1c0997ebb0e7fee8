"""The server is safe under concurrent requests: no lost update, exactly one If-Match winner."""

from __future__ import annotations

import asyncio

import httpx

from tests.api.test_http_read_write import PATIENT, create, json_of


async def test_concurrent_updates_lose_no_version(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]

    async def update(n: int) -> int:
        body = {**PATIENT, "id": id, "name": [{"family": f"Name{n}"}]}
        return (await client.put(f"/fhir/Patient/{id}", json=body)).status_code

    statuses = await asyncio.gather(*(update(n) for n in range(20)))
    assert statuses == [200] * 20
    history = json_of(await client.get(f"/fhir/Patient/{id}/_history?_count=100"))
    versions = [int(e["resource"]["meta"]["versionId"]) for e in history["entry"]]
    assert versions == list(range(21, 0, -1))


async def test_concurrent_if_match_has_one_winner(client: httpx.AsyncClient) -> None:
    id = json_of(await create(client))["id"]

    async def update(n: int) -> int:
        body = {**PATIENT, "id": id, "name": [{"family": f"Name{n}"}]}
        response = await client.put(f"/fhir/Patient/{id}", json=body, headers={"If-Match": 'W/"1"'})
        return response.status_code

    statuses = await asyncio.gather(*(update(n) for n in range(10)))
    assert sorted(statuses) == [200] + [412] * 9


async def test_concurrent_creates_all_land(client: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(client.post("/fhir/Patient", json=PATIENT) for _ in range(30))
    )
    ids = {json_of(r)["id"] for r in responses}
    assert len(ids) == 30 and all(r.status_code == 201 for r in responses)
