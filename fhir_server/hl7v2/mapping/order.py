"""ORC/OBR/TQ1/IPC/NTE/ZDS → ServiceRequest + Task (the IG's ORC[ServiceRequest] and
OBR[ServiceRequest] maps, plus the radiology fields and the Task of hl7v2.md §1.3, §1.5).

Status rule: a cancel/discontinue (ORC-1 CA, OC, DC, CR, DR, OD) makes the ServiceRequest
``revoked`` and the Task ``cancelled`` (we are the filler and carry the cancel out; the IG maps
CA to active because, for a placer, it is only a request); otherwise ORC-5 decides when valued
(OrderStatus map), else ORC-1 (OrderControlCode map, with our rows for CA/HD/XO). Identifiers:
placer (ORC-2, else OBR-2, type PLAC, the conditional key), filler (ORC-3/OBR-3, FILL), accession
(OBR-18 or IPC-1, ACSN), requested procedure (OBR-19/IPC-2), scheduled procedure step
(OBR-20/IPC-4) and the Study Instance UID (ZDS-1 or IPC-3, system ``urn:dicom:uid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from fhir_server.hl7v2.er7 import Message, Segment
from fhir_server.hl7v2.errors import DATA_TYPE_ERROR, REQUIRED_FIELD_MISSING, V2Error
from fhir_server.hl7v2.mapping.datatypes import (
    DICOM_UID,
    V2_0203,
    codeable_concept,
    identifier_ei,
)
from fhir_server.hl7v2.mapping.dates import dtm_to_fhir
from fhir_server.hl7v2.mapping.tables import V2Tables

CANCELS = frozenset({"CA", "OC", "DC", "CR", "DR", "OD"})
DCM = "http://dicom.nema.org/resources/ontology/DCM"
V2_0119 = "http://terminology.hl7.org/CodeSystem/v2-0119"
V2_0038 = "http://terminology.hl7.org/CodeSystem/v2-0038"
ORIGIN = "urn:fhir-server:origin"  # meta.tag code "hl7v2": the order came in over HL7 v2
SENDER = "urn:fhir-server:hl7v2-sender"  # meta.tag code "APP^FACILITY": who sent it
_ORDER_PARTS = frozenset({"OBR", "TQ1", "TQ2", "IPC", "NTE", "ZDS", "DG1", "OBX", "CTD"})


@dataclass
class Order:
    """One ORC with the segments that follow it up to the next ORC."""

    sequence: int
    orc: Segment
    obr: Segment | None = None
    tq1: Segment | None = None
    ipc: Segment | None = None
    zds: Segment | None = None
    notes: list[str] = field(default_factory=list)
    diagnoses: list[Segment] = field(default_factory=list)

    @property
    def control(self) -> str:
        return self.orc.get(1)

    def value(self, orc_field: int, obr_field: int, component: int = 0) -> str:
        """ORC field, else the OBR field (ORC-2/OBR-2, ORC-3/OBR-3, ORC-12/OBR-16…), escaped."""
        raw = self.orc.field(orc_field).split(self.orc.encoding.repetition)[0]
        if raw.split(self.orc.encoding.component)[0]:
            return raw
        if self.obr is None:
            return ""
        return self.obr.field(obr_field).split(self.obr.encoding.repetition)[0]


def orders(message: Message) -> list[Order]:
    found: list[Order] = []
    for segment in message.segments:
        if segment.name == "ORC":
            found.append(Order(len(found) + 1, segment))
        elif found and segment.name in _ORDER_PARTS:
            _attach(found[-1], segment)
    return found


def _attach(order: Order, segment: Segment) -> None:
    name = segment.name
    if name == "OBR" and order.obr is None:
        order.obr = segment
    elif name == "TQ1" and order.tq1 is None:
        order.tq1 = segment
    elif name == "IPC" and order.ipc is None:
        order.ipc = segment
    elif name == "ZDS" and order.zds is None:
        order.zds = segment
    elif name == "NTE":
        text = segment.get(3)
        if text:
            order.notes.append(text)
    elif name == "DG1":
        order.diagnoses.append(segment)


def placer_identifier(order: Order, fallback: str) -> dict[str, Any]:
    found = identifier_ei(order.value(2, 2), order.orc.encoding, "PLAC", fallback)
    if found is None:
        raise V2Error(
            "ORC", order.sequence, 2, 1, REQUIRED_FIELD_MISSING,
            message="no placer order number (ORC-2 or OBR-2)",
        )  # fmt: skip
    return found


def statuses(order: Order, tables: V2Tables) -> tuple[str, str]:
    """(ServiceRequest.status, Task.status) for this order (see the module docstring)."""
    control, status = order.control, order.orc.get(5)
    if control in CANCELS:
        return "revoked", "cancelled"
    if status:
        request = tables.code("order-status", status)
        task = tables.code("order-status-task", status)
        if request is None or task is None:
            raise V2Error(
                "ORC", order.sequence, 5, None, "103",
                message=f"order status {status!r} has no mapping (table 0038)",
            )  # fmt: skip
        return request, task
    request = tables.code("order-control-request", control) or tables.code("order-control", control)
    task = tables.code("order-control-task", control)
    if request is None or task is None:
        raise V2Error(
            "ORC", order.sequence, 1, None, "103",
            message=f"order control code {control!r} has no mapping (table 0119)",
        )  # fmt: skip
    return request, task


def _date(order: Order, segment: Segment | None, fld: int, comp: int, zone: tzinfo) -> str | None:
    if segment is None:
        return None
    value = segment.get(fld, 1, comp)
    if not value:
        return None
    try:
        return dtm_to_fhir(value, zone)
    except ValueError as exc:
        raise V2Error(
            segment.name, order.sequence, fld, comp if comp > 1 else None, DATA_TYPE_ERROR,
            message=f"{segment.name}-{fld}: {exc}",
        ) from None  # fmt: skip


def _radiology_identifiers(order: Order, fallback: str) -> list[dict[str, Any]]:
    obr, ipc, enc = order.obr, order.ipc, order.orc.encoding
    out: list[dict[str, Any]] = []
    accession = ipc.field(1) if ipc is not None and ipc.get(1, 1, 1) else ""
    if not accession and obr is not None:
        accession = obr.field(18)
    found = identifier_ei(accession, enc, "ACSN", fallback)
    if found is not None:
        out.append(found)
    for ipc_field, obr_field, text in ((2, 19, "Requested Procedure ID"),
                                       (4, 20, "Scheduled Procedure Step ID")):  # fmt: skip
        value = ipc.get(ipc_field, 1, 1) if ipc is not None else ""
        value = value or (obr.get(obr_field, 1, 1) if obr is not None else "")
        if value:
            out.append({"type": {"text": text}, "system": fallback, "value": value})
    uid = (ipc.get(3, 1, 1) if ipc is not None else "") or (
        order.zds.get(1, 1, 1) if order.zds is not None else ""
    )
    if uid:
        out.append({"type": {"text": "Study Instance UID"}, "system": DICOM_UID,
                    "value": f"urn:oid:{uid}"})  # fmt: skip
    return out


def _priority(order: Order, tables: V2Tables) -> str | None:
    candidates = [
        order.tq1.get(9, 1, 1) if order.tq1 is not None else "",
        order.orc.get(7, 1, 6),
        order.obr.get(27, 1, 6) if order.obr is not None else "",
        order.obr.get(5) if order.obr is not None else "",
    ]
    for code in candidates:
        if code:
            found = tables.code("priority", code)
            if found:
                return found
    return None


@dataclass(frozen=True, slots=True)
class OrderRefs:
    patient: str
    requester: dict[str, Any] | None
    encounter: str | None
    tags: list[dict[str, str]]


def service_request(
    order: Order, tables: V2Tables, fallback: str, zone: tzinfo, refs: OrderRefs
) -> dict[str, Any]:
    obr, enc = order.obr, order.orc.encoding
    status, _ = statuses(order, tables)
    identifiers = [placer_identifier(order, fallback)]
    filler = identifier_ei(order.value(3, 3), enc, "FILL", fallback)
    if filler is not None:
        identifiers.append(filler)
    identifiers.extend(_radiology_identifiers(order, fallback))
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "meta": {"tag": refs.tags},
        "identifier": identifiers,
        "status": status,
        "intent": "order",
        "subject": {"reference": refs.patient},
    }
    group = identifier_ei(order.orc.field(4), enc, "PGN", fallback)
    if group is not None:
        resource["requisition"] = group
    priority = _priority(order, tables)
    if priority:
        resource["priority"] = priority
    code = codeable_concept(obr.field(4), enc, tables) if obr is not None else None
    if code is not None:
        resource["code"] = code
    modality = (order.ipc.get(5, 1, 1) if order.ipc is not None else "") or (
        obr.get(24, 1, 1) if obr is not None else ""
    )
    if modality:
        resource["orderDetail"] = [{"coding": [{"system": DCM, "code": modality}]}]
    when = (
        _date(order, order.tq1, 7, 1, zone)
        or _date(order, order.orc, 7, 4, zone)
        or _date(order, obr, 27, 4, zone)
    )
    if when:
        resource["occurrenceDateTime"] = when
    authored = _date(order, order.orc, 9, 1, zone) or _date(order, obr, 6, 1, zone)
    if authored:
        resource["authoredOn"] = authored
    if refs.encounter:
        resource["encounter"] = {"reference": refs.encounter}
    if refs.requester:
        resource["requester"] = refs.requester
    reasons = [
        c
        for rep in (obr.repetitions(31) if obr else [])
        if (c := codeable_concept(rep, enc, tables))
    ]
    reasons += [c for dg1 in order.diagnoses if (c := codeable_concept(dg1.field(3), enc, tables))]
    if reasons:
        resource["reasonCode"] = reasons
    notes = list(order.notes)
    if obr is not None and obr.get(13):
        notes.insert(0, f"Relevant clinical information: {obr.get(13)}")
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def task(
    order: Order, tables: V2Tables, fallback: str, zone: tzinfo, refs: OrderRefs,
    request_ref: str, authored: str,
) -> dict[str, Any]:  # fmt: skip
    _, status = statuses(order, tables)
    placer = placer_identifier(order, fallback)
    business = [{"system": V2_0119, "code": order.control}]
    if order.orc.get(5):
        business.append({"system": V2_0038, "code": order.orc.get(5)})
    resource: dict[str, Any] = {
        "resourceType": "Task",
        "meta": {"tag": refs.tags},
        "identifier": [placer],
        "status": status,
        "businessStatus": {"coding": business},
        "intent": "order",
        "focus": {"reference": request_ref},
        "for": {"reference": refs.patient},
        "authoredOn": _date(order, order.orc, 9, 1, zone) or authored,
        "lastModified": authored,
    }
    priority = _priority(order, tables)
    if priority:
        resource["priority"] = priority
    if refs.requester:
        resource["requester"] = refs.requester
    if refs.encounter:
        resource["encounter"] = {"reference": refs.encounter}
    return resource


def origin_tags(application: str, facility: str) -> list[dict[str, str]]:
    return [
        {"system": ORIGIN, "code": "hl7v2", "display": "received over HL7 v2 (MLLP)"},
        {"system": SENDER, "code": f"{application}^{facility}"},
    ]


__all__ = ["V2_0203", "Order", "OrderRefs", "orders", "service_request", "statuses", "task"]
