"""The shipped R4 core definitions (fhir_server/conformance/data) and the registry over them.

The data file must be exactly what scripts/gen_r4_definitions.py builds from the official package
``hl7.fhir.r4.examples@4.0.1`` (``make r4-definitions`` regenerates it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from fhir_server.conformance import Conformance, canonical_key
from fhir_server.conformance.registry import CORE_FILE
from tests.r4_examples import examples_dir

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "fhir_server" / "conformance" / "data" / CORE_FILE
BASE = "http://hl7.org/fhir/StructureDefinition/"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_r4_definitions", ROOT / "scripts/gen_r4_definitions.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.examples
def test_committed_definitions_match_the_official_package() -> None:
    package = examples_dir()
    assert DATA.read_bytes() == _generator().render(package), (
        "fhir_server/conformance/data is stale: run `make r4-definitions` and commit it"
    )


def test_core_has_every_resource_definition_with_a_snapshot() -> None:
    core = Conformance.core()
    resources = [
        sd
        for sd in core.all("StructureDefinition")
        if sd.get("kind") == "resource" and sd.get("derivation") == "specialization"
    ]
    assert len(resources) == 147  # 146 concrete types + the abstract Resource/DomainResource pair
    assert all(sd["snapshot"]["element"] for sd in resources)
    patient = core.structure_definition(BASE + "Patient")
    assert patient is not None
    gender = next(e for e in patient["snapshot"]["element"] if e["path"] == "Patient.gender")
    assert gender["binding"]["strength"] == "required"


def test_core_terminology_is_there() -> None:
    core = Conformance.core()
    gender = core.value_set("http://hl7.org/fhir/ValueSet/administrative-gender")
    assert gender is not None and gender["compose"]["include"]
    assert core.code_system("http://hl7.org/fhir/administrative-gender") is not None
    assert sum(1 for _ in core.all("ConceptMap")) == 80


def test_canonical_key_splits_version_and_drops_fragment() -> None:
    assert canonical_key("http://x/vs|1.2") == ("http://x/vs", "1.2")
    assert canonical_key("http://x/vs#inner") == ("http://x/vs", None)
    assert canonical_key("http://x/vs") == ("http://x/vs", None)


def _vs(version: str | None, name: str) -> dict[str, object]:
    vs: dict[str, object] = {"resourceType": "ValueSet", "url": "http://x/vs", "name": name}
    if version is not None:
        vs["version"] = version
    return vs


def test_newest_version_wins_and_partial_versions_match() -> None:
    registry = Conformance.of([_vs("1.9.0", "a"), _vs("1.10.0", "b"), _vs("2.0", "c")])
    assert registry.value_set("http://x/vs")["name"] == "c"  # type: ignore[index]
    assert registry.value_set("http://x/vs|1.10.0")["name"] == "b"  # type: ignore[index]
    assert registry.value_set("http://x/vs|1")["name"] == "b"  # type: ignore[index]
    assert registry.value_set("http://x/vs|3") is None


def test_overlay_hides_core_and_counts_changes() -> None:
    registry = Conformance.overlay()
    url = "http://hl7.org/fhir/ValueSet/administrative-gender"
    assert registry.value_set(url) is not None
    before = registry.current_generation()
    mine = {"resourceType": "ValueSet", "url": url, "version": "4.0.1", "name": "Mine"}
    registry.add(mine)
    assert registry.value_set(url) is mine
    assert registry.current_generation() > before
    registry.remove("ValueSet", url, "4.0.1")
    assert registry.value_set(url)["name"] == "AdministrativeGender"  # type: ignore[index]
    assert Conformance.core().value_set(url) is not mine


def test_resources_without_url_or_of_other_types_are_ignored() -> None:
    registry = Conformance.of(
        [{"resourceType": "ValueSet"}, {"resourceType": "Patient", "url": "x"}]
    )
    assert list(registry.all("ValueSet")) == []
    assert "x" not in registry
