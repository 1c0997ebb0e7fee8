"""Modality Worklist items from scheduled FHIR orders (PS3.4 K, the note's §3.4 table).

Which orders are on the worklist: a ServiceRequest with ``status`` active and an order
``intent`` (order, original-order, reflex-order, filler-order, instance-order) with a DCM
modality in ``code`` (the teleradiology request profile) or ``orderDetail`` (HL7 v2 orders). The
worklist is the acquisition side at the beneficiary, so the order's own status decides, not the
reading Task (which is about the report and may not exist before the images). Mapping:

| Worklist attribute | ServiceRequest |
|---|---|
| PatientName, PatientID (+ IssuerOfPatientID), PatientBirthDate, PatientSex | subject Patient |
| AccessionNumber | identifier with type v2-0203#ACSN |
| RequestedProcedureID | identifier typed "Requested Procedure ID" (the HL7 v2 order mapping), else
  v2-0203#FILL, else the accession number |
| StudyInstanceUID | identifier ``urn:dicom:uid`` (pre-assigned), else a stable 2.25 UID |
| RequestedProcedureDescription, RequestedProcedureCodeSequence | code |
| RequestedProcedurePriority | priority: stat → STAT, urgent/asap → HIGH, routine → ROUTINE |
| ReferringPhysicianName | requester.display |
| SPS > Modality | code.coding or orderDetail.coding with system DCM |
| SPS > ScheduledStationAETitle | locationCode / performer.identifier with system ``urn:dicom:ae`` |
| SPS > SPS Start Date/Time | occurrenceDateTime or occurrencePeriod.start (local time as written) |
| SPS > ScheduledProcedureStepID | identifier typed "Scheduled Procedure Step ID", else the id |
| SPS > SPS Description | code text or display |

Matching (PS3.4 C.2.2.2): every non-empty key of the request, at the top level and in the first
Scheduled Procedure Step item, must match the item: single value (person names
case-insensitively), ``*``/``?`` wildcards, date/time ranges ``a-b``, UID lists ``\\``. Answers
carry only the requested keys, with SpecificCharacterSet ISO_IR 192 when a value is not ASCII.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fhir_server.core.context import RequestContext
from fhir_server.interactions.service import FhirService

DCM = "http://dicom.nema.org/resources/ontology/DCM"
AE_SYSTEM = "urn:dicom:ae"
UID_SYSTEM = "urn:dicom:uid"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ORDER_INTENTS = "order,original-order,reflex-order,filler-order,instance-order"
PRIORITY = {"stat": "STAT", "urgent": "HIGH", "asap": "HIGH", "routine": "ROUTINE"}
SEX = {"male": "M", "female": "F", "other": "O"}
SCHEMES = {DCM: "DCM", "http://snomed.info/sct": "SCT", "http://loinc.org": "LN"}
PAGE = "200"


async def scheduled_items(
    service: FhirService, ctx: RequestContext, request: Dataset
) -> list[Dataset]:
    """The worklist items matching the C-FIND request identifier (full items, unrestricted)."""
    params = [("status", "active"), ("intent", ORDER_INTENTS)]
    params += [("_include", "ServiceRequest:subject"), ("_count", PAGE)]
    params += _date_prefilter(_step(request))
    items: list[Dataset] = []
    while True:
        bundle = await service.search_type(ctx, "ServiceRequest", params)
        decoded = orjson.loads(orjson.dumps(bundle))  # entries hold the stored bytes (Fragments)
        entries = [entry["resource"] for entry in decoded.get("entry", [])]
        patients = {f"Patient/{r['id']}": r for r in entries if r["resourceType"] == "Patient"}
        for order in entries:
            if order["resourceType"] != "ServiceRequest" or not _modalities(order):
                continue
            subject = order.get("subject", {}).get("reference", "")
            item = worklist_item(order, patients.get(subject))
            if matches(item, request):
                items.append(item)
        following = [link["url"] for link in bundle.get("link", []) if link["relation"] == "next"]
        if not following:
            return items
        params = parse_qsl(urlsplit(following[0]).query)


def worklist_item(order: dict[str, Any], patient: dict[str, Any] | None) -> Dataset:
    """One Modality Worklist item for a ServiceRequest and its subject Patient."""
    item = Dataset()
    if patient is not None:
        _patient(item, patient)
    accession = _identifier(order, "ACSN")
    item.AccessionNumber = accession or ""
    requested = _by_text(order, "Requested Procedure ID") or _identifier(order, "FILL")
    item.RequestedProcedureID = (requested or accession or order["id"])[:16]
    item.StudyInstanceUID = _study_uid(order)
    code = order.get("code", {})
    description = code.get("text") or next(
        (c.get("display") for c in code.get("coding", []) if c.get("display")), ""
    )
    item.RequestedProcedureDescription = description[:64]
    item.RequestedProcedureCodeSequence = Sequence(
        [_code_item(c) for c in code.get("coding", []) if c.get("code")]
    )
    item.RequestedProcedurePriority = PRIORITY.get(order.get("priority", "routine"), "ROUTINE")
    item.ReferringPhysicianName = order.get("requester", {}).get("display", "")
    step = Dataset()
    step.Modality = _modalities(order)[0]
    step.ScheduledStationAETitle = _station(order)
    start_date, start_time = _occurrence(order)
    step.ScheduledProcedureStepStartDate = start_date
    step.ScheduledProcedureStepStartTime = start_time
    step_id = _by_text(order, "Scheduled Procedure Step ID") or order["id"]
    step.ScheduledProcedureStepID = step_id[:16]
    step.ScheduledProcedureStepDescription = description[:64]
    step.ScheduledProcedureStepStatus = "SCHEDULED"
    item.ScheduledProcedureStepSequence = Sequence([step])
    return item


def answer(item: Dataset, request: Dataset) -> Dataset:
    """The item restricted to the keys the request asked for (PS3.4 C.2.2.1.2)."""
    response = restrict(item, request)
    if any(not str(value).isascii() for value in _values(response)):
        response.SpecificCharacterSet = "ISO_IR 192"
    elif "SpecificCharacterSet" in request:
        response.SpecificCharacterSet = request.SpecificCharacterSet
    return response


def restrict(source: Dataset, request: Dataset) -> Dataset:
    """A dataset with exactly the request's attributes, valued from ``source`` (empty if absent);
    sequences are restricted item by item against the request's first item."""
    out = Dataset()
    for element in request:
        keyword = element.keyword
        if not keyword or keyword == "SpecificCharacterSet":
            continue
        if element.VR == "SQ":
            template = element.value[0] if element.value else Dataset()
            items = source.get(keyword, []) if keyword in source else []
            setattr(out, keyword, Sequence([restrict(i, template) for i in items]))
        else:
            setattr(out, keyword, source.get(keyword, "") if keyword in source else "")
    return out


def matches(item: Dataset, request: Dataset) -> bool:
    """Whether every non-empty key of the request matches the item (top level and first SPS)."""
    if not _matches_level(item, request):
        return False
    wanted = _step(request)
    steps = item.get("ScheduledProcedureStepSequence", [])
    return wanted is None or any(_matches_level(step, wanted) for step in steps)


def match_value(value: str, pattern: str, vr: str) -> bool:
    """PS3.4 C.2.2.2 matching of one attribute value against one key value."""
    if pattern in ("", "*"):
        return True
    if vr in ("DA", "TM", "DT") and "-" in pattern:
        low, _, high = pattern.partition("-")
        size = len(value)
        return bool(value) and (not low or value >= low[:size]) and (not high or value <= high)
    if vr == "UI":
        return value in pattern.split("\\")
    if vr == "PN":
        value, pattern = value.casefold(), pattern.casefold()
    if "*" in pattern or "?" in pattern:
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
        return re.fullmatch(regex, value, re.DOTALL) is not None
    return value == pattern


def _matches_level(item: Dataset, request: Dataset) -> bool:
    for element in request:
        if element.VR == "SQ" or not element.keyword or element.keyword == "SpecificCharacterSet":
            continue
        pattern = "" if element.value is None else str(element.value)
        if not pattern:
            continue
        if element.keyword not in item:
            return False
        if not match_value(str(item[element.keyword].value), pattern, element.VR):
            return False
    return True


def _step(request: Dataset) -> Dataset | None:
    steps = request.get("ScheduledProcedureStepSequence")
    return steps[0] if steps else None


def _date_prefilter(step: Dataset | None) -> list[tuple[str, str]]:
    """Coarse ``occurrence`` bounds (a day wider either side) so the store narrows the search;
    the exact match is :func:`matches`."""
    pattern = str(step.get("ScheduledProcedureStepStartDate", "") or "") if step else ""
    if not re.fullmatch(r"(\d{8})?-?(\d{8})?", pattern) or not pattern.strip("-"):
        return []
    low, dash, high = pattern.partition("-")
    if not dash:
        high = low
    params = []
    if low:
        params.append(("occurrence", f"ge{_iso(low, -1)}"))
    if high:
        params.append(("occurrence", f"le{_iso(high, 1)}"))
    return params


def _iso(dicom_date: str, days: int) -> str:
    moment = date(int(dicom_date[:4]), int(dicom_date[4:6]), int(dicom_date[6:8]))
    return (moment + timedelta(days=days)).isoformat()


def _patient(item: Dataset, patient: dict[str, Any]) -> None:
    names = patient.get("name", [])
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(name.get("given", []))
    item.PatientName = f"{name.get('family', '')}^{given}".rstrip("^") if name else ""
    identifiers = patient.get("identifier", [])
    chosen = next(
        (i for i in identifiers if _typed(i, "MR")), identifiers[0] if identifiers else {}
    )
    item.PatientID = chosen.get("value", "")[:64]
    if chosen.get("system"):
        item.IssuerOfPatientID = chosen["system"][:64]
    item.PatientBirthDate = patient.get("birthDate", "").replace("-", "")[:8]
    item.PatientSex = SEX.get(patient.get("gender", ""), "")


def _typed(identifier: dict[str, Any], code: str) -> bool:
    codings = identifier.get("type", {}).get("coding", [])
    return any(c.get("system") == V2_0203 and c.get("code") == code for c in codings)


def _identifier(order: dict[str, Any], code: str) -> str | None:
    for identifier in order.get("identifier", []):
        if _typed(identifier, code) and identifier.get("value"):
            return str(identifier["value"])[:16]
    return None


def _by_text(order: dict[str, Any], text: str) -> str | None:
    """An identifier typed by text, as the HL7 v2 order mapping writes OBR-19/OBR-20/IPC."""
    for identifier in order.get("identifier", []):
        if identifier.get("type", {}).get("text") == text and identifier.get("value"):
            return str(identifier["value"])
    return None


def _study_uid(order: dict[str, Any]) -> str:
    for identifier in order.get("identifier", []):
        value = str(identifier.get("value", ""))
        if identifier.get("system") == UID_SYSTEM and value.startswith("urn:oid:"):
            return value.removeprefix("urn:oid:")
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'ServiceRequest/' + order['id']).int}"


def _modalities(order: dict[str, Any]) -> list[str]:
    concepts = [order.get("code", {}), *order.get("orderDetail", [])]
    codings = [c for concept in concepts for c in concept.get("coding", [])]
    return [str(c["code"]) for c in codings if c.get("system") == DCM and c.get("code")]


def _station(order: dict[str, Any]) -> str:
    codings = [c for concept in order.get("locationCode", []) for c in concept.get("coding", [])]
    codings += [p.get("identifier", {}) for p in order.get("performer", [])]
    for coding in codings:
        if coding.get("system") == AE_SYSTEM and (coding.get("code") or coding.get("value")):
            return str(coding.get("code") or coding.get("value"))[:16]
    return ""


def _occurrence(order: dict[str, Any]) -> tuple[str, str]:
    when = order.get("occurrenceDateTime") or order.get("occurrencePeriod", {}).get("start", "")
    date = when[:10].replace("-", "")
    time = when[11:19].replace(":", "") if len(when) > 10 else ""
    return date, time


def _code_item(coding: dict[str, Any]) -> Dataset:
    code = Dataset()
    code.CodeValue = str(coding["code"])[:16]
    code.CodingSchemeDesignator = SCHEMES.get(coding.get("system", ""), "99LOCAL")
    code.CodeMeaning = str(coding.get("display", coding["code"]))[:64]
    return code


def _values(dataset: Dataset) -> Iterable[Any]:
    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                yield from _values(item)
        elif element.value is not None:
            yield element.value
