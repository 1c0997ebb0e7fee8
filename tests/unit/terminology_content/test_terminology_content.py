"""The server's terminology content (terminology/*.json): CodeSystems, ValueSets, ConceptMaps.

Checks every file's shape and identity, that every code a ValueSet or ConceptMap names exists,
and, in the tests named after rule IDs (docs: REQUIREMENTS.md), that the content encodes the rule.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_server.conformance.registry import Conformance
from fhir_server.validation import validate_structure

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


# --------------------------------------------------------------------------- every file


def test_the_files_the_profiles_bind_to_exist() -> None:
    for kind, ids in EXPECTED.items():
        missing = ids - set(resources(kind))
        assert not missing, f"missing {kind}: {sorted(missing)}"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_file_is_valid_fhir_r4(path: Path) -> None:
    resource = load(path)
    assert validate_structure(resource) == []


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_identity_and_metadata(path: Path) -> None:
    resource = load(path)
    kind, _, rid = path.stem.partition("-")
    assert resource["resourceType"] == kind and kind in KINDS
    assert resource["id"] == rid
    assert resource["url"] == f"{BASE}/{kind}/{rid}"
    assert resource["url"].rsplit("/", 1)[1] == rid
    assert resource["version"] == "0.1.0"
    assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", resource["name"]), resource["name"]
    assert resource["status"] == "active"
    for element in ("title", "publisher", "description", "copyright"):
        assert isinstance(resource.get(element), str) and resource[element].strip(), element
    assert re.search(r"\b(CN|RO)-\d", resource["description"]), "description names no rule ID"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_narrative_is_xhtml(path: Path) -> None:
    text = load(path)["text"]
    assert text["status"] == "generated"
    div = ET.fromstring(text["div"])
    assert div.tag == "{http://www.w3.org/1999/xhtml}div"


def test_canonical_base_is_replaceable_as_text() -> None:
    """README: a deployment replaces the base by plain text substitution in every file."""
    new_base = "https://fhir.hospital.example.net/r4"
    replaced = [json.loads(p.read_text(encoding="utf-8").replace(BASE, new_base)) for p in FILES]
    assert not any("telemedicine.example.org" in json.dumps(r) for r in replaced)
    urls = {r["url"] for r in replaced}
    for r in replaced:
        assert r["url"] == f"{new_base}/{r['resourceType']}/{r['id']}"
        named = [r.get("valueSet"), r.get("sourceUri"), r.get("targetUri")]
        named += [i.get("system") for i in r.get("compose", {}).get("include", [])]
        for group in r.get("group", []):
            named += [group["source"], group["target"]]
        for url in named:
            if url and not url.startswith(("http://dicom", "http://hl7.org", "http://snomed")):
                assert url in urls, f"{r['id']}: {url} does not resolve after the replacement"


def test_rule_property_names_rule_ids() -> None:
    for cs in resources("CodeSystem").values():
        for c in concepts(cs["concept"]):
            for p in c.get("property", []):
                if p["code"] == "rule":
                    assert re.fullmatch(r"(CN|RO)-\d+(\.\d+)*[a-z]?", p["valueString"])


def test_listed_displays_match_our_codesystems() -> None:
    for vs in resources("ValueSet").values():
        for include in vs["compose"]["include"]:
            ours = our_system(include.get("system", ""))
            if ours is None:
                continue
            display = {c["code"]: c["display"] for c in concepts(ours["concept"])}
            for c in include.get("concept", []):
                assert c.get("display", display[c["code"]]) == display[c["code"]]


def test_json_files_are_in_step_with_their_definitions() -> None:
    """terminology/definitions/ holds the definitions; the JSON is generated from them."""
    script = TERMINOLOGY / "definitions" / "generate.py"
    done = subprocess.run(
        [sys.executable, "-B", str(script), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_registry_resolves_every_resource_by_url() -> None:
    registry = Conformance.overlay(load(p) for p in FILES)
    for path in FILES:
        resource = load(path)
        found = registry.resolve(resource["resourceType"], resource["url"])
        assert found is not None and found["id"] == resource["id"]


# --------------------------------------------------------------------------- CodeSystems


@pytest.mark.parametrize("cs_id", sorted(EXPECTED["CodeSystem"]))
def test_codesystem_content(cs_id: str) -> None:
    cs = resources("CodeSystem")[cs_id]
    assert cs["content"] == "complete"
    assert cs["caseSensitive"] is True
    assert cs["valueSet"] == f"{BASE}/ValueSet/{cs_id}"
    every = list(concepts(cs["concept"]))
    codes = [c["code"] for c in every]
    assert len(codes) == len(set(codes)), "duplicate codes"
    assert cs.get("count", len(codes)) == len(codes)
    nested = any("concept" in c for c in cs["concept"])
    assert ("hierarchyMeaning" in cs) == nested
    declared = {p["code"] for p in cs.get("property", [])}
    for c in every:
        assert c.get("display", "").strip(), c["code"]
        assert re.fullmatch(r"[\x20-\x7e]+", c["display"]), f"display not English: {c['code']}"
        for p in c.get("property", []):
            assert p["code"] in declared, f"{c['code']}: undeclared property {p['code']}"
        for d in c.get("designation", []):
            assert d["language"] in ("zh", "ro") and d["value"].strip()


@pytest.mark.parametrize("cs_id", sorted(EXPECTED["CodeSystem"]))
def test_codesystem_has_its_whole_valueset(cs_id: str) -> None:
    vs = resources("ValueSet")[cs_id]
    assert vs["compose"]["include"] == [{"system": f"{BASE}/CodeSystem/{cs_id}"}]


def test_chinese_and_romanian_sources_carry_designations() -> None:
    chinese = (
        "teleconsultation-type",
        "teleconsultation-purpose",
        "professional-title",
        "diagnostic-subject",
    )
    romanian = ("teleradiology-purpose", "medical-specialty")
    for cs_id, language in [(c, "zh") for c in chinese] + [(r, "ro") for r in romanian]:
        for c in codes_of(cs_id).values():
            langs = {d["language"] for d in c.get("designation", [])}
            assert language in langs, f"{cs_id}#{c['code']} has no {language} designation"


# --------------------------------------------------------------------------- ValueSets


def test_valueset_includes_name_known_systems_and_existing_codes() -> None:
    for vs in resources("ValueSet").values():
        for part in ("include", "exclude"):
            for include in vs["compose"].get(part, []):
                system = include.get("system")
                for imported in include.get("valueSet", []):
                    assert imported.startswith(f"{BASE}/ValueSet/")
                    assert imported.rsplit("/", 1)[1] in resources("ValueSet")
                if system is None:
                    continue
                listed = [c["code"] for c in include.get("concept", [])]
                ours = our_system(system)
                if ours is not None:
                    known = {c["code"]: c for c in concepts(ours["concept"])}
                    properties = {p["code"] for p in ours.get("property", [])}
                    for code in listed:
                        assert code in known, f"{vs['id']}: {system}#{code} does not exist"
                    for f in include.get("filter", []):
                        if f["op"] in ("is-a", "descendent-of", "is-not-a"):
                            assert f["value"] in known, f"{vs['id']}: filter {f['value']}"
                        else:
                            assert f["property"] in properties, f"{vs['id']}: {f['property']}"
                    continue
                assert system in EXTERNAL_SYSTEMS, f"{vs['id']}: unknown system {system}"
                shipped = external_codes(system)
                for concept in include.get("concept", []):
                    if shipped is not None:
                        assert concept["code"] in shipped, f"{vs['id']}: {concept['code']}"
                        assert concept["display"] == shipped[concept["code"]]


# --------------------------------------------------------------------------- ConceptMaps


def test_conceptmap_codes_exist() -> None:
    for cm in resources("ConceptMap").values():
        assert cm["sourceUri"].startswith(f"{BASE}/ValueSet/")
        for group in cm["group"]:
            source = our_system(group["source"])
            assert source is not None, f"{cm['id']}: source {group['source']} is not ours"
            source_codes = {c["code"]: c["display"] for c in concepts(source["concept"])}
            target = our_system(group["target"])
            assert target is not None or group["target"] in EXTERNAL_SYSTEMS
            target_codes = (
                {c["code"]: c["display"] for c in concepts(target["concept"])}
                if target is not None
                else external_codes(group["target"])
            )
            for element in group["element"]:
                assert source_codes.get(element["code"]) == element["display"], element["code"]
                assert element["target"], element["code"]
                for t in element["target"]:
                    if target_codes is not None:
                        assert target_codes.get(t["code"]) == t["display"], t["code"]
                    if group["target"] == SCT:
                        assert re.fullmatch(r"\d{6,18}", t["code"]) and verhoeff_valid(t["code"])
                        assert set(t) <= {"code", "display", "equivalence", "comment"}
                        assert t["code"] in (c80_practice_codes().keys() | SNOMED_NEWER)


# --------------------------------------------------------------------------- rule tests


ANY_PURPOSE = {"CR", "DX", "RF", "IO", "PX", "CT", "MG", "US", "MR", "BMD"}
NUCLEAR_HYBRID = {"NM", "PT", "ST"}


def test_ro4_three_purposes() -> None:
    assert set(codes_of("teleradiology-purpose")) == {
        "primary-interpretation",
        "second-opinion",
        "tele-expertise",
    }


def test_ro12_nuclear_and_hybrid_only_for_second_opinion() -> None:
    assert value_set_codes("modality-primary-interpretation") == {DCM: ANY_PURPOSE}
    assert value_set_codes("modality-tele-expertise") == {DCM: ANY_PURPOSE}
    assert value_set_codes("modality-second-opinion") == {DCM: ANY_PURPOSE | NUCLEAR_HYBRID}
    assert value_set_codes("modality-nuclear-hybrid") == {DCM: NUCLEAR_HYBRID}
    assert value_set_codes("teleradiology-modality") == {DCM: ANY_PURPOSE | NUCLEAR_HYBRID}
    allowed = {
        code: {p["code"]: p.get("valueBoolean") for p in c["property"]}["nuclear-hybrid-allowed"]
        for code, c in codes_of("teleradiology-purpose").items()
    }
    assert allowed == {
        "primary-interpretation": False,
        "second-opinion": True,
        "tele-expertise": False,
    }


def test_ro12_purpose_to_modality_map_agrees_with_the_valuesets() -> None:
    cm = resources("ConceptMap")["teleradiology-purpose-to-modality"]
    (group,) = cm["group"]
    assert group["target"] == DCM
    for element in group["element"]:
        permitted = {t["code"] for t in element["target"] if t["equivalence"] == "relatedto"}
        forbidden = {t["code"] for t in element["target"] if t["equivalence"] == "disjoint"}
        vs = value_set_codes(f"modality-{element['code']}")[DCM]
        assert permitted == vs
        assert forbidden == (ANY_PURPOSE | NUCLEAR_HYBRID) - vs


def test_ro12_dxa_is_bone_mineral_densitometry() -> None:
    dcm = external_codes(DCM)
    assert dcm is not None
    assert "BMD" in value_set_codes("modality-primary-interpretation")[DCM]
    assert "BDUS" not in value_set_codes("teleradiology-modality")[DCM]  # ultrasound, not DXA


def test_ro12_series_modalities_add_only_non_image_objects() -> None:
    series = value_set_codes("teleradiology-series-modality")[DCM]
    images = value_set_codes("teleradiology-modality")[DCM]
    assert series - images == {"SR", "KO", "PR", "SEG", "REG"}
    assert images <= series


def test_ro14_secondary_capture_is_no_teleradiology_modality() -> None:
    for vs_id in ("teleradiology-modality", "teleradiology-series-modality"):
        assert not {"SC", "OT", "DOC"} & value_set_codes(vs_id)[DCM]


def test_ro30_2_refusal_causes_present() -> None:
    codes = codes_of("refusal-reason")
    inadequate = {c["code"] for c in codes["inadequate"]["concept"]}
    assert inadequate == {"inadequate-quantity", "inadequate-quality"}


def test_ro43_2_refusal_causes_present() -> None:
    codes = codes_of("refusal-reason")
    report = {c["code"] for c in concepts(codes["report-refusal"]["concept"])}
    assert {"artefacted", "wrongly-performed", "undated", "no-patient-identification"} <= report


def test_ro41d_inadequate_images_are_a_refusal_reason() -> None:
    rules = {p["valueString"] for p in codes_of("refusal-reason")["inadequate"]["property"]}
    assert {"RO-30.2", "RO-41d"} <= rules


def test_cn3_3_2_invitation_refusal_reasons_present() -> None:
    codes = codes_of("refusal-reason")
    invitation = {c["code"] for c in codes["invitation-refusal"]["concept"]}
    assert {"no-matching-subject", "no-qualified-physician", "no-agreement", "other"} <= invitation
    groups = ("invitation-refusal", "report-refusal")
    for group in groups:
        flags = {p["code"]: p.get("valueBoolean") for p in codes[group]["property"]}
        assert flags["notSelectable"] is True


def test_ro15a_radiology_specialty_is_radiology_and_nuclear_medicine_only() -> None:
    reporting = {"radiology-medical-imaging", "nuclear-medicine"}
    assert value_set_codes("radiology-specialty") == {
        f"{BASE}/CodeSystem/medical-specialty": reporting
    }
    flagged = {
        code
        for code, c in codes_of("medical-specialty").items()
        if {p["code"]: p.get("valueBoolean") for p in c["property"]}["teleradiology-reporting"]
    }
    assert flagged == reporting


def test_ro29_reporting_specialties_map_to_snomed_radiology_and_nuclear_medicine() -> None:
    (group,) = resources("ConceptMap")["medical-specialty-to-snomed"]["group"]
    mapped = {e["code"]: e["target"][0]["code"] for e in group["element"]}
    assert mapped["radiology-medical-imaging"] == "394914008"
    assert mapped["nuclear-medicine"] == "394649004"
    assert set(mapped) == set(codes_of("medical-specialty"))


def test_cn3_4_remote_diagnosis_kinds() -> None:
    diagnosis = codes_of("teleconsultation-type")["remote-diagnosis"]
    kinds = {c["code"] for c in diagnosis["concept"]}
    assert kinds == {
        "remote-imaging-diagnosis",
        "remote-pathology-diagnosis",
        "remote-ecg-diagnosis",
        "remote-ultrasound-diagnosis",
    }
    assert resources("CodeSystem")["teleconsultation-type"]["hierarchyMeaning"] == "is-a"


def test_cn5_2_liability_consultation_inviting_party_diagnosis_shared() -> None:
    codes = codes_of("teleconsultation-type")
    liability = {
        code: {p["code"]: p.get("valueCode") for p in c["property"]}["liability"]
        for code, c in codes.items()
    }
    for code in concepts([codes["remote-consultation"]]):
        assert liability[code["code"]] == "inviting-party"
    for code in concepts([codes["remote-diagnosis"]]):
        assert liability[code["code"]] == "shared"


def test_cn3_3_1_professional_titles_ranked() -> None:
    codes = codes_of("professional-title")
    ranks = {
        c["designation"][0]["value"]: {p["code"]: p.get("valueInteger") for p in c["property"]}[
            "rank"
        ]
        for c in codes["technical-title"]["concept"]
    }
    assert ranks["主任医师"] > ranks["副主任医师"] > ranks["主治医师"] > ranks["住院医师"]


def test_cn2_2a_practice_licences() -> None:
    licences = codes_of("professional-title")["practice-licence"]["concept"]
    assert {c["designation"][0]["value"] for c in licences} == {
        "执业医师",
        "执业助理医师",
        "乡村医生",
    }


def test_cn2_1_diagnostic_subject_catalogue_codes_nest() -> None:
    cs = resources("CodeSystem")["diagnostic-subject"]
    assert cs["hierarchyMeaning"] == "is-a"

    def walk(nodes: list[dict[str, Any]], parent: str | None) -> None:
        for node in nodes:
            assert re.fullmatch(r"\d{2}(\.\d{2}){0,2}", node["code"]), node["code"]
            if parent is not None:
                assert node["code"].rsplit(".", 1)[0] == parent, node["code"]
            walk(node.get("concept", []), node["code"])

    walk(cs["concept"], None)
    codes = codes_of("diagnostic-subject")
    zh = {code: c["designation"][0]["value"] for code, c in codes.items()}
    assert zh["32"] == "医学影像科" and zh["32.04"] == "核医学专业" and zh["31"] == "病理科"
    assert zh["03.04"] == "心血管内科专业" and zh["04.01.01"] == "肝脏移植项目"
    assert {"27", "28"} <= set(codes)  # later official additions: pain, critical care


def test_cn3_2_and_ro27_consent_categories() -> None:
    codes = codes_of("consent-category")
    assert {"remote-medical-service", "teleradiology-service", "image-transfer"} <= set(codes)


def test_ro13_priority_has_routine_and_urgent_levels() -> None:
    assert value_set_codes("telemedicine-priority") == {
        PRIORITY: {"routine", "urgent", "asap", "stat"}
    }
