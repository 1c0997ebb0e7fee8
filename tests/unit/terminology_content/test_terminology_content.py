"""The server's terminology content (terminology/*.json): CodeSystems, ValueSets, ConceptMaps.

Checks every file's shape and identity, that it is in step with terminology/definitions/, and
that every code a ValueSet or ConceptMap names exists. The rule tests are in
test_terminology_rules.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fhir_server.conformance.registry import Conformance
from fhir_server.validation import validate_structure
from tests.unit.terminology_content.content import (
    BASE,
    EXPECTED,
    EXTERNAL_SYSTEMS,
    FILES,
    KINDS,
    SCT,
    SNOMED_NEWER,
    TERMINOLOGY,
    c80_practice_codes,
    codes_of,
    concepts,
    external_codes,
    load,
    our_system,
    resources,
    verhoeff_valid,
)

# --------------------------------------------------------------------------- every file

# Canonical URLs not under our base: DICOM, FHIR core, SNOMED CT, HL7 Terminology (v2 tables).
EXTERNAL_PREFIXES = (
    "http://dicom",
    "http://hl7.org",
    "http://snomed",
    "http://terminology.hl7.org",
)


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
            if url and not url.startswith(EXTERNAL_PREFIXES):
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
        if cm["id"].startswith("v2-"):  # HL7 v2 maps: tests/unit/hl7v2/test_mapping.py
            continue
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
