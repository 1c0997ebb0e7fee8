"""The FHIRPath subset compiler (fhir_server.search.fhirpath) on hand-written resources."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.search.fhirpath import UnsupportedExpression, compile_path, split_union
from fhir_server.search.fhirpath_parse import Binary, TypeOp, Union, parse

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [
        {"family": "Dürr", "given": ["Émilie", None, "Anne"], "_given": [None, {"id": "x"}, None]},
        {"text": "E. Dürr"},
    ],
    "telecom": [
        {"system": "phone", "value": "555-1"},
        {"system": "email", "value": "e@example.org"},
    ],
    "extension": [
        {"url": "http://example.org/eye-colour", "valueCode": "blue"},
        {"url": "http://example.org/other", "valueString": "x"},
    ],
}


def values(expression: str, resource: dict[str, Any]) -> list[tuple[Any, str]]:
    return compile_path(expression, resource["resourceType"])(resource)


def test_paths_flatten_arrays_and_skip_nulls() -> None:
    assert values("Patient.name.given", PATIENT) == [("Émilie", "string"), ("Anne", "string")]
    assert values("Patient.name", PATIENT) == [(n, "HumanName") for n in PATIENT["name"]]
    assert values("Patient.birthDate", PATIENT) == []
    assert values("Patient.id", PATIENT) == [("p1", "string")]


def test_relative_paths_and_abstract_roots() -> None:
    plan = {"resourceType": "InsurancePlan", "name": "Gold", "alias": ["G", "Au"]}
    assert values("name | alias", plan) == [("Gold", "string"), ("G", "string"), ("Au", "string")]
    assert values("Resource.id", PATIENT) == values("DomainResource.id", PATIENT)
    assert values("Patient.name[1].text", PATIENT) == [("E. Dürr", "string")]


def test_terms_of_other_resource_types_select_nothing() -> None:
    expression = (
        "Patient.telecom.where(system='email') | Person.telecom.where(system='email') "
        "| Practitioner.telecom"
    )
    assert values(expression, PATIENT) == [(PATIENT["telecom"][1], "ContactPoint")]


def test_choice_types_are_typed_from_the_json_key() -> None:
    quantity = {"value": 5, "unit": "mg"}
    obs = {"resourceType": "Observation", "valueQuantity": quantity}
    assert values("Observation.value", obs) == [(quantity, "Quantity")]
    for expression in (
        "(Observation.value as Quantity)",
        "Observation.value.as(Quantity)",
        "Observation.value.ofType(Quantity)",
        "Observation.value.as(FHIR.Quantity)",
    ):
        assert values(expression, obs) == [(quantity, "Quantity")], expression
    assert values("(Observation.value as CodeableConcept).text", obs) == []
    text = {"resourceType": "Observation", "valueString": "high"}
    assert values("Observation.value.as(string)", text) == [("high", "string")]
    assert values("Observation.value.as(String)", text) == [("high", "string")]  # System type
    assert values("Observation.value.as(Quantity)", text) == []


def test_as_keeps_specialised_types() -> None:
    age = {"value": 40, "unit": "a"}
    condition = {"resourceType": "Condition", "onsetAge": age}
    assert values("Condition.onset.as(Age)", condition) == [(age, "Age")]
    assert values("Condition.onset.as(Quantity)", condition) == [(age, "Age")]
    assert values("Condition.onset.as(dateTime)", condition) == []
    when = {"resourceType": "Condition", "onsetDateTime": "2020-01-01"}
    assert values("Condition.onset.as(DateTime) | Condition.onset.as(Period)", when) == [
        ("2020-01-01", "dateTime")
    ]


def test_where_resolve_is_type() -> None:
    def obs(subject: dict[str, Any], **more: Any) -> dict[str, Any]:
        return {"resourceType": "Observation", "subject": subject, **more}

    patient = "Observation.subject.where(resolve() is Patient)"
    assert values(patient, obs({"reference": "Patient/1"}))
    assert values(patient, obs({"reference": "Patient/1/_history/3"}))
    assert values(patient, obs({"reference": "https://other.org/fhir/Patient/1"}))
    assert values(patient, obs({"type": "Patient", "identifier": {"value": "123"}}))
    assert not values(patient, obs({"reference": "Group/1"}))
    assert not values(patient, obs({"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d"}))
    assert not values(patient, obs({"display": "somebody"}))
    contained = [{"resourceType": "Patient", "id": "c"}, {"resourceType": "Group", "id": "g"}]
    assert values(patient, obs({"reference": "#c"}, contained=contained))
    assert not values(patient, obs({"reference": "#g"}, contained=contained))
    assert not values(patient, obs({"reference": "#missing"}, contained=contained))


def test_where_field_equals_literal() -> None:
    phone = "Patient.telecom.where(system='phone')"
    assert values(phone, PATIENT) == [(PATIENT["telecom"][0], "ContactPoint")]
    assert values("Patient.telecom.where(system!='phone').value", PATIENT) == [
        ("e@example.org", "string")
    ]
    assert values("Patient.telecom.where(system='fax')", PATIENT) == []
    artifact = {
        "resourceType": "Library",
        "relatedArtifact": [
            {"type": "depends-on", "resource": "http://x.org/Library/a"},
            {"type": "successor", "resource": "http://x.org/Library/b"},
        ],
    }
    assert values("Library.relatedArtifact.where(type='successor').resource", artifact) == [
        ("http://x.org/Library/b", "canonical")
    ]


def test_extensions() -> None:
    url = "http://example.org/eye-colour"
    assert values(f"Patient.extension('{url}')", PATIENT) == [
        (PATIENT["extension"][0], "Extension")
    ]
    assert values(f"Patient.extension('{url}').value", PATIENT) == [("blue", "code")]
    assert values(f"Patient.extension.where(url = '{url}').value", PATIENT) == [("blue", "code")]
    assert values("Patient.extension('http://example.org/none')", PATIENT) == []
    response = {
        "resourceType": "QuestionnaireResponse",
        "item": [
            {
                "linkId": "1",
                "extension": [{"url": "http://x/isSubject", "valueBoolean": True}],
                "answer": [{"valueReference": {"reference": "Patient/1"}}, {"valueString": "x"}],
            },
            {"linkId": "2", "answer": [{"valueReference": {"reference": "Patient/2"}}]},
        ],
    }
    expression = (
        "QuestionnaireResponse.item.where(hasExtension('http://x/isSubject'))"
        ".answer.value.ofType(Reference)"
    )
    assert values(expression, response) == [({"reference": "Patient/1"}, "Reference")]


def test_deceased_is_a_boolean() -> None:
    expression = "Patient.deceased.exists() and Patient.deceased != false"
    assert values(expression, {"resourceType": "Patient"}) == [(False, "boolean")]
    assert values(expression, {"resourceType": "Patient", "deceasedBoolean": False}) == [
        (False, "boolean")
    ]
    assert values(expression, {"resourceType": "Patient", "deceasedBoolean": True}) == [
        (True, "boolean")
    ]
    assert values(expression, {"resourceType": "Patient", "deceasedDateTime": "2020"}) == [
        (True, "boolean")
    ]


def test_indexers_first_exists_and_inline_resources() -> None:
    first = {"resourceType": "Composition", "id": "c1"}
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": first}, {"resource": {"resourceType": "Patient", "id": "p1"}}],
    }
    assert values("Bundle.entry[0].resource", bundle) == [(first, "Resource")]
    assert values("Bundle.entry.resource.first()", bundle) == [(first, "Resource")]
    assert values("Bundle.entry.resource.ofType(Patient).id", bundle) == [("p1", "string")]
    assert values("Bundle.entry[5].resource", bundle) == []
    assert values("Bundle.entry.exists()", bundle) == [(True, "boolean")]
    assert values("Bundle.link.exists()", bundle) == [(False, "boolean")]
    assert values("Bundle.link.empty()", bundle) == [(True, "boolean")]


def test_content_references_and_data_type_children() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "item": [{"linkId": "1", "item": [{"linkId": "1.1", "item": [{"linkId": "1.1.1"}]}]}],
    }
    assert values("Questionnaire.item.item.item.linkId", questionnaire) == [("1.1.1", "string")]
    period = {"start": "2020"}
    request = {
        "resourceType": "MedicationRequest",
        "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": period}}}],
    }
    assert values("MedicationRequest.dosageInstruction.timing.repeat.bounds", request) == [
        (period, "Period")
    ]
    assert values("MedicationRequest.dosageInstruction.timing.repeat.bounds.start", request) == [
        ("2020", "dateTime")
    ]


def test_relative_components_and_percent_resource() -> None:
    sequence = {
        "resourceType": "MolecularSequence",
        "referenceSeq": {"chromosome": {"text": "1"}},
        "variant": [{"start": 10, "end": 20}, {"start": 30}],
    }
    variants = compile_path("MolecularSequence.variant", "MolecularSequence")
    start = compile_path("start", "MolecularSequence", variants.contexts)
    chromosome = compile_path(
        "%resource.referenceSeq.chromosome", "MolecularSequence", variants.contexts
    )
    nodes = variants.select(sequence)
    assert [start.evaluate([n], sequence)[0][0] for n in nodes] == [10, 30]
    assert chromosome.evaluate(nodes[:1], sequence)[0][0] == {"text": "1"}
    assert start.output_types == {"integer"}


def test_output_types() -> None:
    assert compile_path("Observation.value", "Observation").output_types >= {
        "Quantity",
        "CodeableConcept",
        "string",
        "Period",
    }
    assert compile_path("Patient.name | Patient.birthDate", "Patient").output_types == {
        "HumanName",
        "date",
    }


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.nam",  # misspelt element
        "Patient.name.given.count()",
        "Patient.name.given.substring(1)",
        "Observation.value.as(Reference)",  # no such choice: selects nothing
        "Person.name",  # another type only: selects nothing on Patient
        "NotAType.name",
        "Patient.birthDate > '2020'",
        "Patient.active or Patient.deceased",
        "Patient.generalPractitioner.resolve().name",
        "Patient.generalPractitioner.resolve()",
        "%context.name",
        "Patient.name.where(given = 'x', 1)",
        "Patient.name.given + 'x'",
        "Patient.name['a']",
        "Patient.name.given = 'unterminated",
        "Patient.",
        "",
        "   ",
        "Patient.name.as(Unknown)",
        "Patient.extension(1)",
        "Bundle.entry.resource.id",  # inside an inline resource of unknown type
    ],
)
def test_unsupported_expressions_fail_at_compile_time(expression: str) -> None:
    resource_type = "Bundle" if expression.startswith("Bundle") else "Patient"
    if expression.startswith("Observation"):
        resource_type = "Observation"
    with pytest.raises(UnsupportedExpression):
        compile_path(expression, resource_type)


def test_unknown_resource_type_is_rejected() -> None:
    with pytest.raises(UnsupportedExpression):
        compile_path("name", "Patientx")


def test_error_messages_do_not_echo_long_text() -> None:
    long_name = "x" * 500
    with pytest.raises(UnsupportedExpression) as caught:
        compile_path(f"Patient.{long_name}", "Patient")
    assert len(str(caught.value)) < 200


def test_split_union_respects_parentheses_and_strings() -> None:
    assert split_union("A.b | (A.c as Quantity) | A.d.where(system='x|y') | A.e[0]") == [
        "A.b",
        "(A.c as Quantity)",
        "A.d.where(system='x|y')",
        "A.e[0]",
    ]
    assert split_union("(A.b | A.c)") == ["(A.b | A.c)"]
    assert split_union(" A.b ") == ["A.b"]


def test_parse_precedence() -> None:
    tree = parse("A.b.exists() and A.b != false")
    assert isinstance(tree, Binary) and tree.op == "and"
    assert isinstance(tree.right, Binary) and tree.right.op == "!="
    tree = parse("A.b | A.c as Quantity")  # 'as' binds tighter than '|'
    assert isinstance(tree, Union) and isinstance(tree.terms[1], TypeOp)
