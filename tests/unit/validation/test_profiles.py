"""The StructureDefinition-driven validator (fhir_server/validation/profiles.py), on the R4 core
definitions and the core profiles shipped with R4 (vitalsigns, bodyweight, ...), with the real
terminology service and fhirpathpy invariants."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.conformance import Conformance
from fhir_server.core.errors import Issue, UnprocessableResource
from fhir_server.terminology import TerminologyService
from fhir_server.validation.profiles import ProfileValidator
from fhir_server.validation.rules import RuleSet

SD = "http://hl7.org/fhir/StructureDefinition/"
VITALS = SD + "vitalsigns"
WEIGHT = SD + "bodyweight"
LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@pytest.fixture(scope="module")
def validator() -> ProfileValidator:
    registry = Conformance.overlay()
    return ProfileValidator(registry, TerminologyService(registry))


def weight() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "meta": {"profile": [WEIGHT]},
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2026-12-01T10:00:00Z",
        "valueQuantity": {
            "value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"
        },
    }  # fmt: skip


def errors(issues: list[Issue]) -> list[tuple[str, str]]:
    return [(i.code, i.expression[0]) for i in issues if i.severity in ("error", "fatal")]


def test_a_valid_profiled_resource_has_no_errors(validator: ProfileValidator) -> None:
    assert errors(validator.validate(weight())) == []


def test_core_required_binding_is_enforced(validator: ProfileValidator) -> None:
    """fhir.resources accepts "F"; R4 binds Patient.gender to administrative-gender (required)."""
    issues = validator.validate({"resourceType": "Patient", "gender": "F"})
    assert errors(issues) == [("code-invalid", "Patient.gender")]
    assert "administrative-gender" in issues[0].diagnostics
    assert errors(validator.validate({"resourceType": "Patient", "gender": "female"})) == []


def test_core_binding_inside_a_datatype(validator: ProfileValidator) -> None:
    patient = {"resourceType": "Patient", "name": [{"use": "nickname"}, {"use": "nick"}]}
    assert errors(validator.validate(patient)) == [("code-invalid", "Patient.name[1].use")]


def test_missing_profiled_element_and_slice(validator: ProfileValidator) -> None:
    resource = weight()
    del resource["category"]
    found = errors(validator.validate(resource))
    assert ("required", "Observation.category") in found


def test_fixed_value_in_a_slice_decides_membership(validator: ProfileValidator) -> None:
    resource = weight()
    resource["code"]["coding"][0]["code"] = "8302-2"  # body height: no BodyWeightCode slice
    found = errors(validator.validate(resource))
    assert ("required", "Observation.code.coding") in found


def test_choice_type_not_allowed_by_the_profile(validator: ProfileValidator) -> None:
    resource = weight()
    del resource["valueQuantity"]
    resource["valueString"] = "72 kg"
    found = errors(validator.validate(resource))
    assert ("structure", "Observation.valueString") in found


def test_pattern_of_a_sliced_quantity(validator: ProfileValidator) -> None:
    resource = weight()
    resource["valueQuantity"]["system"] = "http://example.org/units"
    found = errors(validator.validate(resource))
    assert ("value", "Observation.valueQuantity.system") in found


def test_reference_target_narrowed_by_the_profile(validator: ProfileValidator) -> None:
    resource = weight()
    resource["subject"] = {"reference": "Group/g1"}
    assert ("structure", "Observation.subject") in errors(validator.validate(resource))


def test_invariant_failure_names_the_constraint_key(validator: ProfileValidator) -> None:
    resource = weight()
    del resource["valueQuantity"]  # vs-2: a value, a data absent reason, a component or a member
    issues = validator.validate(resource)
    failed = [i for i in issues if i.code == "invariant" and i.severity == "error"]
    assert [(i.key, i.expression[0]) for i in failed] == [("vs-2", "Observation")]
    assert failed[0].to_fhir()["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id",
         "valueString": "vs-2"}
    ]  # fmt: skip


def test_core_invariants_only_when_asked(validator: ProfileValidator) -> None:
    patient = {"resourceType": "Patient", "contact": [{"gender": "male"}]}  # pat-1
    assert errors(validator.validate(patient)) == []
    found = [(i.key, i.expression[0]) for i in validator.validate(patient, full=True)]
    assert ("pat-1", "Patient.contact[0]") in found


def test_unknown_claimed_profile_is_a_warning(validator: ProfileValidator) -> None:
    patient = {"resourceType": "Patient", "meta": {"profile": ["http://example.org/sd/x"]}}
    issues = validator.validate(patient)
    assert [(i.severity, i.code) for i in issues] == [("warning", "not-supported")]
    explicit = validator.validate({"resourceType": "Patient"}, ["http://example.org/sd/x"])
    assert errors(explicit) == [("not-supported", "Patient")]


def test_profile_of_another_type_is_an_error(validator: ProfileValidator) -> None:
    issues = validator.validate({"resourceType": "Patient"}, [VITALS])
    assert errors(issues) == [("structure", "Patient")]


def test_contained_resources_meet_their_type(validator: ProfileValidator) -> None:
    resource = weight()
    resource["contained"] = [{"resourceType": "Patient", "id": "p", "gender": "F"}]
    resource["subject"] = {"reference": "#p"}
    found = errors(validator.validate(resource))
    assert ("code-invalid", "Observation.contained[0].gender") in found


def test_extension_value_checked_against_its_definition(validator: ProfileValidator) -> None:
    url = SD + "patient-birthPlace"  # value[x] only Address
    patient = {"resourceType": "Patient", "extension": [{"url": url, "valueString": "Oslo"}]}
    assert ("structure", "Patient.extension[0].valueString") in errors(validator.validate(patient))
    patient["extension"][0] = {"url": url, "valueAddress": {"city": "Oslo"}}
    assert errors(validator.validate(patient)) == []


def test_structure_errors_come_first(validator: ProfileValidator) -> None:
    issues = validator.validate({"resourceType": "Patient", "gender": 3})
    assert errors(issues) == [("value", "Patient.gender")]


def test_the_pipeline_form_raises_with_every_issue(validator: ProfileValidator) -> None:
    with pytest.raises(UnprocessableResource) as raised:
        validator({"resourceType": "Patient", "gender": "F"})
    assert [i.expression for i in raised.value.issues] == [("Patient.gender",)]


def test_rule_set_requires_a_profile_where_its_condition_holds(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rule = {
        "resourceType": "Observation",
        "profile": WEIGHT,
        "where": "code.coding.where(code = '29463-7').exists()",
    }
    rules.write_text(json.dumps({"rules": [rule]}))
    registry = Conformance.overlay()
    validator = ProfileValidator(registry, TerminologyService(registry), rules=RuleSet.load(rules))
    validator.check_configuration()
    unclaimed = copy.deepcopy(weight())
    del unclaimed["meta"]
    del unclaimed["subject"]
    assert ("required", "Observation.subject") in errors(validator.validate(unclaimed))
    other = copy.deepcopy(unclaimed)
    other["code"]["coding"][0]["code"] = "8302-2"
    assert errors(validator.validate(other)) == []


def test_rule_set_with_an_unknown_profile_fails_at_start(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [{"resourceType": "Task", "profile": "http://example.org/no"}]}')
    validator = ProfileValidator(Conformance.overlay(), rules=RuleSet.load(rules))
    with pytest.raises(ValueError, match="is not known"):
        validator.check_configuration()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "expected an object with a 'rules' array"),
        ('{"rules": [{"profile": "x"}]}', r"rules\[0\].resourceType"),
        ('{"rules": [{"resourceType": "Task"}]}', r"rules\[0\].profile"),
        ("{", "cannot be read as JSON"),
    ],
)
def test_rule_set_errors_say_where(tmp_path: Path, text: str, message: str) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(text)
    with pytest.raises(ValueError, match=message):
        RuleSet.load(rules)
