"""The compiled rule-set conditions (validation/conditions.py) answer what fhirpathpy answers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhir_server.validation.conditions import UNDECIDED, compile_condition
from fhir_server.validation.invariants import Constraint, compile_invariant

RULESET = Path(__file__).resolve().parents[3] / "profiles/rulesets/telemedicine.json"
TELE = "https://telemedicine.example.org/fhir"
CONSULT = f"{TELE}/CodeSystem/teleconsultation-type"
PURPOSE = f"{TELE}/StructureDefinition/radiology-purpose"


def _fhirpath(expression: str, resource: dict[str, Any]) -> bool | None:
    """What the validator asked fhirpathpy before the fast path (ProfileValidator)."""
    invariant = compile_invariant(Constraint("rule", "error", "", expression, "test"))
    return invariant.holds(resource, str(resource.get("resourceType")), resource, resource)


def _ruleset() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = orjson.loads(RULESET.read_bytes())["rules"]
    return rules


def _ruleset_expressions() -> list[str]:
    return [rule["where"] for rule in _ruleset() if "where" in rule]


EXTRA_EXPRESSIONS = [
    "code.coding.where(system = 'http://loinc.org').exists()",
    "code.coding.exists()",
    "code.exists()",
    "status.exists()",
    "identifier.where(system = 'urn:x').exists()",
    "identifier.where(value = 'a').exists()",
    "category.coding.where(code = 'x').exists()",
    "subject.reference.exists()",
    "extension('urn:e').exists()",
    "meta.tag.where(system = 'urn:fhir-server:origin').exists()",
    "contained.id.exists()",
    "value.exists()",  # a choice: never compiled as a plain path
    "occurrence.exists()",
    "authoredOn.where(x = 'y').exists()",
]


#: Compiled, but never decided here (a choice element or a non-string field): fhirpathpy answers.
UNDECIDED_ONLY = {"value.exists()", "occurrence.exists()", "authoredOn.where(x = 'y').exists()"}


def _service_request(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2"}]},
    }
    body.update(extra)
    return body


def _inputs() -> list[dict[str, Any]]:
    sr = _service_request
    consult = {"system": CONSULT, "code": "remote-consultation"}
    cases = [
        sr(),
        sr(code={"coding": [consult]}),
        sr(code={"coding": [{"code": "x"}, consult]}),
        sr(code={"coding": [{"system": CONSULT + "x", "code": "x"}]}),
        sr(code={"coding": {"system": CONSULT, "code": "x"}}),  # not an array
        sr(code={"coding": [{"system": CONSULT, "_system": {"id": "a"}}]}),
        sr(code={"coding": [{"_system": {"extension": []}}]}),
        sr(code={"coding": [{"system": 5}]}),
        sr(code={"coding": [{"system": [CONSULT]}]}),
        sr(code={"coding": ["text"]}),
        sr(code={"coding": [None]}),
        sr(code={"coding": []}),
        sr(code={}),
        sr(code=[{"coding": [consult]}, {"coding": [{"code": "y"}]}]),
        sr(code="a string"),
        sr(code=None),
        sr(code={"coding": [{"system": "", "code": ""}]}),
        sr(code={"text": "x", "_text": {"id": "t"}}),
        sr(extension=[{"url": PURPOSE, "valueCode": "second-opinion"}]),
        sr(extension=[{"url": "urn:other"}, {"url": PURPOSE}]),
        sr(extension=[{"url": "urn:other"}]),
        sr(extension=[{"valueString": "no url"}]),
        sr(extension=[]),
        sr(extension={"url": PURPOSE}),
        sr(extension=["x"]),
        sr(extension=[{"url": 3}]),
        sr(extension=None),
        sr(_status={"extension": [{"url": "urn:e"}]}),
        sr(status=""),
        sr(meta={"tag": [{"system": "urn:fhir-server:origin", "code": "hl7v2"}]}),
        sr(meta={"tag": [{"system": "urn:fhir-server:origin", "code": "hl7v2"}]}, id="a"),
        sr(identifier=[{"system": "urn:x", "value": "a"}, {"value": "b"}]),
        sr(identifier=[{"system": "urn:y", "value": "a", "_value": {"id": "v"}}]),
        sr(contained=[{"resourceType": "Patient", "id": "p"}]),
        sr(subject={"reference": "#p"}, contained=[{"resourceType": "Patient", "id": "p"}]),
        sr(subject={"_reference": {"id": "x"}}),
        sr(authoredOn="2020-01-01"),
        sr(occurrenceDateTime="2020-01-01"),
        {"resourceType": "Observation", "status": "final", "valueString": "a"},
        {"resourceType": "Observation", "valueQuantity": {"value": 1}},
        {
            "resourceType": "Consent",
            "category": [{"coding": [{"system": f"{TELE}/CodeSystem/consent-category"}]}],
        },
        {"resourceType": "Consent", "category": [{"coding": [{"code": "x"}]}, {}]},
        {"resourceType": "Consent", "category": {"coding": [{"system": "s"}]}},
        {"status": "active"},
        {"resourceType": 5, "status": "active"},
    ]
    return cases


@pytest.mark.parametrize("expression", _ruleset_expressions() + EXTRA_EXPRESSIONS)
def test_compiled_conditions_answer_as_fhirpathpy(expression: str) -> None:
    compiled = compile_condition(expression)
    decided: list[bool] = []
    for resource in _inputs():
        before = copy.deepcopy(resource)
        expected = _fhirpath(expression, resource)
        if compiled is None:
            continue
        answer = compiled(resource)
        assert resource == before
        if answer is not UNDECIDED:
            decided.append(answer)
            assert answer == expected, (expression, resource)
        if expected is None:
            assert answer is UNDECIDED, (expression, resource)
    assert compiled is None or decided or expression in UNDECIDED_ONLY


def test_the_shipped_rule_set_is_compiled_and_decided_on_plain_resources() -> None:
    plain = [
        _service_request(),
        _service_request(code={"coding": [{"system": CONSULT, "code": "x"}]}),
        _service_request(extension=[{"url": PURPOSE, "valueCode": "primary-reading"}]),
        {"resourceType": "Consent", "status": "active", "category": [{"text": "x"}]},
    ]
    decided = 0
    for rule in _ruleset():
        compiled = compile_condition(rule["where"])
        assert compiled is not None, rule["where"]
        for resource in plain:
            if resource["resourceType"] != rule["resourceType"]:
                continue  # a rule's condition is asked of its type only
            decided += 1
            assert compiled(resource) is not UNDECIDED
            assert compiled(resource) == _fhirpath(rule["where"], resource)
    assert decided >= 7


@pytest.mark.parametrize(
    "expression",
    [
        "value.exists()",  # compiled, but undecided: a choice element
        "code.coding.where(system = 'a\\'b').exists()",
        "code.coding.where(system != 'a').exists()",
        "code.coding.where(system = 'a' and code = 'b').exists()",
        "code.coding.exists() and status.exists()",
        "true.exists()",
        "Patient.name.exists()",
        "code.coding.first().exists()",
        "extension('a').value.exists()",
    ],
)
def test_other_shapes_are_left_to_fhirpathpy(expression: str) -> None:
    compiled = compile_condition(expression)
    observation = {"resourceType": "Observation", "valueString": "a"}
    assert compiled is None or compiled(observation) is UNDECIDED
