"""The message log's admin API (/admin/hl7/messages): search, read, $replay; open with --auth
off, system/Admin scopes with SMART on (401 without a token, 403 without the scope)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from fhir_server.bootstrap import Application, make_app
from fhir_server.messaging.log import InboundMeta, MessageLog
from tests.api.smart.conftest import BASE, Smart, start_smart
from tests.hl7v2.conftest import exchange, order, segments
from tests.integration.smart_support import make_key, public_jwks

pytestmark = pytest.mark.asyncio(loop_scope="module")
API = f"{BASE}/admin/hl7/messages"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(hl7_app: Application) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(hl7_app))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def smart(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Smart]:
    harness, stop = await start_smart(tmp_path_factory.mktemp("hl7-admin") / "data")
    try:
        yield harness
    finally:
        await stop()


async def test_search_read_and_replay_without_auth(
    hl7_app: Application, mllp_port: int, http: httpx.AsyncClient
) -> None:
    bad = order("API-2").replace("PID|1||MRN-API-2^^^CITYHOSP^MR|", "PID|1|||")
    ok, failed = await exchange(mllp_port, order("API-1", app="APIRIS"), bad)
    listed = (await http.get(API, params={"sender": "APIRIS", "direction": "in"})).json()
    assert listed["count"] == 1
    (entry,) = listed["messages"]
    assert entry["control_id"] == "API-1" and entry["type"] == "ORM^O01"
    assert "raw" not in entry and "ack" not in entry  # the list stays small
    one = (await http.get(f"{API}/{entry['id']}")).json()
    assert one["raw"].startswith("MSH|^~\\&|APIRIS|") and one["ack"] == ok
    (failure,) = (await http.get(API, params={"control_id": "API-2"})).json()["messages"]
    assert failure["state"] == "failed"
    assert failure["error"]["segment"] == "PID" and failure["error"]["field"] == 3
    replayed = await http.post(f"{API}/{failure['id']}/$replay")
    assert replayed.status_code == 200 and replayed.json()["state"] == "received"
    assert replayed.json()["error"] is None
    assert segments(failed)["MSA"][1] == "AE"


async def test_search_filters_and_bad_parameters(http: httpx.AsyncClient) -> None:
    answer = await http.get(API, params={"state": "received", "type": "ORM^O01", "_count": "2"})
    assert answer.status_code == 200 and answer.json()["count"] <= 2
    assert all(m["state"] == "received" for m in answer.json()["messages"])
    future = await http.get(API, params={"since": "2999-01-01"})
    assert future.json()["count"] == 0
    for params, word in (({"state": "lost"}, "state"), ({"_count": "0"}, "_count"),
                         ({"colour": "red"}, "colour"), ({"since": "March"}, "since")):  # fmt: skip
        refused = await http.get(API, params=params)
        assert refused.status_code == 400 and word in refused.json()["error_description"]
    assert (await http.get(f"{API}/nope")).status_code == 404
    assert (await http.post(f"{API}/nope/$replay")).status_code == 404


async def test_ro24_system_admin_scopes_are_required_with_smart(smart: Smart) -> None:
    log = smart.application.messages
    assert isinstance(log, MessageLog)
    meta = InboundMeta("SCOPE-1", "RIS", "CITYHOSP", "ORM^O01", "2.5.1")
    accepted = await log.accept(order("SCOPE-1"), meta, ack="MSH|^~\\&|ACK")
    key = make_key("ES384")
    await smart.add_client(
        "hl7-ops", "backend", jwks=public_jwks(key),
        scope="system/Admin.rs system/Admin.u system/Patient.rs",
    )  # fmt: skip
    reader = await smart.backend_token("hl7-ops", key, "system/Admin.rs")
    patient_only = await smart.backend_token("hl7-ops", key, "system/Patient.rs")
    operator = await smart.backend_token("hl7-ops", key, "system/Admin.rs system/Admin.u")

    async def call(method: str, url: str, token: str | None) -> httpx.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return await smart.http.request(method, url, headers=headers)

    assert (await call("GET", API, None)).status_code == 401
    assert (await call("GET", API, "not-a-token")).status_code == 401
    refused = await call("GET", API, patient_only)
    assert refused.status_code == 403 and "system/Admin.s" in refused.text
    listed = await call("GET", API, reader)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()["messages"]] == [accepted.id]
    assert (await call("GET", f"{API}/{accepted.id}", reader)).json()["control_id"] == "SCOPE-1"
    replay = f"{API}/{accepted.id}/$replay"
    assert (await call("POST", replay, reader)).status_code == 403  # needs system/Admin.u
    assert (await call("POST", replay, operator)).status_code == 200


async def test_paging_with_after_and_since(mllp_port: int, http: httpx.AsyncClient) -> None:
    await exchange(mllp_port, *(order(f"PAGE-{n}", app="PAGER") for n in range(5)))
    seen: list[str] = []
    params = {"sender": "PAGER", "_count": "2"}
    while True:
        page = (await http.get(API, params=params)).json()
        seen += [m["control_id"] for m in page["messages"]]
        if "next" not in page:
            break
        params = {**params, "after": page["next"]}
    assert seen == [f"PAGE-{n}" for n in range(5)]
    (first,) = (await http.get(API, params={"control_id": "PAGE-0"})).json()["messages"]
    later = await http.get(API, params={"sender": "PAGER", "since": first["received"]})
    assert [m["control_id"] for m in later.json()["messages"]][:1] == ["PAGE-0"]
