"""Rule tests: the terminology content encodes the rules it names (CN-…, RO-… IDs of the
requirements catalogue, docs/compliance.md)."""

from __future__ import annotations

import re
from typing import Any

from tests.unit.terminology_content.content import (
    BASE,
    DCM,
    PRIORITY,
    codes_of,
    concepts,
    external_codes,
    resources,
    value_set_codes,
)

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
