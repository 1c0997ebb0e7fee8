"""Structural validation of R4B-modelled resources: issue codes, FHIRPath expressions, messages."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core.errors import Issue, UnprocessableResource
from fhir_server.core.fhirjson import FhirDecimal
from fhir_server.validation import check_structure, validate_structure


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **elements}


def observation(**elements: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "x"}}
    return {**base, **elements}


def found(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(code, expression) of every issue."""
    issues = validate_structure(resource)
    assert all(i.severity == "error" and len(i.expression) == 1 for i in issues), issues
    return [(i.code, i.expression[0]) for i in issues]


def only(resource: dict[str, Any]) -> Issue:
    [issue] = validate_structure(resource)
    return issue


VALID = [
    patient(),
    patient(
        id="p-1.A",
        active=True,
        birthDate="1970-01",
        name=[{"family": "Doe", "given": ["A", "B"]}],
        multipleBirthInteger=2,
        deceasedDateTime="2020-02-29T10:00:00+01:00",
        meta={"lastUpdated": "2024-01-01T00:00:00.123Z", "versionId": "1"},
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        photo=[{"data": "aGVsbG8=", "size": 0}],
    ),
    observation(valueQuantity={"value": FhirDecimal("1.50"), "unit": "mg"}),
    observation(valueQuantity={"value": 2}),
    observation(_status={"extension": [{"url": "http://x", "valueCode": "asked"}]}),
    observation(effectiveInstant="2024-05-01T10:00:00Z"),
    patient(name=[{"given": ["A", None], "_given": [None, {"id": "g2"}]}]),
    patient(name=[{"_given": [{"extension": [{"url": "http://x", "valueString": "y"}]}]}]),
    patient(_birthDate={"extension": [{"url": "http://x", "valueCode": "unknown"}]}),
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient()}]},
    patient(contained=[{"resourceType": "Organization", "id": "o1", "name": "X"}]),
]


@pytest.mark.parametrize("resource", VALID)
def test_valid_resources_have_no_issue(resource: dict[str, Any]) -> None:
    assert validate_structure(resource) == []
    check_structure(resource)


def test_a_required_primitive_may_be_given_by_its_extension_only() -> None:
    resource = observation(_status={"extension": [{"url": "http://x", "valueCode": "asked"}]})
    del resource["status"]
    assert validate_structure(resource) == []


@pytest.mark.parametrize(
    ("resource", "code", "expression", "diagnostics"),
    [
        (
            patient(birthDate="1970-13-01"),
            "value",
            "Patient.birthDate",
            "Patient.birthDate: expected a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)",
        ),
        (patient(birthDate="2021-02-30"), "value", "Patient.birthDate", None),
        (patient(birthDate=1970), "value", "Patient.birthDate", None),
        (patient(active="true"), "value", "Patient.active", None),
        (patient(active=1), "value", "Patient.active", None),
        (patient(multipleBirthInteger="2"), "value", "Patient.multipleBirth.ofType(integer)", None),
        (
            patient(multipleBirthInteger=True),
            "value",
            "Patient.multipleBirth.ofType(integer)",
            None,
        ),
        (
            patient(multipleBirthInteger=FhirDecimal("2.0")),
            "value",
            "Patient.multipleBirth.ofType(integer)",
            None,
        ),
        (
            patient(multipleBirthInteger=2**31),
            "value",
            "Patient.multipleBirth.ofType(integer)",
            None,
        ),
        (
            observation(valueQuantity={"value": "1.5"}),
            "value",
            "Observation.value.ofType(Quantity).value",
            "Observation.value.ofType(Quantity).value: expected a FHIR decimal (a JSON number)",
        ),
        (patient(id="a" * 65), "value", "Patient.id", None),
        (patient(id="a b"), "value", "Patient.id", None),
        (patient(gender="fe male "), "value", "Patient.gender", None),
        (patient(implicitRules="http://a b"), "value", "Patient.implicitRules", None),
        (patient(photo=[{"data": "not base64!"}]), "value", "Patient.photo[0].data", None),
        (patient(photo=[{"size": -1}]), "value", "Patient.photo[0].size", None),
        (patient(name=[{"given": ["A", 5]}]), "value", "Patient.name[0].given[1]", None),
        (
            patient(meta={"lastUpdated": "2024-01-01"}),
            "value",
            "Patient.meta.lastUpdated",
            None,
        ),
        (
            observation(effectiveDateTime="2024-01-01T10:00:00"),
            "value",
            "Observation.effective.ofType(dateTime)",
            None,
        ),
    ],
)
def test_bad_primitive_values(
    resource: dict[str, Any], code: str, expression: str, diagnostics: str | None
) -> None:
    issue = only(resource)
    assert (issue.code, issue.expression) == (code, (expression,))
    assert issue.diagnostics.startswith(f"{expression}: expected a FHIR ")
    if diagnostics is not None:
        assert issue.diagnostics == diagnostics


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (patient(foo=1), [("structure", "Patient.foo")]),
        (patient(name=[{"family": "x", "foo": 1}]), [("structure", "Patient.name[0].foo")]),
        (patient(fhir_comments=["x"]), [("structure", "Patient.fhir_comments")]),
        (patient(_maritalStatus={"id": "x"}), [("structure", "Patient._maritalStatus")]),
        (patient(_birthDate={"foo": 1}), [("structure", "Patient.birthDate.foo")]),
    ],
)
def test_unknown_elements(resource: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert found(resource) == expected


def test_unknown_element_diagnostics_name_the_element() -> None:
    assert only(patient(foo=1)).diagnostics == "Patient.foo: unknown element 'foo'"


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            {"resourceType": "Observation", "code": {"text": "x"}},
            [("required", "Observation.status")],
        ),
        ({"resourceType": "Observation", "status": "final"}, [("required", "Observation.code")]),
        (patient(text={"status": "generated"}), [("required", "Patient.text.div")]),
        (patient(extension=[{"valueString": "a"}]), [("required", "Patient.extension[0].url")]),
        (
            patient(link=[{"type": "seealso"}]),
            [("required", "Patient.link[0].other")],
        ),
    ],
)
def test_missing_required_elements(
    resource: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert found(resource) == expected


def test_missing_required_diagnostics() -> None:
    resource = {"resourceType": "Observation", "code": {"text": "x"}}
    assert only(resource).diagnostics == "Observation.status: missing required element 'status'"


@pytest.mark.parametrize(
    ("resource", "code", "expression", "detail"),
    [
        (patient(name={"family": "x"}), "structure", "Patient.name", "expected a JSON array"),
        (
            patient(maritalStatus=[{"text": "x"}]),
            "structure",
            "Patient.maritalStatus",
            "expected a single value, not a JSON array",
        ),
        (patient(gender=["male"]), "structure", "Patient.gender", "expected a single value"),
        (
            patient(maritalStatus="x"),
            "structure",
            "Patient.maritalStatus",
            "expected a JSON object",
        ),
        (patient(name=["x"]), "structure", "Patient.name[0]", "expected a JSON object"),
        (
            patient(multipleBirthBoolean=True, multipleBirthInteger=2),
            "structure",
            "Patient",
            "only one of 'multipleBirth[x]' may be present",
        ),
        (
            patient(extension=[{"url": "http://x", "valueString": "a", "valueBoolean": True}]),
            "structure",
            "Patient.extension[0]",
            "only one of 'value[x]' may be present",
        ),
    ],
)
def test_wrong_cardinality_and_shape(
    resource: dict[str, Any], code: str, expression: str, detail: str
) -> None:
    issue = only(resource)
    assert (issue.code, issue.expression) == (code, (expression,))
    assert issue.diagnostics.startswith(f"{expression}: {detail}")


@pytest.mark.parametrize(
    ("resource", "code", "expression"),
    [
        (patient(gender=None), "structure", "Patient.gender"),
        (patient(maritalStatus=None), "structure", "Patient.maritalStatus"),
        (patient(name=[None]), "structure", "Patient.name[0]"),
        (patient(name=[{"given": [None]}]), "structure", "Patient.name[0].given[0]"),
        (
            patient(name=[{"given": [None], "_given": [None]}]),
            "structure",
            "Patient.name[0].given[0]",
        ),
        (patient(name=[{"_given": [None]}]), "structure", "Patient.name[0].given[0]"),
        (patient(gender=""), "value", "Patient.gender"),
        (patient(name=[{"family": ""}]), "value", "Patient.name[0].family"),
        (patient(implicitRules=""), "value", "Patient.implicitRules"),
        (patient(text={"status": "generated", "div": ""}), "value", "Patient.text.div"),
        (patient(maritalStatus={}), "structure", "Patient.maritalStatus"),
        (patient(name=[{}]), "structure", "Patient.name[0]"),
        (patient(_birthDate={}), "structure", "Patient.birthDate"),
        (patient(name=[]), "structure", "Patient.name"),
        (patient(name=[{"given": []}]), "structure", "Patient.name[0].given"),
    ],
)
def test_null_and_empty_values_are_rejected(
    resource: dict[str, Any], code: str, expression: str
) -> None:
    assert found(resource) == [(code, expression)]


def test_primitive_array_and_extension_array_must_align() -> None:
    resource = patient(name=[{"given": ["a", "b"], "_given": [{"id": "x"}]}])
    issue = only(resource)
    assert issue.expression == ("Patient.name[0].given",)
    assert "as many items as 'given'" in issue.diagnostics


@pytest.mark.parametrize(
    ("resource", "code", "expression"),
    [
        ({"resourceType": "Foo"}, "invalid", "resourceType"),
        ({"resourceType": "Citation", "status": "draft"}, "invalid", "resourceType"),
        ({"resourceType": "Resource"}, "invalid", "resourceType"),
        ({"resourceType": 5}, "invalid", "resourceType"),
        ({"id": "x"}, "required", "resourceType"),
        (
            patient(contained=[{"resourceType": "Foo"}]),
            "invalid",
            "Patient.contained[0].resourceType",
        ),
        (
            patient(contained=[{"resourceType": "Citation", "status": "draft"}]),
            "invalid",
            "Patient.contained[0].resourceType",
        ),
        (patient(contained=[{"id": "x"}]), "required", "Patient.contained[0].resourceType"),
        (patient(contained=["x"]), "structure", "Patient.contained[0]"),
    ],
)
def test_resource_types_must_be_r4(resource: dict[str, Any], code: str, expression: str) -> None:
    assert found(resource) == [(code, expression)]


def test_unknown_resource_type_diagnostics_do_not_echo_it() -> None:
    issue = only({"resourceType": "JohnSmith"})
    assert issue.diagnostics == "resourceType: not a FHIR R4 resource type"


def test_nested_resources_are_validated_with_their_own_type() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": patient()},
            {"resource": patient(active="yes")},
            {"resource": {"resourceType": "Observation", "code": {"text": "x"}}},
            {"resource": observation(status="final", foo=1)},
        ],
    }
    assert found(bundle) == [
        ("value", "Bundle.entry[1].resource.active"),
        ("required", "Bundle.entry[2].resource.status"),
        ("structure", "Bundle.entry[3].resource.foo"),
    ]


def test_parameters_resources_nested_in_parts() -> None:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "a", "part": [{"name": "b", "resource": patient(gender=None)}]}],
    }
    assert found(parameters) == [("structure", "Parameters.parameter[0].part[0].resource.gender")]


def test_contained_issue_expressions() -> None:
    resource = patient(contained=[{"resourceType": "Observation", "status": "final"}])
    assert found(resource) == [("required", "Patient.contained[0].code")]


def test_primitive_extension_expressions_designate_the_primitive() -> None:
    resource = patient(name=[{"given": ["a"], "_given": [{"extension": [{"valueString": "y"}]}]}])
    assert found(resource) == [("required", "Patient.name[0].given[0].extension[0].url")]


def test_every_problem_is_reported_at_once() -> None:
    resource = patient(active="yes", foo=1, gender="", name=[None], birthDate="x")
    assert sorted(found(resource)) == [
        ("structure", "Patient.foo"),
        ("structure", "Patient.name[0]"),
        ("value", "Patient.active"),
        ("value", "Patient.birthDate"),
        ("value", "Patient.gender"),
    ]


def test_check_structure_raises_422_with_every_issue() -> None:
    with pytest.raises(UnprocessableResource) as caught:
        check_structure(patient(active="yes", foo=1))
    error = caught.value
    assert error.code == "invalid"
    assert [i.expression for i in error.issues] == [("Patient.active",), ("Patient.foo",)]
    assert error.diagnostics.startswith("The resource is not valid FHIR R4 (2 errors); first: ")
    assert error.issues[0].to_fhir()["expression"] == ["Patient.active"]


def test_a_non_object_is_rejected() -> None:
    [issue] = validate_structure(["x"])  # type: ignore[arg-type]
    assert issue.code == "structure"


def test_validation_does_not_modify_the_resource() -> None:
    resource = patient(contained=[{"resourceType": "MedicinalProduct", "name": [{}]}])
    before = repr(resource)
    validate_structure(resource)
    assert repr(resource) == before


def test_a_missing_required_choice_points_at_the_element() -> None:
    resource = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/1"},
    }
    issue = only(resource)
    assert (issue.code, issue.expression) == ("required", ("MedicationRequest.medication",))
    assert issue.diagnostics == (
        "MedicationRequest.medication: missing required element 'medication[x]'"
    )


def test_absurdly_deep_nesting_is_refused_not_crashed() -> None:
    resource: dict[str, Any] = patient(extension=[])
    current = resource
    for _ in range(600):
        inner: dict[str, Any] = {"url": "http://x", "extension": []}
        current["extension"].append(inner)
        current = inner
    current["valueString"] = "x"
    [issue] = validate_structure(resource)
    assert (issue.code, issue.expression) == ("too-costly", ("Patient",))
