"""Diagnostics never echo submitted values (RO-1.4, GDPR); locations become FHIRPath."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core.models import ModelError
from fhir_server.validation import schema, validate_structure
from fhir_server.validation.paths import resolve, safe_name
from fhir_server.validation.report import translate

SECRET = "Jane-Q-Public-1970"


def leaky_resources() -> list[dict[str, Any]]:
    patient: dict[str, Any] = {"resourceType": "Patient"}
    return [
        {**patient, "birthDate": SECRET},
        {**patient, "active": SECRET},
        {**patient, "gender": f"{SECRET} "},
        {**patient, "id": f"{SECRET} x"},
        {**patient, "multipleBirthInteger": SECRET},
        {**patient, "name": [{"family": 5, "given": [SECRET, {"x": SECRET}]}]},
        {**patient, "name": SECRET},
        {**patient, "maritalStatus": SECRET},
        {**patient, "maritalStatus": [SECRET]},
        {**patient, "photo": [{"data": SECRET}]},
        {**patient, "meta": {"lastUpdated": SECRET}},
        {**patient, "extension": [{"url": "http://x", "valueUuid": SECRET}]},
        {**patient, "contained": [{"resourceType": SECRET}]},
        {**patient, "contained": [SECRET]},
        {**patient, f"{SECRET} as a key": 1},
        {**patient, "_birthDate": SECRET},
        {"resourceType": SECRET},
        {"resourceType": "MedicinalProduct", "name": [{"productName": 5}], "x": SECRET},
        {"resourceType": "MedicinalProduct", "name": SECRET, "specialMeasures": [SECRET, 1]},
    ]


@pytest.mark.parametrize("resource", leaky_resources())
def test_diagnostics_never_contain_submitted_values(resource: dict[str, Any]) -> None:
    issues = validate_structure(resource)
    assert issues
    for issue in issues:
        text = repr(issue.to_fhir())
        assert SECRET not in text and "Jane" not in text, text


@pytest.mark.parametrize(
    ("error_type", "msg"),
    [
        ("string_pattern_mismatch", f"String should match pattern, got '{SECRET}'"),
        ("value_error", f"Value error, {SECRET} does not match"),
        ("int_parsing", f"Input should be a valid integer, unable to parse string '{SECRET}'"),
        ("some_future_type", SECRET),
    ],
)
def test_translated_r4b_errors_never_use_pydantic_messages(error_type: str, msg: str) -> None:
    root = schema.resource_node("Patient")
    assert root is not None
    for loc in [("birthDate",), ("name", 0), ("foo",), ()]:
        error = ModelError(error_type, loc, msg, SECRET, {"error": ValueError(msg)})
        res = resolve(root, {"resourceType": "Patient"}, loc)
        code, detail, _ = translate(error, res)
        assert SECRET not in detail and code in ("structure", "required", "value", "invalid")


def test_safe_names() -> None:
    assert safe_name("birthDate") == "birthDate"
    assert safe_name("_given") == "_given"
    assert safe_name("John Smith") == "(invalid name)"
    assert safe_name("x" * 65) == "(invalid name)"


@pytest.mark.parametrize(
    ("data", "loc", "expression"),
    [
        ({"resourceType": "Patient"}, (), "Patient"),
        ({"resourceType": "Patient"}, ("name", 0, "given", 1), "Patient.name[0].given[1]"),
        (
            {"resourceType": "Patient"},
            ("_birthDate", "extension", 0),
            "Patient.birthDate.extension[0]",
        ),
        (
            {"resourceType": "Patient"},
            ("name", 0, "_given", 1, "id"),
            "Patient.name[0].given[1].id",
        ),
        ({"resourceType": "Patient"}, ("deceasedDateTime",), "Patient.deceased.ofType(dateTime)"),
        ({"resourceType": "Patient"}, ("foo", 0, "bar"), "Patient.foo[0].bar"),
        (
            {
                "resourceType": "Bundle",
                "entry": [{}, {}, {}, {"resource": {"resourceType": "Observation"}}],
            },
            ("entry", 3, "resource", "valueQuantity", "value"),
            "Bundle.entry[3].resource.value.ofType(Quantity).value",
        ),
        (
            {"resourceType": "Patient", "contained": [{"resourceType": "MedicinalProduct"}]},
            ("contained", 0, "name", 0, "productName"),
            "Patient.contained[0].name[0].productName",
        ),
    ],
)
def test_locations_become_fhirpath(
    data: dict[str, Any], loc: tuple[str | int, ...], expression: str
) -> None:
    root = schema.resource_node(data["resourceType"])
    assert root is not None
    assert resolve(root, data, loc).expression == expression
