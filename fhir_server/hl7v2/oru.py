"""ORU^R01 (v2.5.1) from a DiagnosticReport, its ServiceRequest, Patient and interpreter.

FHIR R4's "HL7 v2 Mapping" columns (hl7v2.md §1.7), inverted: ORC-1 RE with ORC-2/3 and OBR-2/3
echoing the placer/filler numbers received (ServiceRequest identifiers PLAC/FILL); OBR-4 from
DiagnosticReport.code; OBR-7 effective; OBR-22 issued; OBR-24 the modality (ServiceRequest
orderDetail, DICOM) ; OBR-25 from the status (final → F; amended, corrected, appended → C:
table 0123 has no "amended", and its A means "some results available", not an addendum);
OBR-32 the interpreter (NDL: ``id&family&given``). Report text: the conclusion as OBX TX lines
(one OBX per line: TX is line-oriented), a text/plain presentedForm as one OBX FT whose line
breaks are ``\\.br\\``, an application/pdf presentedForm as OBX ED
(``^application^pdf^Base64^<data>``). Every value is escaped (``| ^ ~ \\ &``).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from fhir_server.hl7v2.er7 import DEFAULT_ENCODING, escape, serialize
from fhir_server.hl7v2.mapping.datatypes import LOCAL_SYSTEM, V2_0203
from fhir_server.hl7v2.mapping.dates import fhir_to_dtm
from fhir_server.hl7v2.mapping.tables import V2Tables

VERSION = "2.5.1"
NARRATIVE = "18782-3^Radiology Study observation (narrative)^LN"
REPORT = "18748-4^Diagnostic imaging study^LN"
SEX = {"female": "F", "male": "M", "other": "O", "unknown": "U"}
SYSTEM_NAMES = {
    "http://loinc.org": "LN",
    "http://snomed.info/sct": "SCT",
    "http://www.ama-assn.org/go/cpt": "CPT4",
    "http://hl7.org/fhir/sid/icd-10": "I10",
    "http://dicom.nema.org/resources/ontology/DCM": "DCM",
    "http://www.radlex.org": "RADLEX",
}


@dataclass(frozen=True, slots=True)
class OruParties:
    """MSH-3/4 (us) and MSH-5/6 (the RIS: the order's sender)."""

    sending_application: str = "FHIRSERVER"
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""


def e(text: Any) -> str:
    return escape(str(text), DEFAULT_ENCODING, line_breaks=False)


def build_oru(
    report: dict[str, Any],
    request: dict[str, Any] | None,
    patient: dict[str, Any] | None,
    interpreter: dict[str, Any] | None,
    *,
    control_id: str,
    timestamp: str,
    parties: OruParties,
    tables: V2Tables,
) -> str:
    """The ER7 text (segments end with ``\\r``). ``timestamp``: a FHIR instant for MSH-7."""
    status = tables.code("result-status-out", str(report.get("status", ""))) or "F"
    msh = ["MSH", e(parties.sending_application), e(parties.sending_facility),
           e(parties.receiving_application), e(parties.receiving_facility),
           fhir_to_dtm(timestamp), "", "ORU^R01^ORU_R01", e(control_id), "P", VERSION]  # fmt: skip
    segments = [msh, _pid(patient or {})]
    placer = _order_number(request, "PLAC")
    filler = _order_number(request, "FILL")
    segments.append(["ORC", "RE", placer, filler, "", "CM"])
    obr = [""] * 33
    obr[0], obr[1], obr[2], obr[3] = "OBR", "1", placer, filler
    obr[4] = _coded(report.get("code")) or _coded((request or {}).get("code")) or REPORT
    effective = report.get("effectiveDateTime") or (report.get("effectivePeriod") or {}).get(
        "start"
    )
    if effective:
        obr[7] = fhir_to_dtm(str(effective))
    if report.get("issued"):
        obr[22] = fhir_to_dtm(str(report["issued"]))
    obr[24] = _modality(request)
    obr[25] = status
    obr[32] = _interpreter(interpreter)
    segments.append(obr)
    segments.extend(_observations(report, status))
    return serialize(segments, DEFAULT_ENCODING)


def _pid(patient: dict[str, Any]) -> list[str]:
    cx = []
    for ident in patient.get("identifier", []):
        if not ident.get("value"):
            continue
        kind = next((c.get("code", "") for c in ident.get("type", {}).get("coding", [])), "")
        cx.append("^".join([e(ident["value"]), "", "", e(_namespace(ident.get("system"))),
                            e(kind)]).rstrip("^"))  # fmt: skip
    names = []
    for name in patient.get("name", [])[:1]:
        given = name.get("given", [])
        names.append("^".join([e(name.get("family", "")), *(e(g) for g in given[:2])]))
    birth = str(patient.get("birthDate", "")).replace("-", "")
    sex = SEX.get(str(patient.get("gender", "")), "")
    return ["PID", "1", "", "~".join(cx), "", "~".join(names), "", birth, sex]


def _namespace(system: Any) -> str:
    """The assigning authority to echo: our local URN's namespace, an OID, else the URI."""
    text = str(system or "")
    if text.startswith(LOCAL_SYSTEM + ":"):
        return text[len(LOCAL_SYSTEM) + 1 :].split(".")[0]
    return text.removeprefix("urn:oid:")


def _order_number(request: dict[str, Any] | None, kind: str) -> str:
    for ident in (request or {}).get("identifier", []):
        codes = [(c.get("system"), c.get("code")) for c in ident.get("type", {}).get("coding", [])]
        if (V2_0203, kind) in codes and ident.get("value"):
            namespace = _namespace(ident.get("system"))
            return e(ident["value"]) + (f"^{e(namespace)}" if namespace else "")
    return ""


def _coded(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    for coding in concept.get("coding", []):
        if coding.get("code"):
            system = SYSTEM_NAMES.get(
                str(coding.get("system", "")), "L" if coding.get("system") else ""
            )
            return "^".join([e(coding["code"]), e(coding.get("display", concept.get("text", ""))),
                             system]).rstrip("^")  # fmt: skip
    return f"^{e(concept['text'])}" if concept.get("text") else ""


def _modality(request: dict[str, Any] | None) -> str:
    for detail in (request or {}).get("orderDetail", []):
        for coding in detail.get("coding", []):
            if coding.get("code"):
                return e(coding["code"])
    return ""


def _interpreter(practitioner: dict[str, Any] | None) -> str:
    if not practitioner:
        return ""
    ident = next((i.get("value", "") for i in practitioner.get("identifier", [])), "")
    name = (practitioner.get("name") or [{}])[0]
    given = name.get("given", [])
    parts = [ident, name.get("family", ""), given[0] if given else ""]
    return "&".join(e(p) for p in parts).rstrip("&")


def _observations(report: dict[str, Any], status: str) -> list[list[str]]:
    out: list[list[str]] = []

    def obx(kind: str, code: str, value: str) -> None:
        out.append(["OBX", str(len(out) + 1), kind, code, "", value, "", "", "", "", "", status])

    conclusion = str(report.get("conclusion", ""))
    for line in conclusion.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            obx("TX", "19005-8^Radiology Imaging study [Impression] (narrative)^LN", e(line))
    for form in report.get("presentedForm", []):
        kind = str(form.get("contentType", "")).split(";")[0].strip().lower()
        data = str(form.get("data", ""))
        if kind == "application/pdf" and data:
            obx("ED", NARRATIVE, f"^application^pdf^Base64^{e(data)}")
        elif kind.startswith("text/") and data:
            try:
                text = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                continue
            obx("FT", NARRATIVE, escape(text, DEFAULT_ENCODING, line_breaks=True))
    return out
