"""RO-24 / CN-4.1.4 on the HL7 v2 door: with authorization on, every message exchanged over MLLP
is audited like a DICOM exchange (PS3.15 A.5.3) — a received order an "Import" (DCM 110107) with
the sender (MSH-3|MSH-4 and its --hl7-sender Organization) as agent, a result delivered to the
RIS an "Export" (110106); the message entity carries MSH-10, MSH-9 and the acknowledgment code.
With --auth off nothing is audited."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fhir_server.bootstrap import Application
from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from tests.conftest import free_port, running_application
from tests.hl7v2.conftest import exchange, order, segments
from tests.hl7v2.test_results_oru import Ris, _order, _report, _settled

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SENDER = "RIS^CITYHOSP=Organization/city;destination=ris"


async def hl7_events(app: Application) -> list[dict[str, Any]]:
    await app.audit.flush()
    found = await app.service.search_type(
        RequestContext(), "AuditEvent", [("subtype", "urn:fhir-server:audit:hl7v2|HL7-IMPORT,"
                                                     "urn:fhir-server:audit:hl7v2|HL7-EXPORT")]
    )  # fmt: skip
    return [e["resource"] for e in fhirjson.loads(fhirjson.dumps(found)).get("entry", [])]


def message_of(event: dict[str, Any]) -> tuple[str, dict[str, str]]:
    [entity] = [e for e in event["entity"] if e.get("type", {}).get("code") == "2"]
    details = {d["type"]: d["valueString"] for d in entity.get("detail", [])}
    return entity["what"]["identifier"]["value"], details


async def test_ro24_received_messages_are_audited_as_imports(tmp_path: Path) -> None:
    async with running_application(
        tmp_path / "d", auth="smart", mllp_port=free_port(), hl7_senders=(SENDER,)
    ) as app:  # fmt: skip
        assert app.mllp is not None
        acks = await exchange(
            app.mllp.port, order("AUD-1"), order("AUD-2", app="EVIL", facility="NOWHERE")
        )
        assert [segments(a)["MSA"][1] for a in acks] == ["AA", "AR"]
        events = {message_of(e)[0]: e for e in await hl7_events(app)}
    accepted, refused = events["AUD-1"], events["AUD-2"]
    assert accepted["type"] == {"system": DCM, "code": "110107", "display": "Import"}
    assert accepted["action"] == "C" and accepted["outcome"] == "0"
    assert message_of(accepted)[1] == {"MessageType": "ORM^O01", "Acknowledgment": "AA"}
    [peer] = [a for a in accepted["agent"] if a["requestor"]]
    assert peer["altId"] == "RIS|CITYHOSP"
    assert peer["who"]["reference"].endswith("/Organization/city")
    assert peer["network"] == {"address": "127.0.0.1", "type": "2"}
    assert refused["outcome"] == "4" and message_of(refused)[1]["Acknowledgment"] == "AR"
    [stranger] = [a for a in refused["agent"] if a["requestor"]]
    assert stranger["altId"] == "EVIL|NOWHERE" and "reference" not in stranger["who"]


async def test_ro24_results_delivered_are_audited_as_exports(tmp_path: Path) -> None:
    ris = Ris(free_port())
    await ris.start()
    try:
        async with running_application(
            tmp_path / "d", auth="smart", hl7_senders=(SENDER,),
            hl7_destinations=(f"ris=127.0.0.1:{ris.port}",), hl7_ack_timeout=2.0,
        ) as app:  # fmt: skip
            refs = await _order(app, "PL-AUDIT")
            report = await _report(app, refs)
            record = await _settled(app, f"DiagnosticReport/{report['id']}/")
            assert record["state"] == "acknowledged"
            for _ in range(50):
                events = await hl7_events(app)
                if events:
                    break
                await asyncio.sleep(0.1)
    finally:
        await ris.stop()
    [export] = events
    assert export["type"]["code"] == "110106" and export["action"] == "R"
    assert export["outcome"] == "0"
    assert message_of(export) == (
        record["control_id"],
        {"MessageType": "ORU^R01", "Acknowledgment": "AA"},
    )
    [peer] = [a for a in export["agent"] if a["requestor"]]
    assert peer["altId"] == "ris" and peer["network"]["address"] == f"127.0.0.1:{ris.port}"


async def test_with_auth_off_hl7_messages_are_not_audited(tmp_path: Path) -> None:
    async with running_application(tmp_path / "d", mllp_port=free_port()) as app:
        assert app.mllp is not None
        await exchange(app.mllp.port, order("AUD-OFF"))
        assert await hl7_events(app) == []
