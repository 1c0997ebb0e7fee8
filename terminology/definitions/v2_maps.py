"""The HL7 v2 ↔ FHIR vocabulary maps as ConceptMaps, from mappings/v2-to-fhir/*.json.

The same facts the HL7 v2 mapping uses (fhir_server/hl7v2/mapping/tables.py reads the JSON), so
$translate answers what the server does: ORC-1/ORC-5 → ServiceRequest.status and Task.status
(the IG's OrderControlCode map with the project's filler overrides applied), priority, sex,
patient class, name type, and DiagnosticReport.status → OBR-25 for ORU^R01.
"""

import json

from common import OUT, header

TABLES = OUT.parent / "mappings" / "v2-to-fhir"
THO_CS = "http://terminology.hl7.org/CodeSystem/v2-"
THO_VS = "http://terminology.hl7.org/ValueSet/v2-"
IG = (
    "HL7 Version 2 to FHIR IG (hl7.fhir.uv.v2mappings STU1, HL7/v2-to-fhir @ 8c9b414, "
    "Apache-2.0 / CC0-1.0)"
)
V2_LICENCE = (
    "HL7 v2 tables: HL7 Terminology (THO), CC0. Maps derived from the HL7 Version 2 to FHIR "
    "Implementation Guide (Apache-2.0 repository, CC0-1.0 IG); the project's rows CC0 1.0."
)


def _load(name):
    return json.loads((TABLES / f"{name}.json").read_text(encoding="utf-8"))


def _map(rid, name, title, table, source_vs, target_system, target_vs, rows, rules, note):
    cm = header(
        "ConceptMap", rid, name, title,
        f"{title}: HL7 v2 table {table} → {target_system}. {note} Source: "
        f"mappings/v2-to-fhir/ ({IG}). Rules: {rules}.",
        V2_LICENCE,
    )  # fmt: skip
    cm["sourceUri"] = source_vs
    cm["targetUri"] = target_vs
    elements = []
    for code in sorted(rows):
        row = rows[code]
        target = {"code": row["code"], "equivalence": "equivalent"}
        if row.get("display"):
            target["display"] = row["display"]
        elements.append({"code": code, "target": [target]})
    cm["group"] = [{"source": source_vs.replace("/ValueSet/", "/CodeSystem/"),
                    "target": target_system, "element": elements}]  # fmt: skip
    return cm


def _inbound(rid, name, title, table_name, target_system, target_vs, rules, note, overrides=None):
    table = _load(table_name)
    rows = {
        c: r for c, r in table["map"].items() if r.get("system", target_system) == target_system
    }
    for code, row in (overrides or {}).items():
        rows[code] = row
    return _map(
        rid, name, title, table["v2_table"], THO_VS + table["v2_table"], target_system, target_vs,
        rows, rules, note,
    )  # fmt: skip


REQUEST_STATUS = "http://hl7.org/fhir/request-status"
TASK_STATUS = "http://hl7.org/fhir/task-status"
REPORT_STATUS = "http://hl7.org/fhir/diagnostic-report-status"
ORDER_RULES = "RO-2, RO-3 (the order from the beneficiary's RIS or HIS)"

_report_out = _load("result-status-out")
report_status_to_v2 = _map(
    "v2-report-status-to-result-status", "V2ReportStatusToResultStatus",
    "DiagnosticReport status to HL7 v2 result status (OBR-25)", "0123",
    "http://hl7.org/fhir/ValueSet/diagnostic-report-status", THO_CS + "0123", THO_VS + "0123",
    {c: {"code": r["code"]} for c, r in _report_out["map"].items()},
    "RO-18, RO-19 (reports and their addenda sent back with receipt confirmation)",
    "Amended, corrected and appended all send C: table 0123 has no amended, and its A means "
    "some results available, not an addendum.",
)  # fmt: skip
report_status_to_v2["group"][0]["source"] = REPORT_STATUS

V2_CONCEPTMAPS = [
    _inbound(
        "v2-order-control-to-request-status",
        "V2OrderControlToRequestStatus",
        "HL7 v2 order control (ORC-1) to ServiceRequest status",
        "order-control",
        REQUEST_STATUS,
        "http://hl7.org/fhir/ValueSet/request-status",
        ORDER_RULES,
        "The IG's map with the project's filler rows applied (CA revoked, HD on-hold, XO "
        "active); used when ORC-5 is empty, except that a cancel or discontinue always revokes.",
        overrides=_load("order-control-request")["map"],
    ),
    _inbound(
        "v2-order-status-to-request-status",
        "V2OrderStatusToRequestStatus",
        "HL7 v2 order status (ORC-5) to ServiceRequest status",
        "order-status",
        REQUEST_STATUS,
        "http://hl7.org/fhir/ValueSet/request-status",
        ORDER_RULES,
        "The IG's OrderStatus map.",
    ),
    _inbound(
        "v2-order-control-to-task-status",
        "V2OrderControlToTaskStatus",
        "HL7 v2 order control (ORC-1) to Task status",
        "order-control-task",
        TASK_STATUS,
        "http://hl7.org/fhir/ValueSet/task-status",
        ORDER_RULES,
        "The project's map for the Task of an order we fulfil (the IG has none).",
    ),
    _inbound(
        "v2-order-status-to-task-status",
        "V2OrderStatusToTaskStatus",
        "HL7 v2 order status (ORC-5) to Task status",
        "order-status-task",
        TASK_STATUS,
        "http://hl7.org/fhir/ValueSet/task-status",
        ORDER_RULES,
        "The project's map (the IG has none); used for ORC-1 SC.",
    ),
    _inbound(
        "v2-priority-to-request-priority",
        "V2PriorityToRequestPriority",
        "HL7 v2 priority to ServiceRequest priority",
        "priority",
        "http://hl7.org/fhir/request-priority",
        "http://hl7.org/fhir/ValueSet/request-priority",
        "RO-13, RO-20 (urgent requests)",
        "The IG's ExtendedPriorityCodes map (TQ1-9, ORC-7.6, OBR-27.6, OBR-5).",
    ),
    _inbound(
        "v2-administrative-sex-to-gender",
        "V2AdministrativeSexToGender",
        "HL7 v2 administrative sex (PID-8) to Patient gender",
        "administrative-sex",
        "http://hl7.org/fhir/administrative-gender",
        "http://hl7.org/fhir/ValueSet/administrative-gender",
        "CN-4.3.1 (patient identity)",
        "The IG's AdministrativeSex map.",
    ),
    _inbound(
        "v2-patient-class-to-encounter-class",
        "V2PatientClassToEncounterClass",
        "HL7 v2 patient class (PV1-2) to Encounter class",
        "patient-class",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "http://terminology.hl7.org/ValueSet/v3-ActEncounterCode",
        ORDER_RULES,
        "The IG's PatientClass[EncounterClass] map (rows with a v3-ActCode target).",
    ),
    report_status_to_v2,
]
