"""Write the JSON tables of this folder from the HL7 v2-to-FHIR IG's vocabulary CSVs.

    .venv/bin/python mappings/v2-to-fhir/build.py [IG_MAPPINGS_DIR]   # default: the shared copy
    .venv/bin/python mappings/v2-to-fhir/build.py --check            # exit 1 if out of date

Each IG table keeps only the rows with a FHIR target (code, display, system). The tables marked
``"source": "project"`` are not in the IG (order control → Task.status, table 0396 coding
systems, FHIR → v2 result status for ORU^R01) and are written from the literals below.
Build-time only: the server reads the JSON (fhir_server/hl7v2/mapping/tables.py).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_IG = Path("/work/shared/data/hl7-v2-to-fhir/mappings")
IG = "HL7 Version 2 to FHIR IG (hl7.fhir.uv.v2mappings) STU1, repository HL7/v2-to-fhir"
COMMIT = "8c9b414be1729c98988b17e7fa86221fc8018c73"
LICENCE = "Apache-2.0 (repository) / CC0-1.0 (IG); derived, rows without a FHIR target dropped"

IG_TABLES = {
    "administrative-sex": ("AdministrativeSex", "0001"),
    "order-control": ("OrderControlCode[ServiceRequest.status]", "0119"),
    "order-status": ("OrderStatus", "0038"),
    "result-status": ("ResultStatus[Non-Queries]", "0123"),
    "name-type": ("NameType", "0200"),
    "identifier-type": ("IdentifierType", "0203"),
    "patient-class": ("PatientClass[EncounterClass]", "0004"),
    "priority": ("ExtendedPriorityCodes", "0485"),
}

TASK = "http://hl7.org/fhir/task-status"
PROJECT_TABLES: dict[str, dict[str, object]] = {
    "order-control-task": {
        "description": "ORC-1 (table 0119) → Task.status for a filler's Task (hl7v2.md §1.3 "
        "proposal); SC takes the status from ORC-5 (order-status-task)",
        "v2_table": "0119",
        "map": {
            "NW": {"code": "requested", "system": TASK, "display": "Requested"},
            "XO": {"code": "requested", "system": TASK, "display": "Requested"},
            "CA": {"code": "cancelled", "system": TASK, "display": "Cancelled"},
            "OC": {"code": "cancelled", "system": TASK, "display": "Cancelled"},
            "CR": {"code": "cancelled", "system": TASK, "display": "Cancelled"},
            "DC": {"code": "cancelled", "system": TASK, "display": "Cancelled"},
            "DR": {"code": "cancelled", "system": TASK, "display": "Cancelled"},
            "OD": {"code": "cancelled", "system": TASK, "display": "Cancelled"},
            "HD": {"code": "on-hold", "system": TASK, "display": "On Hold"},
            "RL": {"code": "requested", "system": TASK, "display": "Requested"},
        },
    },
    "order-control-request": {
        "description": "ORC-1 → ServiceRequest.status where the IG leaves it unmapped or maps a "
        "cancel *request* to active: as the filler we carry out the cancel/hold at once, so CA "
        "→ revoked, HD → on-hold; XO keeps active (hl7v2.md §1.3 proposal)",
        "v2_table": "0119",
        "map": {
            "CA": {"code": "revoked", "system": "http://hl7.org/fhir/request-status"},
            "HD": {"code": "on-hold", "system": "http://hl7.org/fhir/request-status"},
            "XO": {"code": "active", "system": "http://hl7.org/fhir/request-status"},
        },
    },
    "order-status-task": {
        "description": "ORC-5 (table 0038) → Task.status (hl7v2.md §1.3 proposal)",
        "v2_table": "0038",
        "map": {
            "A": {"code": "in-progress", "system": TASK},
            "CA": {"code": "cancelled", "system": TASK},
            "CM": {"code": "completed", "system": TASK},
            "DC": {"code": "cancelled", "system": TASK},
            "ER": {"code": "entered-in-error", "system": TASK},
            "HD": {"code": "on-hold", "system": TASK},
            "IP": {"code": "in-progress", "system": TASK},
            "RP": {"code": "cancelled", "system": TASK},
            "SC": {"code": "accepted", "system": TASK},
        },
    },
    "coding-system": {
        "description": "Table 0396 coding-system names (CWE-3) → FHIR system URIs "
        "(terminology.hl7.org v2-0396 'FHIR URI' column for the systems radiology orders use); "
        "unknown or local (L, 99zzz) names give no system unless the sender is configured",
        "v2_table": "0396",
        "map": {
            "LN": {"code": "http://loinc.org"},
            "SCT": {"code": "http://snomed.info/sct"},
            "SNM": {"code": "http://snomed.info/sct"},
            "I10": {"code": "http://hl7.org/fhir/sid/icd-10"},
            "I10C": {"code": "http://hl7.org/fhir/sid/icd-10-cm"},
            "ICD10CM": {"code": "http://hl7.org/fhir/sid/icd-10-cm"},
            "I9C": {"code": "http://hl7.org/fhir/sid/icd-9-cm"},
            "C4": {"code": "http://www.ama-assn.org/go/cpt"},
            "CPT4": {"code": "http://www.ama-assn.org/go/cpt"},
            "CPT": {"code": "http://www.ama-assn.org/go/cpt"},
            "DCM": {"code": "http://dicom.nema.org/resources/ontology/DCM"},
            "RADLEX": {"code": "http://www.radlex.org"},
            "UCUM": {"code": "http://unitsofmeasure.org"},
            "HL70005": {"code": "urn:oid:2.16.840.1.113883.6.238"},
        },
    },
    "result-status-out": {
        "description": "DiagnosticReport.status → OBR-25 (table 0123) for ORU^R01 (hl7v2.md "
        "§1.7): amended/corrected/appended all send C (0123 has no 'amended'; A means 'some, "
        "not all, results available', not an addendum)",
        "v2_table": "0123",
        "map": {
            "final": {"code": "F"},
            "amended": {"code": "C"},
            "corrected": {"code": "C"},
            "appended": {"code": "C"},
            "preliminary": {"code": "P"},
            "partial": {"code": "R"},
            "registered": {"code": "I"},
            "cancelled": {"code": "X"},
        },
    },
}


def _ig_table(folder: Path, name: str, table: str) -> dict[str, object]:
    filename = f"HL7 Concept Map_ {name} - Sheet1.csv"
    with (folder / "codesystems" / filename).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[1]
    target = header.index("Code", 3)
    display = header.index("Display", target)
    system = header.index("Code System", display)
    mapping: dict[str, dict[str, str]] = {}
    for row in rows[2:]:
        row = row + [""] * (len(header) - len(row))
        code, fhir = row[0].strip(), row[target].strip()
        if code and fhir and "<" not in code:
            entry = {"code": fhir, "system": row[system].strip()}
            if row[display].strip():
                entry["display"] = row[display].strip()
            mapping[code] = entry
    return {
        "source": f"{IG} @ {COMMIT}, mappings/codesystems/{filename}",
        "licence": LICENCE,
        "v2_table": table,
        "map": mapping,
    }


def tables(folder: Path) -> dict[str, dict[str, object]]:
    out = {name: _ig_table(folder, *spec) for name, spec in IG_TABLES.items()}
    for name, table in PROJECT_TABLES.items():
        out[name] = {"source": "project", "licence": "CC0-1.0", **table}
    return out


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if not a.startswith("--")]
    folder = Path(args[0]) if args else DEFAULT_IG
    stale = []
    for name, table in tables(folder).items():
        path = HERE / f"{name}.json"
        text = json.dumps(table, indent=2, ensure_ascii=False) + "\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                path.write_text(text, encoding="utf-8")
    for name in stale:
        print(("out of date: " if check else "wrote ") + f"mappings/v2-to-fhir/{name}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
