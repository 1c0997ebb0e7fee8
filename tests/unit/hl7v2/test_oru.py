"""ORU^R01 builder: fields, escaping (read back by python-hl7), statuses, text and PDF."""

from __future__ import annotations

import base64
from typing import Any

import hl7
import pytest

from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.oru import OruParties, build_oru
from fhir_server.hl7v2.sender import AckError, parse_destination, read_ack

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
NASTY = "Mass 3|4 cm ^ see & compare ~ prior \\ note"
PDF = base64.b64encode(b"%PDF-1.4 fake but bytes").decode()


@pytest.fixture(scope="module")
def tables() -> V2Tables:
    return V2Tables.load()


def _request() -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [
            {"type": {"coding": [{"system": V2_0203, "code": "PLAC"}]},
             "system": "urn:fhir-server:hl7v2:RIS", "value": "A103Z"},
            {"type": {"coding": [{"system": V2_0203, "code": "FILL"}]},
             "system": "urn:oid:1.2.3", "value": "B103Z"},
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "24725-4",
                             "display": "CT Head"}]},
        "orderDetail": [{"coding": [{"code": "CT"}]}],
    }  # fmt: skip


def _report(status: str = "final", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": status,
        "effectiveDateTime": "2025-03-14T09:30:12+02:00",
        "issued": "2025-03-14T11:00:00.123Z",
        "conclusion": f"No acute findings.\n{NASTY}",
        **extra,
    }


def _build(tables: V2Tables, report: dict[str, Any]) -> str:
    patient = {
        "identifier": [{"system": "urn:fhir-server:hl7v2:RADHOSP", "value": "MR-1001",
                        "type": {"coding": [{"code": "MR"}]}}],
        "name": [{"family": "POPESCU", "given": ["ION"]}],
        "birthDate": "1965-02-12", "gender": "male",
    }  # fmt: skip
    interpreter = {"identifier": [{"value": "R-77"}], "name": [{"family": "Rad", "given": ["Ana"]}]}
    return build_oru(
        report, _request(), patient, interpreter, control_id="ORU123",
        timestamp="2025-03-14T11:00:01.000Z",
        parties=OruParties("FHIRSERVER", "", "RIS", "RADHOSP"), tables=tables,
    )  # fmt: skip


def test_fields(tables: V2Tables) -> None:
    raw = _build(tables, _report())
    message = parse(raw)
    assert message.message_type == "ORU^R01"
    assert message.version == "2.5.1"
    assert message.msh_control_id == "ORU123"
    assert message.get("MSH-5") == "RIS"
    assert message.get("MSH-6") == "RADHOSP"
    assert message.get("MSH-7") == "20250314110001.000+0000"
    assert message.get("PID-3.1") == "MR-1001"
    assert message.get("PID-3.4") == "RADHOSP"
    assert message.get("PID-5") == "POPESCU^ION"
    assert message.get("PID-7") == "19650212"
    assert message.get("PID-8") == "M"
    assert message.get("ORC-1") == "RE"
    assert message.get("OBR-2") == "A103Z^RIS"
    assert message.get("OBR-3") == "B103Z^1.2.3"
    assert message.get("OBR-4") == "24725-4^CT Head^LN"
    assert message.get("OBR-7") == "20250314093012+0200"
    assert message.get("OBR-22") == "20250314110000.123+0000"
    assert message.get("OBR-24") == "CT"
    assert message.get("OBR-25") == "F"
    assert message.get("OBR-32.1") == "R-77&Rad&Ana"
    assert [s.get(2) for s in message.all("OBX")] == ["TX", "TX"]


def test_escaping_read_back_by_python_hl7(tables: V2Tables) -> None:
    raw = _build(tables, _report())
    parsed = hl7.parse(raw)
    obx = parsed.segments("OBX")[1]
    assert len(obx[5]) == 1 and isinstance(obx[5][0], str)  # one repetition, one component
    assert parsed.unescape(str(obx[5])) == NASTY
    assert parse(raw).get("OBX[2]-5") == NASTY
    assert len(parsed.segments("OBX")) == 2


@pytest.mark.parametrize(
    ("status", "obr25"),
    [("final", "F"), ("amended", "C"), ("corrected", "C"), ("appended", "C")],
)
def test_result_status(tables: V2Tables, status: str, obr25: str) -> None:
    message = parse(_build(tables, _report(status)))
    assert message.get("OBR-25") == obr25
    assert {s.get(11) for s in message.all("OBX")} == {obr25}


def test_presented_forms(tables: V2Tables) -> None:
    text = base64.b64encode(f"FINDINGS:\n{NASTY}\nIMPRESSION: ok".encode()).decode()
    report = _report(
        conclusion="",
        presentedForm=[
            {"contentType": "text/plain; charset=utf-8", "data": text},
            {"contentType": "application/pdf", "data": PDF},
        ],
    )
    message = parse(_build(tables, report))
    ft, ed = message.all("OBX")
    assert ft.get(2) == "FT"
    assert ft.field(5).count("\\.br\\") == 2
    assert ft.get(5) == f"FINDINGS:\n{NASTY}\nIMPRESSION: ok"
    assert ed.get(2) == "ED"
    assert ed.get(5, 1, 2) == "application" and ed.get(5, 1, 3) == "pdf"
    assert ed.get(5, 1, 4) == "Base64"
    assert base64.b64decode(ed.get(5, 1, 5)) == b"%PDF-1.4 fake but bytes"


def test_read_ack() -> None:
    ok = "MSH|^~\\&|RIS|X|FHIRSERVER||20250101||ACK^R01^ACK|9|P|2.5.1\rMSA|AA|ORU123\r"
    assert read_ack(ok, "ORU123") == (True, None)
    bad = (
        "MSH|^~\\&|RIS|X|FHIRSERVER||20250101||ACK^R01^ACK|9|P|2.5.1\rMSA|AE|ORU123\r"
        "ERR||OBR^1^3|204^Unknown key identifier^HL70357|E||||no such order B103Z\r"
    )
    accepted, error = read_ack(bad, "ORU123")
    assert not accepted
    assert error == {"segment": "OBR", "field": 3, "code": "204", "text": "no such order B103Z"}
    old = "MSH|^~\\&|R|X|F||20250101||ACK|9|P|2.3.1\rMSA|AR|ORU123|rejected\rERR|PID^1^3^101\r"
    assert read_ack(old, "ORU123")[1] == {
        "segment": "PID", "field": 3, "code": "101", "text": "rejected",
    }  # fmt: skip
    with pytest.raises(AckError, match="answers"):
        read_ack(ok, "OTHER")
    with pytest.raises(AckError, match="MSA"):
        read_ack("MSH|^~\\&|R|X|F||20250101||ACK|9|P|2.3.1\r", "ORU123")


def test_parse_destination() -> None:
    assert parse_destination("ris=127.0.0.1:2576").port == 2576
    for bad in ("ris", "ris=host", "=h:1", "ris=h:x"):
        with pytest.raises(ValueError, match="NAME=host:port"):
            parse_destination(bad)
