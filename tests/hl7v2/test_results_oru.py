"""Results out: a reported DiagnosticReport on a v2 order → ORU^R01 to the RIS over MLLP.

The RIS is a small asyncio MLLP listener written here; it reads each ORU with python-hl7 (an
independent parser) and answers with python-hl7's ``create_ack`` (AA, or AE when told to).
Orders come in through the inbound mapping (``OrderMapper.process``), as the worker applies them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import hl7
import pytest
import pytest_asyncio

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.inbound import OrderMapper
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.senders import SenderConfig
from fhir_server.storage.port import OutboxEvent
from tests.conftest import free_port, running_application
from tests.hl7v2.conftest import order

pytestmark = pytest.mark.asyncio(loop_scope="module")
NASTY = "Nodule 3|4 mm ^ stable & unchanged ~ see prior \\ 2024"
PDF = base64.b64encode(b"%PDF-1.4\n% report bytes\n").decode()
CTX = RequestContext()


class Ris:
    """An MLLP listener playing the RIS: keeps every ORU, answers AA (or AE when ``refuse``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[hl7.Message] = []
        self.refuse: set[str] = set()  # placer numbers to answer with AE
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            writers = list(self._writers)
            for writer in writers:  # the RIS goes down: its connections too
                writer.close()
            for writer in writers:  # closed for real before the test's loop ends
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                frame = await reader.readuntil(b"\x1c\r")
                message = hl7.parse(frame[1:-2].decode())
                self.received.append(message)
                placer = str(message.segment("OBR")[2][0][0])
                code = "AE" if placer in self.refuse else "AA"
                ack = message.create_ack(code, message_id=f"ACK{len(self.received)}")
                text = str(ack)
                if code == "AE":
                    text += "\rERR||OBR^1^2|204^Unknown key identifier^HL70357|E||||unknown order"
                writer.write(b"\x0b" + text.encode() + b"\x1c\r")
                await writer.drain()
                self.arrived.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        finally:
            self._writers.discard(writer)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ris() -> AsyncIterator[Ris]:
    peer = Ris(free_port())
    await peer.start()
    yield peer
    await peer.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def app(tmp_path_factory: pytest.TempPathFactory, ris: Ris) -> AsyncIterator[Application]:
    data: Path = tmp_path_factory.mktemp("oru") / "data"
    async with running_application(
        data, hl7_destinations=(f"ris=127.0.0.1:{ris.port}",), hl7_ack_timeout=2.0,
        hl7_retry_initial=0.05, hl7_retry_max=0.4,
    ) as application:  # fmt: skip
        yield application


async def _order(app: Application, placer: str) -> dict[str, str]:
    """An ORM^O01 from RIS^CITYHOSP mapped as the worker does: the references written."""
    message = parse(order(f"C-{placer}", placer=placer))
    sender = SenderConfig("RIS", "CITYHOSP", None, {})
    refs = await OrderMapper(V2Tables.load()).process(message, sender, app.service)
    return {ref.split("/")[0]: ref for ref in refs}


async def _report(app: Application, refs: dict[str, str], **extra: Any) -> dict[str, Any]:
    radiologist = await app.service.create(
        CTX, "Practitioner",
        {"resourceType": "Practitioner", "identifier": [{"system": "urn:x", "value": "R-77"}],
         "name": [{"family": "Radu", "given": ["Ana"]}]},
    )  # fmt: skip
    body = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "basedOn": [{"reference": refs["ServiceRequest"]}],
        "subject": {"reference": refs["Patient"]},
        "code": {"coding": [{"system": "http://loinc.org", "code": "24725-4",
                             "display": "CT Head"}]},
        "effectiveDateTime": "2026-03-14T10:00:00+02:00",
        "issued": "2026-03-14T12:00:00+02:00",
        "resultsInterpreter": [{"reference": f"Practitioner/{radiologist.version.id}"}],
        "conclusion": f"No acute findings.\n{NASTY}",
        **extra,
    }  # fmt: skip
    written = await app.service.create(CTX, "DiagnosticReport", body)
    return {**body, "id": written.version.id}


def _field(message: hl7.Message, segment: str, n: int, occurrence: int = 0) -> str:
    return str(message.segments(segment)[occurrence][n])


async def _log(app: Application, source_prefix: str) -> list[dict[str, Any]]:
    assert app.messages is not None
    records = await app.messages.search(direction="out", limit=10_000)
    return [r for r in records if str(r.get("source", "")).startswith(source_prefix)]


async def _settled(app: Application, source: str, within: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(within):
        while True:
            found = await _log(app, source)
            if found and found[0]["state"] in ("acknowledged", "failed"):
                return found[0]
            await asyncio.sleep(0.05)


async def test_ro19_final_report_goes_back_as_oru_until_acknowledged(
    app: Application, ris: Ris
) -> None:
    refs = await _order(app, "PL-FINAL")
    report = await _report(
        app, refs, presentedForm=[{"contentType": "application/pdf", "data": PDF}]
    )
    record = await _settled(app, f"DiagnosticReport/{report['id']}/")
    assert record["state"] == "acknowledged", record
    oru = next(m for m in ris.received if _field(m, "OBR", 2).startswith("PL-FINAL"))
    assert str(oru.segment("MSH")[9]) == "ORU^R01^ORU_R01"
    assert _field(oru, "MSH", 5) == "RIS" and _field(oru, "MSH", 6) == "CITYHOSP"
    assert _field(oru, "ORC", 1) == "RE"
    assert _field(oru, "OBR", 2) == "PL-FINAL^RIS"
    assert _field(oru, "OBR", 4) == "24725-4^CT Head^LN"
    assert _field(oru, "OBR", 7) == "20260314100000+0200"
    assert _field(oru, "OBR", 24) == "CT"
    assert _field(oru, "OBR", 25) == "F"
    assert _field(oru, "OBR", 32) == "R-77&Radu&Ana"
    assert _field(oru, "PID", 3).startswith("MRN-C-PL-FINAL^^^CITYHOSP")
    obx = oru.segments("OBX")
    assert [str(s[2]) for s in obx] == ["TX", "TX", "ED"]
    escaped = obx[1][5]
    assert len(escaped) == 1 and isinstance(escaped[0], str)  # one value, not split at ^ & ~
    assert oru.unescape(str(escaped)) == NASTY
    assert str(obx[2][5]).split("^")[1:4] == ["application", "pdf", "Base64"]
    assert base64.b64decode(str(obx[2][5]).split("^")[4]) == base64.b64decode(PDF)
    assert record["control_id"] == _field(oru, "MSH", 10)


async def test_amended_and_appended_send_corrected(app: Application, ris: Ris) -> None:
    refs = await _order(app, "PL-AMEND")
    report = await _report(app, refs)
    await _settled(app, f"DiagnosticReport/{report['id']}/_history/1")
    for version, status in ((2, "amended"), (3, "appended")):
        body = {**report, "status": status, "conclusion": f"Addendum {version}"}
        await app.service.update(CTX, "DiagnosticReport", report["id"], body)
        record = await _settled(app, f"DiagnosticReport/{report['id']}/_history/{version}")
        assert record["state"] == "acknowledged"
        oru = parse(record["raw"])
        assert oru.get("OBR-25") == "C"
        assert oru.get("OBX-5") == f"Addendum {version}"


async def test_preliminary_and_non_v2_orders_send_nothing(app: Application) -> None:
    refs = await _order(app, "PL-PRELIM")
    report = await _report(app, refs, status="preliminary")
    rest_order = await app.service.create(
        CTX, "ServiceRequest",
        {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
         "subject": {"reference": refs["Patient"]}},
    )  # fmt: skip
    rest = f"ServiceRequest/{rest_order.version.id}"
    other = await _report(app, {**refs, "ServiceRequest": rest})
    await asyncio.sleep(0.5)  # the relay polls every 0.05 s
    assert await _log(app, f"DiagnosticReport/{report['id']}/") == []
    assert await _log(app, f"DiagnosticReport/{other['id']}/") == []


async def test_ro19_ris_answers_ae_the_log_shows_failed(app: Application, ris: Ris) -> None:
    ris.refuse.add("PL-REFUSED")
    refs = await _order(app, "PL-REFUSED")
    report = await _report(app, refs)
    record = await _settled(app, f"DiagnosticReport/{report['id']}/")
    assert record["state"] == "failed"
    assert record["error"]["code"] == "204"
    assert record["error"]["text"] == "unknown order"
    assert "MSA|AE|" in record["ack"]
    # the next result still goes through
    later = await _report(app, await _order(app, "PL-AFTER"))
    assert (await _settled(app, f"DiagnosticReport/{later['id']}/"))["state"] == "acknowledged"


async def test_ro19_ris_down_retries_then_delivers_in_order(app: Application, ris: Ris) -> None:
    await ris.stop()
    reports = []
    for n in range(3):
        reports.append(await _report(app, await _order(app, f"PL-DOWN-{n}")))
    await asyncio.sleep(1.0)  # several attempts with backoff meanwhile
    pending = [(await _log(app, f"DiagnosticReport/{r['id']}/"))[0] for r in reports]
    assert all(p["state"] in ("queued", "sent") for p in pending)
    assert pending[0]["attempts"] >= 2
    assert pending[0]["error"]["code"] == "transport"
    before = len(ris.received)
    await ris.start()
    for r in reports:
        assert (await _settled(app, f"DiagnosticReport/{r['id']}/"))["state"] == "acknowledged"
    placers = [_field(m, "OBR", 2).split("^")[0] for m in ris.received[before:]]
    assert [p for p in placers if p.startswith("PL-DOWN")] == [f"PL-DOWN-{n}" for n in range(3)]


async def test_outbox_retry_queues_once(app: Application) -> None:
    refs = await _order(app, "PL-ONCE")
    report = await _report(app, refs)
    record = await _settled(app, f"DiagnosticReport/{report['id']}/")
    hook = app.hooks.post_commit["hl7v2-results"]
    await hook(OutboxEvent(0, "DiagnosticReport", report["id"], 1, "create", datetime.now(UTC)))
    again = await _log(app, f"DiagnosticReport/{report['id']}/")
    assert [r["id"] for r in again] == [record["id"]]
    assert json.loads(json.dumps(again[0]))["state"] == "acknowledged"
