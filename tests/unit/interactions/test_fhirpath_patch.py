"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html): the operations' rules, values and
errors case by case (the official cases are in test_fhirpath_patch_official.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.core.errors import FhirError, InvalidRequest, UnprocessableResource
from fhir_server.core.fhirjson import FhirDecimal, dumps, loads
from fhir_server.interactions.fhirpath_patch import apply_fhirpath_patch, parse_fhirpath_patch
from fhir_server.validation.structure import validate_structure


def operation(type_: str, path: str, **parts: Any) -> dict[str, Any]:
    """One ``operation`` parameter; ``value`` is a dict of ``value[x]`` / ``part`` members."""
    out: list[dict[str, Any]] = [
        {"name": "type", "valueCode": type_},
        {"name": "path", "valueString": path},
    ]
    for name, content in parts.items():
        if name == "name":
            out.append({"name": "name", "valueString": content})
        elif name in ("index", "source", "destination"):
            out.append({"name": name, "valueInteger": content})
        else:
            out.append({"name": name, **content})
    return {"name": "operation", "part": out}


def parameters(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def patched(resource: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    return apply_fhirpath_patch(resource, parse_fhirpath_patch(parameters(*operations)))


# --- operations ------------------------------------------------------------------------------

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [
        {"system": "http://a", "value": "1", "use": "official"},
        {"system": "http://b", "value": "2"},
    ],
    "name": [{"family": "Doe", "given": ["Ann", "Bea"], "_given": [None, {"id": "g2"}]}],
    "birthDate": "1970-01-01",
    "_birthDate": {"extension": [{"url": "http://x/t", "valueTime": "10:00:00"}]},
}


def test_where_criteria_and_boolean_logic_select_one_element() -> None:
    out = patched(
        PATIENT,
        operation(
            "replace",
            "Patient.identifier.where(system = 'http://b' and (use.empty() or use != 'old')).value",
            value={"valueString": "3"},
        ),
        operation("delete", "Patient.identifier.where(use = 'official' or value = 'x')"),
    )
    assert out["identifier"] == [{"system": "http://b", "value": "3"}]


def test_add_appends_to_a_list_and_makes_one_for_a_repeating_primitive() -> None:
    out = patched(
        {"resourceType": "Patient", "name": [{"family": "Doe"}]},
        operation("add", "Patient.name[0]", name="given", value={"valueString": "Ann"}),
        operation("add", "Patient.name.first()", name="given", value={"valueString": "Bea"}),
    )
    assert out["name"] == [{"family": "Doe", "given": ["Ann", "Bea"]}]


def test_add_keeps_the_underscore_array_aligned() -> None:
    out = patched(
        PATIENT,
        operation(
            "add",
            "Patient.name[0]",
            name="given",
            value={"valueString": "Cy", "_valueString": {"id": "g3"}},
        ),
    )
    assert out["name"][0]["given"] == ["Ann", "Bea", "Cy"]
    assert out["name"][0]["_given"] == [None, {"id": "g2"}, {"id": "g3"}]


def test_a_primitive_value_brings_its_extensions() -> None:
    extension = {"extension": [{"url": "http://x/y", "valueBoolean": True}]}
    out = patched(
        {"resourceType": "Patient"},
        operation(
            "add",
            "Patient",
            name="birthDate",
            value={"valueDate": "1980-02-03", "_valueDate": extension},
        ),
    )
    assert out == {"resourceType": "Patient", "birthDate": "1980-02-03", "_birthDate": extension}


def test_replace_replaces_the_whole_primitive_its_extensions_too() -> None:
    out = patched(PATIENT, operation("replace", "Patient.birthDate", value={"valueDate": "1971"}))
    assert out["birthDate"] == "1971" and "_birthDate" not in out


def test_delete_and_move_keep_underscore_arrays_aligned() -> None:
    moved = patched(PATIENT, operation("move", "Patient.name[0].given", source=1, destination=0))
    assert moved["name"][0]["given"] == ["Bea", "Ann"]
    assert moved["name"][0]["_given"] == [{"id": "g2"}, None]
    deleted = patched(PATIENT, operation("delete", "Patient.name[0].given[1]"))
    assert deleted["name"][0] == {"family": "Doe", "given": ["Ann"]}
    first = patched(PATIENT, operation("delete", "Patient.name[0].given[0]"))
    assert first["name"][0]["given"] == ["Bea"] and first["name"][0]["_given"] == [{"id": "g2"}]


def test_extensions_of_a_primitive_can_be_added_and_deleted() -> None:
    out = patched(
        PATIENT,
        operation("delete", "Patient.birthDate.extension('http://x/t')"),
        operation(
            "add", "Patient.name[0].given[0]", name="extension",
            value={"part": [
                {"name": "url", "valueUri": "http://x/z"}, {"name": "value", "valueCode": "c"},
            ]},
        ),
    )  # fmt: skip
    assert "_birthDate" not in out and out["birthDate"] == "1970-01-01"
    assert out["name"][0]["_given"] == [
        {"extension": [{"url": "http://x/z", "valueCode": "c"}]},
        {"id": "g2"},
    ]


def test_deleting_the_last_extension_of_a_value_less_primitive_removes_it() -> None:
    resource = {
        "resourceType": "Patient",
        "_gender": {"extension": [{"url": "http://x/absent", "valueCode": "asked"}]},
    }
    assert patched(resource, operation("delete", "Patient.gender.extension[0]")) == {
        "resourceType": "Patient"
    }


def test_insert_creates_a_missing_list_and_checks_the_index() -> None:
    identifier = {"valueIdentifier": {"value": "1"}}
    out = patched(
        {"resourceType": "Patient"},
        operation("insert", "Patient.identifier", index=0, value=identifier),
    )
    assert out["identifier"] == [{"value": "1"}]
    with pytest.raises(UnprocessableResource, match="index 3 is out of range"):
        patched(PATIENT, operation("insert", "Patient.identifier", index=3, value=identifier))


def test_choice_elements_by_name_type_and_of_type() -> None:
    observation = {
        "resourceType": "Observation", "status": "final", "code": {"text": "t"},
        "valueQuantity": {"value": FhirDecimal("1.50"), "unit": "mg"},
    }  # fmt: skip
    decimal = patched(
        observation,
        operation("replace", "Observation.value.ofType(Quantity).value",
                  value={"valueDecimal": FhirDecimal("2.250")}),
    )  # fmt: skip
    assert b'"value":2.250' in dumps(decimal)
    text = patched(
        observation, operation("replace", "Observation.value", value={"valueString": "x"})
    )
    assert text["valueString"] == "x" and "valueQuantity" not in text
    gone = patched(observation, operation("delete", "(Observation.value as Quantity)"))
    assert "valueQuantity" not in gone
    for name in ("deceased", "deceased[x]", "deceasedBoolean"):
        added = patched(
            {"resourceType": "Patient"},
            operation("add", "Patient", name=name, value={"valueBoolean": True}),
        )
        assert added == {"resourceType": "Patient", "deceasedBoolean": True}
    with pytest.raises(UnprocessableResource, match="already has a value"):
        patched(
            {"resourceType": "Patient", "deceasedDateTime": "2020"},
            operation("add", "Patient", name="deceased", value={"valueBoolean": True}),
        )


def test_primitives_keep_their_json_type() -> None:
    out = patched(
        {"resourceType": "Patient"},
        operation("add", "Patient", name="active", value={"valueBoolean": False}),
        operation("add", "Patient", name="multipleBirth", value={"valueInteger": 3}),
    )
    assert out["active"] is False and out["multipleBirthInteger"] == 3
    parsed = parse_fhirpath_patch(
        loads(
            b'{"resourceType":"Parameters","parameter":[{"name":"operation","part":['
            b'{"name":"type","valueCode":"add"},{"name":"path","valueString":"Observation.value"},'
            b'{"name":"name","valueString":"value"},{"name":"value","valueDecimal":1.10}]}]}'
        )
    )
    result = apply_fhirpath_patch({"resourceType": "Observation", "valueQuantity": {}}, parsed)
    assert dumps(result) == b'{"resourceType":"Observation","valueQuantity":{"value":1.10}}'


def test_anonymous_types_from_nested_parts() -> None:
    out = patched(
        {"resourceType": "Questionnaire", "status": "draft"},
        operation(
            "add", "Questionnaire", name="item",
            value={"part": [
                {"name": "linkId", "valueString": "1"},
                {"name": "type", "valueCode": "group"},
                {"name": "item", "part": [
                    {"name": "linkId", "valueString": "1.1"},
                    {"name": "type", "valueCode": "boolean"},
                    {"name": "code", "valueCoding": {"code": "a"}},
                    {"name": "code", "valueCoding": {"code": "b"}},
                ]},
            ]},
        ),
        operation(
            "add", "Questionnaire.item[0].item[0]", name="enableWhen",
            value={"part": [
                {"name": "question", "valueString": "1"},
                {"name": "operator", "valueCode": "exists"},
                {"name": "answer", "valueBoolean": True},
            ]},
        ),
    )  # fmt: skip
    child = out["item"][0]["item"][0]
    assert child["code"] == [{"code": "a"}, {"code": "b"}]
    assert child["enableWhen"] == [{"question": "1", "operator": "exists", "answerBoolean": True}]
    assert validate_structure(out) == []


def test_data_type_element_and_contained_resource() -> None:
    request = {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": "Patient/1"}, "medicationCodeableConcept": {"text": "m"},
        "dosageInstruction": [{"timing": {"code": {"text": "BID"}}}],
    }  # fmt: skip
    out = patched(
        request,
        operation(
            "add", "MedicationRequest.dosageInstruction[0].timing", name="repeat",
            value={"part": [
                {"name": "frequency", "valueInteger": 2},
                {"name": "period", "valueDecimal": FhirDecimal("1")},
                {"name": "periodUnit", "valueCode": "d"},
            ]},
        ),
        operation(
            "add", "MedicationRequest", name="contained",
            value={"resource": {"resourceType": "Medication", "id": "m1"}},
        ),
        operation("add", "MedicationRequest.contained.ofType(Medication)", name="status",
                  value={"valueCode": "active"}),
    )  # fmt: skip
    assert out["dosageInstruction"][0]["timing"]["repeat"]["frequency"] == 2
    assert out["contained"] == [{"resourceType": "Medication", "id": "m1", "status": "active"}]
    assert validate_structure(out) == []


def test_delete_of_nothing_is_not_an_error_and_the_input_is_never_changed() -> None:
    original = copy.deepcopy(PATIENT)
    assert patched(PATIENT, operation("delete", "Patient.identifier.where(value = 'none')")) == (
        PATIENT
    )
    operations = parse_fhirpath_patch(
        parameters(
            operation(
                "add", "Patient", name="identifier", value={"valueIdentifier": {"value": "9"}}
            )
        )
    )
    first = apply_fhirpath_patch(PATIENT, operations)
    second = apply_fhirpath_patch(PATIENT, operations)
    first["identifier"][-1]["value"] = "changed"
    assert second["identifier"][-1] == {"value": "9"} and original == PATIENT


def test_all_or_nothing() -> None:
    with pytest.raises(UnprocessableResource) as caught:
        patched(
            PATIENT,
            operation("delete", "Patient.birthDate"),
            operation("replace", "Patient.gender", value={"valueCode": "male"}),
        )
    assert caught.value.issues[0].expression == ("Parameters.parameter[1]",)
    assert "Patient.gender" in caught.value.diagnostics and PATIENT["birthDate"] == "1970-01-01"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ops", "problem"),
    [
        ([operation("replace", "Patient.gender", value={"valueCode": "x"})], "matches no element"),
        ([operation("delete", "Patient.identifier")], "matches 2 elements"),
        ([operation("replace", "Patient.identifier.system", value={"valueUri": "x"})], "matches 2"),
        (
            [operation("add", "Patient.name.given", name="id", value={"valueString": "x"})],
            "matches 2",
        ),
        ([operation("add", "Patient", name="birthDate", value={"valueDate": "2000"})], "already"),
        (
            [operation("insert", "Patient.birthDate", index=0, value={"valueDate": "2"})],
            "not a list",
        ),
        ([operation("move", "Patient.identifier", source=2, destination=0)], "source 2 is out"),
        ([operation("move", "Patient.identifier", source=0, destination=2)], "destination 2"),
        ([operation("delete", "Patient")], "the resource itself"),
        (
            [operation("replace", "Patient.identifier.count()", value={"valueInteger": 1})],
            "can change",
        ),
        ([operation("delete", "Patient.identifier.where(%resource.identifier.system)")], "several"),
    ],
)
def test_operations_that_cannot_apply_are_422(ops: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(UnprocessableResource) as caught:
        patched(PATIENT, *ops)
    assert problem in caught.value.diagnostics
    assert caught.value.issues[0].expression[0] == "Parameters.parameter[0]"
    assert f"at '{ops[0]['part'][1]['valueString']}'" in caught.value.diagnostics


NOPE = {"name": "nope", "valueCode": "x"}


@pytest.mark.parametrize(
    ("op", "expression", "problem"),
    [
        (
            operation("add", "Patient", name="maritalStatus", value={"valueString": "x"}),
            "Parameters.parameter[0].part[3]",
            "Patient.maritalStatus (CodeableConcept) cannot hold a string",
        ),
        (
            operation("add", "Patient", name="contact", value={"valueHumanName": {}}),
            "Parameters.parameter[0].part[3]",
            "cannot hold a HumanName",
        ),
        (
            operation("add", "Patient", name="deceasedBoolean", value={"valueDateTime": "2020"}),
            "Parameters.parameter[0].part[3]",
            "'deceasedBoolean' does not match a dateTime",
        ),
        (
            operation("add", "Patient", name="contact", value={"part": [NOPE]}),
            "Parameters.parameter[0].part[3].part[0]",
            "'nope' is not an element here",
        ),
        (
            operation("add", "Patient", name="contact", value={"part": [
                {"name": "gender", "valueCode": "male"}, {"name": "gender", "valueCode": "male"},
            ]}),
            "Parameters.parameter[0].part[3].part[1]",
            "given twice",
        ),
        (
            operation("add", "Patient", name="contained", value={"valueString": "x"}),
            "Parameters.parameter[0].part[3]",
            "cannot hold a string",
        ),
    ],
)  # fmt: skip
def test_a_value_of_the_wrong_type_is_422_naming_the_part(
    op: dict[str, Any], expression: str, problem: str
) -> None:
    with pytest.raises(UnprocessableResource) as caught:
        patched(PATIENT, op)
    assert caught.value.issues[0].expression == ("Parameters.parameter[0]", expression)
    assert problem in caught.value.diagnostics


def test_unknown_elements_are_400_naming_the_part() -> None:
    with pytest.raises(InvalidRequest) as caught:
        patched(PATIENT, operation("delete", "Patient.nickname"))
    assert caught.value.issues[0].expression == ("Parameters.parameter[0].part[1]",)
    assert "'nickname' is not an element of Patient" in caught.value.diagnostics
    with pytest.raises(InvalidRequest) as named:
        patched(PATIENT, operation("add", "Patient", name="nickname", value={"valueString": "x"}))
    assert named.value.issues[0].expression == ("Parameters.parameter[0].part[2]",)
    with pytest.raises(InvalidRequest, match="not a FHIR type"):
        patched(PATIENT, operation("delete", "Patient.identifier.ofType(Nope)"))


def test_diagnostics_never_quote_values() -> None:
    secret = "SECRET-4711"
    resource = {**PATIENT, "identifier": [{"value": secret}, {"value": secret}]}
    attempts: list[dict[str, Any]] = [
        operation("replace", "Patient.identifier.value", value={"valueString": secret}),
        operation("add", "Patient", name="maritalStatus", value={"valueString": secret}),
        operation("add", "Patient", name="gender", value={"valueCoding": {"code": secret}}),
        operation("insert", "Patient.identifier", index=9, value={"valueString": secret}),
    ]
    for attempt in attempts:
        with pytest.raises(FhirError) as caught:
            patched(resource, attempt)
        assert secret not in str(caught.value.issues)
