"""Nothing is lost across a crash, nothing is done twice: a server killed (SIGKILL) after its
ACKs and before mapping maps the orders after restart, exactly once; a resend after a lost ACK
gets the original ACK and creates no second order. Also the worker's own loop: mapped with the
references written, failed with the mapping error, mapped again after $replay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.bootstrap import Application, make_app
from tests.conftest import ServerProcess, free_port
from tests.hl7v2.conftest import exchange, mllp_send, order, segments

pytestmark = pytest.mark.asyncio(loop_scope="module")


def fhir(base: str, path: str) -> dict[str, Any]:
    answer = httpx.get(f"{base}/fhir/{path}", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def serve(data: Path, port: int, *extra: str) -> ServerProcess:
    server = ServerProcess(data, "--mllp-port", str(port), *extra)
    server.wait_ready()
    return server


def messages_of(base: str, control_id: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/admin/hl7/messages", params={"control_id": control_id})
    return answer.json()["messages"]  # type: ignore[no-any-return]


async def test_kill_9_after_the_ack_and_before_mapping_loses_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    orders = [order(f"CRASH-{n}", patient=f"CRASH^PATIENT{n}") for n in range(3)]
    first = serve(data, port, "--hl7-worker-delay", "3600")  # ACKs, but maps nothing yet
    try:
        acks = await asyncio.to_thread(mllp_send, port, orders, tmp_path)
        assert [segments(a)["MSA"][1] for a in acks] == ["AA", "AA", "AA"]
        assert [m["state"] for m in messages_of(first.base, "CRASH-0")] == ["received"]
        assert "entry" not in fhir(first.base, "ServiceRequest?identifier=PL-CRASH-0")
    finally:
        first.process.kill()  # SIGKILL: no shutdown, no flush
        first.process.wait()
        first.stop()
    second = serve(data, port)
    try:
        for n in range(3):
            mapped = wait_for(lambda n=n: [m for m in messages_of(second.base, f"CRASH-{n}")
                                           if m["state"] == "mapped"])  # fmt: skip
            assert mapped, messages_of(second.base, f"CRASH-{n}")
            kinds = sorted(r.split("/")[0] for r in mapped[0]["resources"])
            assert "ServiceRequest" in kinds and "Task" in kinds and "Patient" in kinds
        # a resend after the lost ACK: the original ACK, and still one order
        (again,) = await asyncio.to_thread(mllp_send, port, orders[:1], tmp_path)
        assert again == acks[0]
        await asyncio.sleep(0.5)
        requests = fhir(second.base, "ServiceRequest?identifier=PL-CRASH-0")
        assert len(requests.get("entry", [])) == 1
        (request,) = requests["entry"]
        tasks = fhir(second.base, f"Task?focus=ServiceRequest/{request['resource']['id']}")
        assert len(tasks.get("entry", [])) == 1
    finally:
        second.stop()


async def test_worker_marks_mapped_and_failed_and_maps_again_after_replay(
    hl7_app: Application, mllp_port: int
) -> None:
    assert hl7_app.messages is not None
    log = hl7_app.messages
    cancel_unknown = order("WRK-2").replace("ORC|NW|PL-WRK-2", "ORC|CA|PL-NEVER-SEEN")
    cancel_unknown = cancel_unknown.replace("OBR|1|PL-WRK-2", "OBR|1|PL-NEVER-SEEN")
    acks = await exchange(mllp_port, order("WRK-1"), cancel_unknown)
    assert [segments(a)["MSA"][1] for a in acks] == ["AA", "AA"]

    async def state(control: str, wanted: str) -> dict[str, Any]:
        for _ in range(150):
            (found,) = await log.search(control_id=control)
            if found["state"] == wanted:
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"{control} never reached {wanted}: {found}")

    mapped = await state("WRK-1", "mapped")
    assert any(r.startswith("ServiceRequest/") for r in mapped["resources"])
    failed = await state("WRK-2", "failed")
    assert failed["error"]["code"] == "204"  # a cancel of an order this server never had
    assert "PL-NEVER-SEEN" in failed["error"]["text"]
    transport = httpx.ASGITransport(app=make_app(hl7_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        for message in (mapped, failed):
            replay = await http.post(f"/admin/hl7/messages/{message['id']}/$replay")
            assert replay.status_code == 200 and replay.json()["state"] == "received"
        remapped = await state("WRK-1", "mapped")
        assert remapped["updated"] > mapped["updated"]
        kept = mapped["resources"]
        assert any(r.startswith("Encounter/") for r in kept)
        assert set(kept) <= set(remapped["resources"])  # unchanged, Encounter too: no duplicate
        again = await state("WRK-2", "failed")
        assert again["updated"] > failed["updated"] and again["error"]["code"] == "204"
        found = (await http.get("/fhir/ServiceRequest?identifier=PL-WRK-1")).json()
        assert len(found["entry"]) == 1  # mapped twice, one order
        visits = (await http.get("/fhir/Encounter")).json()
        assert len(visits.get("entry", [])) == 1  # no PV1-19: derived visit identifier
