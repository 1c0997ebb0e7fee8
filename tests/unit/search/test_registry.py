"""The search parameter registry: one definition per (resource type, code), from R4's registry."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest
from fhir_server.search.registry import SearchRegistry, expression_for_type, split_union

COMMON = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source", "_content", "_query")
_FIRST = re.compile(r"^\(*([A-Za-z]+)")


@pytest.fixture(scope="module")
def registry() -> SearchRegistry:
    return SearchRegistry.load()


def test_load_builds_once(registry: SearchRegistry) -> None:
    assert SearchRegistry.load() is registry


def test_every_r4_type_has_the_common_parameters(registry: SearchRegistry) -> None:
    assert set(registry.params()) == set(r4.resource_types())
    for resource_type, params in registry.params().items():
        assert set(COMMON) <= set(params), resource_type
        assert all(p.resource_type == resource_type for p in params.values())


def test_text_is_only_on_domain_resources(registry: SearchRegistry) -> None:
    assert registry.for_type("Patient")["_text"].expression is None
    for resource_type in ("Bundle", "Binary", "Parameters"):
        assert "_text" not in registry.for_type(resource_type)
        assert "_content" in registry.for_type(resource_type)


def test_resource_level_expressions_are_rewritten_to_the_type(registry: SearchRegistry) -> None:
    patient = registry.for_type("Patient")
    assert patient["_lastUpdated"].expression == "Patient.meta.lastUpdated"
    assert patient["_tag"].expression == "Patient.meta.tag"
    assert patient["_id"].expression is None  # answered from the id
    assert patient["_id"].type == "token"
    assert patient["_content"].expression is None


def test_a_shared_parameter_keeps_only_the_terms_of_each_type(registry: SearchRegistry) -> None:
    assert registry.for_type("Observation")["code"].expression == "Observation.code"
    assert (
        registry.for_type("AllergyIntolerance")["code"].expression
        == "AllergyIntolerance.code | AllergyIntolerance.reaction.substance"
    )
    assert (
        registry.for_type("MedicationRequest")["code"].expression
        == "(MedicationRequest.medication as CodeableConcept)"
    )
    assert registry.for_type("Condition")["code"].url.endswith("/clinical-code")


def test_relative_terms_get_the_type_prefix(registry: SearchRegistry) -> None:
    """R4's InsurancePlan-name is ``name | alias``: relative to the resource."""
    assert registry.for_type("InsurancePlan")["name"].expression == (
        "InsurancePlan.name | InsurancePlan.alias"
    )


def test_every_expression_term_starts_with_its_type(registry: SearchRegistry) -> None:
    for resource_type, params in registry.params().items():
        for param in params.values():
            if param.expression is None:
                assert param.code in ("_id", "_text", "_content", "_query"), param
                continue
            for term in split_union(param.expression):
                first = _FIRST.match(term)
                assert first is not None and first.group(1) == resource_type, (param, term)


def test_reference_targets_are_real_types(registry: SearchRegistry) -> None:
    subject = registry.for_type("Observation")["subject"]
    assert subject.type == "reference"
    assert subject.targets == ("Device", "Group", "Location", "Patient")
    every = r4.resource_types()
    for resource_type, params in registry.params().items():
        for param in params.values():
            assert set(param.targets) <= every
            if param.type != "reference":
                assert param.targets == (), param
            elif (resource_type, param.code) != ("RequestGroup", "instantiates-canonical"):
                assert param.targets, param  # R4 declares no target for that one


def test_reference_any_targets_are_expanded(registry: SearchRegistry) -> None:
    target = registry.for_type("Provenance")["target"].targets
    assert len(target) == 145
    assert "Patient" in target
    assert "Parameters" not in target


def test_composites_resolve_their_components_on_the_same_type(registry: SearchRegistry) -> None:
    composite = registry.for_type("Observation")["code-value-quantity"]
    assert composite.type == "composite"
    assert composite.expression == "Observation"
    assert [(c.param.code, c.expression) for c in composite.components] == [
        ("code", "code"),
        ("value-quantity", "value.as(Quantity)"),
    ]
    assert composite.components[1].param.type == "quantity"
    count = 0
    for resource_type, params in registry.params().items():
        for param in params.values():
            if param.type == "composite":
                count += 1
                assert len(param.components) >= 2
                assert all(c.param.resource_type == resource_type for c in param.components)
    assert count == 72  # 46 official composites, some on several types


def test_descriptions_are_per_type(registry: SearchRegistry) -> None:
    assert registry.for_type("Condition")["code"].description == "Code for the condition"
    assert registry.for_type("Observation")["code"].description == (
        "The code of the observation type"
    )
    assert registry.for_type("Patient")["gender"].description.startswith("Gender of the patient")
    for params in registry.params().values():
        assert all(p.description for p in params.values())  # CapabilityStatement documentation


def test_comparators_are_declared(registry: SearchRegistry) -> None:
    assert "ap" in registry.for_type("Observation")["date"].comparators
    assert registry.for_type("Patient")["name"].comparators == ()


def test_common_parameters_for_system_search(registry: SearchRegistry) -> None:
    common = registry.common()
    assert set(COMMON) == set(common)
    assert common["_lastUpdated"].resource_type == "Resource"
    assert common["_lastUpdated"].expression == "Resource.meta.lastUpdated"
    assert common["_id"].expression is None


def test_unknown_type_has_no_parameters(registry: SearchRegistry) -> None:
    assert dict(registry.for_type("Nope")) == {}


def test_the_registry_is_read_only(registry: SearchRegistry) -> None:
    with pytest.raises(TypeError):
        registry.for_type("Patient")["x"] = registry.for_type("Patient")["name"]  # type: ignore[index]


def test_compartments(registry: SearchRegistry) -> None:
    compartments = registry.compartments()
    assert set(compartments) == {"Patient", "Encounter", "RelatedPerson", "Practitioner", "Device"}
    assert compartments["Patient"]["Observation"] == ("subject", "performer")
    assert compartments["Patient"]["Patient"] == ("link",)
    assert compartments["Encounter"]["Encounter"] == ("{def}",)
    assert "Organization" not in compartments["Patient"]  # never in a patient's compartment


# --- expression splitting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "terms"),
    [
        ("A.b | A.c", ["A.b", "A.c"]),
        (
            "(A.value as Quantity) | (A.value as SampledData)",
            ["(A.value as Quantity)", "(A.value as SampledData)"],
        ),
        ("A.b.where(c = 'x|y') | A.d", ["A.b.where(c = 'x|y')", "A.d"]),
        ("A.b.where((c | d).exists())", ["A.b.where((c | d).exists())"]),
        ("A.b", ["A.b"]),
    ],
)
def test_split_union_ignores_nested_bars(expression: str, terms: list[str]) -> None:
    assert split_union(expression) == terms


def test_expression_for_type() -> None:
    assert expression_for_type("Resource.meta.tag", "Patient") == "Patient.meta.tag"
    assert expression_for_type("(Resource.x as y)", "Patient") == "(Patient.x as y)"
    assert expression_for_type("Patient.a | Person.a | PatientX.a", "Patient") == "Patient.a"
    assert expression_for_type("Person.a", "Patient") is None
    assert expression_for_type(None, "Patient") is None


# --- custom parameters -------------------------------------------------------------------------


def _custom(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/patient-nickname",
        "code": "nickname",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.where(use = 'nickname').given",
        "description": "A nickname. Informal.",
    }
    resource.update(overrides)
    return resource


def test_with_custom_adds_a_parameter_without_touching_the_original(
    registry: SearchRegistry,
) -> None:
    custom = registry.with_custom([_custom()])
    nickname = custom.for_type("Patient")["nickname"]
    assert nickname.expression == "Patient.name.where(use = 'nickname').given"
    assert nickname.description == "A nickname."
    assert nickname.url == "http://example.org/SearchParameter/patient-nickname"
    assert "nickname" not in registry.for_type("Patient")
    assert custom.compartments() == registry.compartments()


def test_with_custom_overrides_by_type_and_code(registry: SearchRegistry) -> None:
    custom = registry.with_custom(
        [_custom(code="name", base=["Patient"], expression="Patient.name.family")]
    )
    assert custom.for_type("Patient")["name"].expression == "Patient.name.family"
    assert custom.for_type("Practitioner")["name"] == registry.for_type("Practitioner")["name"]


def test_with_custom_composite_and_reference(registry: SearchRegistry) -> None:
    custom = registry.with_custom(
        [
            _custom(
                url="http://example.org/sp/gp",
                code="gp",
                type="reference",
                expression="Patient.generalPractitioner",
                target=["Practitioner", "NotAType"],
            ),
            _custom(
                url="http://example.org/sp/family-gender",
                code="family-gender",
                type="composite",
                expression="Patient",
                component=[
                    {
                        "definition": "http://hl7.org/fhir/SearchParameter/individual-family",
                        "expression": "name.family",
                    },
                    {
                        "definition": "http://hl7.org/fhir/SearchParameter/individual-gender",
                        "expression": "gender",
                    },
                ],
            ),
        ]
    )
    assert custom.for_type("Patient")["gp"].targets == ("Practitioner",)
    components = custom.for_type("Patient")["family-gender"].components
    assert [c.param.code for c in components] == ["family", "gender"]


@pytest.mark.parametrize(
    ("overrides", "where"),
    [
        ({"code": ""}, "SearchParameter[0].code"),
        ({"code": None}, "SearchParameter[0].code"),
        ({"type": None}, "SearchParameter[0].type"),
        ({"type": "fuzzy"}, "SearchParameter[0].type"),
        ({"expression": None}, "SearchParameter[0].expression"),
        ({"base": []}, "SearchParameter[0].base"),
        ({"base": ["Nope"]}, "SearchParameter[0].base"),
        ({"type": "composite", "expression": "Patient"}, "SearchParameter[0].component"),
        (
            {"type": "composite", "component": [{"definition": 1}]},
            "SearchParameter[0].component[0]",
        ),
        ({"resourceType": "Patient"}, "SearchParameter[0]"),
    ],
)
def test_with_custom_validates(
    registry: SearchRegistry, overrides: dict[str, Any], where: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        registry.with_custom([_custom(**overrides)])
    assert caught.value.issues[0].expression == (where,)
    assert where in caught.value.diagnostics


def test_with_custom_unresolvable_component(registry: SearchRegistry) -> None:
    with pytest.raises(ValueError, match=r"component http://example\.org/none"):
        registry.with_custom(
            [
                _custom(
                    type="composite",
                    expression="Patient",
                    component=[
                        {"definition": "http://example.org/none", "expression": "a"},
                        {"definition": "http://example.org/none", "expression": "b"},
                    ],
                )
            ]
        )
