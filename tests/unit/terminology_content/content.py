"""Shared reading of terminology/*.json for the terminology content tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from fhir_server.conformance.registry import Conformance

TERMINOLOGY = Path(__file__).resolve().parents[3] / "terminology"
BASE = "https://telemedicine.example.org/fhir"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
SCT = "http://snomed.info/sct"
PRIORITY = "http://hl7.org/fhir/request-priority"
#: External code systems our ValueSets and ConceptMaps may name. Those in the R4 core registry
#: are checked code by code there; SNOMED CT is not shipped, its identifiers are checked for form.
EXTERNAL_SYSTEMS = frozenset({DCM, PRIORITY, SCT})
KINDS = ("CodeSystem", "ValueSet", "ConceptMap")
FILES = sorted(TERMINOLOGY.glob("*.json"))

# What the profiles bind to: these must exist, with exactly these URLs.
EXPECTED = {
    "CodeSystem": {
        "teleconsultation-type",
        "teleconsultation-purpose",
        "refusal-reason",
        "teleradiology-purpose",
        "professional-title",
        "diagnostic-subject",
        "medical-specialty",
        "consent-category",
    },
    "ValueSet": {
        "teleconsultation-type",
        "teleconsultation-purpose",
        "refusal-reason",
        "teleradiology-purpose",
        "professional-title",
        "diagnostic-subject",
        "medical-specialty",
        "radiology-specialty",
        "consent-category",
        "teleradiology-modality",
        "modality-primary-interpretation",
        "modality-second-opinion",
        "modality-tele-expertise",
        "telemedicine-priority",
    },
    "ConceptMap": {
        "teleradiology-purpose-to-modality",
        "medical-specialty-to-snomed",
        "diagnostic-subject-to-medical-specialty",
        # HL7 v2 ↔ FHIR (terminology/definitions/v2_maps.py, from mappings/v2-to-fhir/)
        "v2-order-control-to-request-status",
        "v2-order-status-to-request-status",
        "v2-order-control-to-task-status",
        "v2-order-status-to-task-status",
        "v2-priority-to-request-priority",
        "v2-administrative-sex-to-gender",
        "v2-patient-class-to-encounter-class",
        "v2-report-status-to-result-status",
    },
}


@cache
def load(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def resources(kind: str) -> dict[str, dict[str, Any]]:
    found = (load(p) for p in FILES)
    return {r["id"]: r for r in found if r["resourceType"] == kind}


def concepts(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for node in nodes:
        yield node
        yield from concepts(node.get("concept", []))


def codes_of(cs_id: str) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in concepts(resources("CodeSystem")[cs_id]["concept"])}


def our_system(url: str) -> dict[str, Any] | None:
    return {cs["url"]: cs for cs in resources("CodeSystem").values()}.get(url)


def external_codes(system: str) -> dict[str, str] | None:
    """code -> display of an external system in the R4 core registry, None if not there."""
    cs = Conformance.core().code_system(system)
    if cs is None or cs.get("content") != "complete":
        return None
    return {c["code"]: c.get("display", "") for c in concepts(cs.get("concept", []))}


def c80_practice_codes() -> dict[str, str]:
    """SNOMED CT specialty concepts of the R4 value set c80-practice-codes: code -> display."""
    vs = Conformance.core().value_set("http://hl7.org/fhir/ValueSet/c80-practice-codes")
    assert vs is not None
    return {
        c["code"]: c["display"]
        for include in vs["compose"]["include"]
        if include["system"] == SCT
        for c in include.get("concept", [])
    }


#: SNOMED CT specialties we use that c80-practice-codes (2019) predates.
SNOMED_NEWER = {"773568002": "Emergency medicine"}


# Verhoeff check digit (SNOMED CT identifiers end with one): multiplication and permutation.
VERHOEFF_D = [
    "0123456789",
    "1234067895",
    "2340178956",
    "3401289567",
    "4012395678",
    "5987604321",
    "6598710432",
    "7659821043",
    "8765932104",
    "9876543210",
]
VERHOEFF_P = [
    "0123456789",
    "1576283094",
    "5803796142",
    "8916043527",
    "9453126870",
    "4286573901",
    "2793806415",
    "7046913258",
]


def verhoeff_valid(number: str) -> bool:
    check = 0
    for i, digit in enumerate(reversed(number)):
        check = int(VERHOEFF_D[check][int(VERHOEFF_P[i % 8][int(digit)])])
    return check == 0


def value_set_codes(vs_id: str) -> dict[str, set[str]]:
    """system -> codes of a ValueSet made of concept lists (no filters), excludes applied."""
    compose = resources("ValueSet")[vs_id]["compose"]
    result: dict[str, set[str]] = {}
    for include in compose["include"]:
        for imported in include.get("valueSet", []):
            for system, codes in value_set_codes(imported.rsplit("/", 1)[1]).items():
                result.setdefault(system, set()).update(codes)
        if "system" not in include:
            continue
        if "concept" in include:
            result.setdefault(include["system"], set()).update(
                c["code"] for c in include["concept"]
            )
        else:
            assert "filter" not in include, f"{vs_id}: not a plain list"
            result.setdefault(include["system"], set()).update(codes_of_url(include["system"]))
    for exclude in compose.get("exclude", []):
        result[exclude["system"]] -= {c["code"] for c in exclude.get("concept", [])}
    return result


def codes_of_url(url: str) -> set[str]:
    cs = our_system(url)
    assert cs is not None, url
    return {c["code"] for c in concepts(cs["concept"])}
