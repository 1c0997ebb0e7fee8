"""The committed R4 tables (fhir_server/core/r4/data) and the facts read from them.

The tables must be exactly what scripts/gen_r4_tables.py builds from the official package
``hl7.fhir.r4.examples@4.0.1`` (``make r4-examples`` fetches it, ``make r4-tables`` regenerates).
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fhir_server.core import r4
from tests.r4_examples import examples_dir

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "fhir_server" / "core" / "r4" / "data"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_r4_tables", ROOT / "scripts/gen_r4_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _generate(package: Path) -> dict[str, Any]:
    """What ``make r4-tables`` would write, by table name (built once per test run)."""
    gen = _generator()
    definitions = gen.concrete_resource_definitions(package)
    datatypes = gen.datatype_definitions(package)
    return {
        "resource_types.json": gen.build_resource_types(definitions),
        "elements.json": gen.build_elements(definitions),
        "datatypes.json": gen.build_datatypes(datatypes),
        "references.json": gen.build_references(definitions, datatypes),
    }


def _committed(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.mark.examples
@pytest.mark.parametrize(
    "name", ["resource_types.json", "elements.json", "datatypes.json", "references.json"]
)
def test_committed_tables_match_the_package(name: str) -> None:
    generated = _generate(examples_dir())  # fails (not errors, not skips) without the package
    assert _committed(name) == generated[name], f"{name} is stale: run `make r4-tables`"


def test_no_other_tables_are_committed() -> None:
    assert sorted(p.name for p in DATA.glob("*.json")) == [
        "datatypes.json",
        "elements.json",
        "references.json",
        "resource_types.json",
    ]


def test_resource_types() -> None:
    types = r4.resource_types()
    assert len(types) == 146
    assert {"Patient", "Observation", "Questionnaire", "Bundle", "Binary", "Parameters"} <= types
    assert not types & {"Resource", "DomainResource", "HumanName", "BackboneElement"}
    assert r4.is_resource_type("Patient") and not r4.is_resource_type("patient")
    assert _committed("resource_types.json")["fhirVersion"] == r4.FHIR_VERSION == "4.0.1"


def test_every_resource_type_has_elements() -> None:
    for resource_type in r4.resource_types():
        paths = r4.elements(resource_type)
        assert f"{resource_type}.id" in paths, resource_type
        assert all(p.startswith(resource_type + ".") for p in paths), resource_type
    assert r4.elements("NotAType") == {}


def test_patient_facts() -> None:
    patient = r4.elements("Patient")
    birth = patient["Patient.birthDate"]
    assert (birth.min, birth.max, birth.is_summary, birth.types) == (0, "1", True, ("date",))
    assert not birth.is_array and not birth.is_choice and birth.content_reference is None
    assert patient["Patient.name"].is_array and patient["Patient.name"].types == ("HumanName",)
    assert not patient["Patient.text"].is_summary
    assert patient["Patient.link.other"].min == 1
    # R4 tables, not folklore: modifierExtension is summary in backbones, not at resource level.
    assert not patient["Patient.modifierExtension"].is_summary
    assert patient["Patient.contact.modifierExtension"].is_summary


def test_observation_facts() -> None:
    observation = r4.elements("Observation")
    assert observation["Observation.status"].min == 1
    value = observation["Observation.value[x]"]
    assert value.is_choice and value.name == "value[x]" and value.is_summary
    assert value.types[:3] == ("Quantity", "CodeableConcept", "string")
    assert observation["Observation.component"].types == ("BackboneElement",)
    assert "Observation.component.value[x]" in observation


def test_content_references() -> None:
    nested = r4.elements("Questionnaire")["Questionnaire.item.item"]
    assert nested.types == ("#Questionnaire.item",)
    assert nested.content_reference == "Questionnaire.item"
    assert r4.elements("Observation")["Observation.component.referenceRange"].content_reference == (
        "Observation.referenceRange"
    )


def test_children() -> None:
    top = r4.children("Patient", "Patient")
    assert {"id", "meta", "name", "birthDate", "deceased[x]", "contact"} <= set(top)
    assert "family" not in top  # data types are not expanded in resource snapshots
    contact = r4.children("Patient", "Patient.contact")
    assert {"name", "telecom", "relationship", "modifierExtension"} <= set(contact)
    assert r4.children("Patient", "Patient.name") == {}


def test_datatype_facts() -> None:
    assert {"string", "code", "dateTime", "decimal", "positiveInt", "uri"} <= r4.primitive_types()
    assert {"HumanName", "Quantity", "Age", "Timing", "Element"} <= r4.complex_types()
    assert not r4.complex_types() & (r4.primitive_types() | r4.resource_types())
    assert "SimpleQuantity" not in r4.complex_types()  # a profile on Quantity, not a type
    assert r4.datatype_elements("HumanName")["HumanName.given"].types == ("string",)
    assert r4.datatype_elements("HumanName")["HumanName.given"].is_array
    bounds = r4.datatype_children("Timing", "Timing.repeat")["bounds[x]"]
    assert bounds.is_choice and bounds.types == ("Duration", "Range", "Period")
    assert r4.datatype_children("Period", "Period").keys() == {"id", "extension", "start", "end"}
    assert r4.datatype_elements("Age")["Age.value"].types == ("decimal",)
    assert r4.datatype_elements("string") == {} == r4.datatype_elements("Patient")


def test_base_types() -> None:
    assert r4.base_type("Age") == "Quantity"
    assert r4.base_type("code") == "string"
    assert r4.base_type("canonical") == "uri"
    assert r4.base_type("positiveInt") == "integer"
    assert r4.base_type("HumanName") == "Element"
    assert r4.base_type("Timing") == "BackboneElement"
    assert r4.base_type("Element") is None and r4.base_type("Patient") is None


def test_reference_targets() -> None:
    assert r4.reference_targets("Observation.subject") == {"Patient", "Group", "Device", "Location"}
    # no SearchParameter covers it, the snapshot still says where it may point
    assert r4.reference_targets("DiagnosticReport.imagingStudy") == {"ImagingStudy"}
    assert r4.reference_targets("Annotation.author[x]") == {
        "Practitioner", "Patient", "RelatedPerson", "Organization"
    }  # fmt: skip
    assert r4.reference_targets("Identifier.assigner") == {"Organization"}
    assert r4.is_reference_element("Questionnaire.item.answerOption.value[x]")
    # any type: no targetProfile, or Resource among them
    for path in ("Extension.value[x]", "Provenance.target", "Parameters.parameter.value[x]"):
        assert r4.is_reference_element(path) and r4.reference_targets(path) is None, path
    assert not r4.is_reference_element("Patient.birthDate")
    assert r4.reference_targets("Patient.birthDate") is None
