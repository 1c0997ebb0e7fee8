"""PID → Patient (the IG's PID[Patient]) and PV1 → Encounter (PV1[Encounter]), as transaction
entries: both are conditional updates on their first identifier, so a resend or an order change
updates the same resources (names, birth date, sex, class) instead of creating new ones."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from fhir_server.hl7v2.er7 import Segment
from fhir_server.hl7v2.errors import DATA_TYPE_ERROR, REQUIRED_FIELD_MISSING, V2Error
from fhir_server.hl7v2.mapping.datatypes import (
    Parts,
    display_name,
    human_name,
    identifier_cx,
    practitioner_parts,
)
from fhir_server.hl7v2.mapping.dates import dtm_to_date, dtm_to_fhir
from fhir_server.hl7v2.mapping.tables import V2Tables

ENCOUNTER_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# PV1 field → Encounter.participant.type (IG PV1[Encounter]).
PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"),
                (17, "ADM", "admitter"))  # fmt: skip


def patient(
    pid: Segment, tables: V2Tables, systems: Any, fallback: str, organization: str | None
) -> dict[str, Any]:
    """The Patient of PID; its ``identifier[0]`` is the conditional key (the first PID-3)."""
    enc = pid.encoding
    identifiers = [
        found
        for rep in pid.repetitions(3)
        if (found := identifier_cx(rep, enc, systems, fallback, tables)) is not None
    ]
    if not identifiers:
        raise V2Error("PID", 1, 3, 1, REQUIRED_FIELD_MISSING, message="PID-3 has no identifier")
    resource: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers}
    names = [n for rep in pid.repetitions(5) if (n := human_name(rep, enc, tables))]
    if names:
        resource["name"] = names
    birth = pid.get(7, 1, 1)
    if birth:
        try:
            resource["birthDate"] = dtm_to_date(birth)
        except ValueError as exc:
            raise V2Error("PID", 1, 7, None, DATA_TYPE_ERROR, message=f"PID-7: {exc}") from None
    sex = pid.get(8)
    if sex:
        resource["gender"] = tables.code("administrative-sex", sex) or "unknown"
    address = _address(pid)
    if address:
        resource["address"] = address
    if organization:
        resource["managingOrganization"] = {"reference": organization}
    return resource


def _address(pid: Segment) -> list[dict[str, Any]]:
    out = []
    for rep in pid.repetitions(11):
        p = Parts(rep, pid.encoding)
        address: dict[str, Any] = {}
        lines = [line for line in (p.sub(1, 1), p[2]) if line]
        if lines:
            address["line"] = lines
        for n, key in ((3, "city"), (4, "state"), (5, "postalCode"), (6, "country")):
            if p[n]:
                address[key] = p[n].strip()
        if address:
            out.append(address)
    return out


def encounter(
    pv1: Segment,
    tables: V2Tables,
    systems: Any,
    fallback: str,
    zone: tzinfo,
    patient_ref: str,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(Encounter, its conditional identifier or None) of PV1: class PV1-2, identifier PV1-19
    (type VN), participants PV1-7/8/9/17, period PV1-44/45."""
    enc = pv1.encoding
    klass = tables.lookup("patient-class", pv1.get(2))
    coding = (
        {"system": klass["system"], "code": klass["code"]}
        if klass
        else {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}
    )
    if klass and klass.get("display"):
        coding["display"] = klass["display"]
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished" if pv1.get(45, 1, 1) else "in-progress",
        "class": coding,
        "subject": {"reference": patient_ref},
    }
    visit = identifier_cx(pv1.field(19).split(enc.repetition)[0], enc, systems, fallback, tables)
    if visit is not None:
        visit.setdefault(
            "type",
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "VN"}]},
        )
        resource["identifier"] = [visit]
    participants = []
    for field, code, display in PARTICIPANTS:
        for rep in pv1.repetitions(field):
            ident, name = practitioner_parts(rep, enc, tables, systems, fallback)
            individual: dict[str, Any] = {}
            if ident is not None:
                individual["identifier"] = ident
            if display_name(name):
                individual["display"] = display_name(name)
            if individual:
                participants.append(
                    {
                        "type": [
                            {
                                "coding": [
                                    {
                                        "system": ENCOUNTER_PARTICIPANT,
                                        "code": code,
                                        "display": display,
                                    }
                                ]
                            }
                        ],
                        "individual": individual,
                    }
                )
    if participants:
        resource["participant"] = participants
    period = {}
    for field, key in ((44, "start"), (45, "end")):
        value = pv1.get(field, 1, 1)
        if value:
            try:
                period[key] = dtm_to_fhir(value, zone)
            except ValueError as exc:
                raise V2Error("PV1", 1, field, None, DATA_TYPE_ERROR, message=str(exc)) from None
    if period:
        resource["period"] = period
    return resource, visit
