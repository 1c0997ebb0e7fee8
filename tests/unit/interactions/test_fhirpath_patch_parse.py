"""FHIRPath Patch documents that are malformed: 400 InvalidRequest naming the part."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions.fhirpath_patch import parse_fhirpath_patch
from tests.unit.interactions.test_fhirpath_patch import operation, parameters

TYPE = {"name": "type", "valueCode": "replace"}
PATH = {"name": "path", "valueString": "Patient.gender"}
VALUE = {"name": "value", "valueCode": "male"}


def op(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": list(parts)}]}


P0 = "Parameters.parameter[0]"
TYPE_AT, PATH_AT, VALUE_AT = f"{P0}.part[0]", f"{P0}.part[1]", f"{P0}.part[2]"


def with_type(code: object, *parts: dict[str, Any]) -> dict[str, Any]:
    type_part = {"name": "type", "valueInteger" if isinstance(code, int) else "valueCode": code}
    return op(type_part, *parts)


def with_path(text: str) -> dict[str, Any]:
    return op(TYPE, {"name": "path", "valueString": text}, VALUE)


def with_value(**members: Any) -> dict[str, Any]:
    return op(TYPE, PATH, {"name": "value", **members})


INDEX_0 = {"name": "index", "valueInteger": 0}
INSERT_ITEM = with_type(
    "insert", {"name": "path", "valueString": "Patient.name[0]"}, VALUE, INDEX_0
)


@pytest.mark.parametrize(
    ("document", "expression", "problem"),
    [
        (None, None, "must be a Parameters resource"),
        ([], None, "must be a Parameters resource"),
        ({"resourceType": "Patient"}, None, "must be a Parameters resource"),
        ({"resourceType": "Parameters", "parameter": {}}, "Parameters.parameter", "array"),
        ({"resourceType": "Parameters", "parameter": [1]}, P0, "object"),
        (
            {"resourceType": "Parameters", "parameter": [{"name": "op", "part": [TYPE]}]},
            f"{P0}.name",
            "named 'operation'",
        ),
        ({"resourceType": "Parameters", "parameter": [{"name": "operation"}]}, P0, "its parts"),
        (op(TYPE, PATH, VALUE, {"name": "colour"}), f"{P0}.part[3]", "named one"),
        (op(TYPE, PATH, VALUE, "x"), f"{P0}.part[3]", "named one"),
        (op(TYPE, PATH, VALUE, PATH), f"{P0}.part[3]", "'path' is given twice"),
        (op(PATH, VALUE), P0, "'type' is required"),
        (with_type("copy", PATH), TYPE_AT, "one of"),
        (with_type(1, PATH), TYPE_AT, "one of"),
        (op(TYPE, VALUE), P0, "'path' is required for 'replace'"),
        (op(TYPE, PATH), P0, "'value' is required for 'replace'"),
        (with_type("add", PATH, VALUE), P0, "'name' is required for 'add'"),
        (with_type("insert", PATH, VALUE), P0, "'index' is required for 'insert'"),
        (
            with_type("move", PATH, {"name": "source", "valueInteger": 0}),
            P0,
            "'destination' is required for 'move'",
        ),
        (op(TYPE, PATH, VALUE, INDEX_0), f"{P0}.part[3]", "'index' does not apply to 'replace'"),
        (with_path(" "), PATH_AT, "non-empty"),
        (op(TYPE, {"name": "path", "valueCode": "a"}, VALUE), PATH_AT, "valueString"),
        (with_path("Patient.name["), PATH_AT, "ends too early"),
        (with_path("Patient..x"), PATH_AT, "supported FHIRPath"),
        (with_path("Patient.name.x()"), PATH_AT, "'x()' is not supported"),
        (with_path("Patient.managingOrganization.resolve().name"), PATH_AT, "resolve()"),
        (with_path("Patient.name | Patient.x"), PATH_AT, "operator '|'"),
        (INSERT_ITEM, PATH_AT, "must end with the name of the list element"),
        (with_value(), VALUE_AT, "exactly one of"),
        (with_value(valueCode="a", valueString="b"), VALUE_AT, "exactly one of"),
        (with_value(valueNope="a"), VALUE_AT, "'valueNope'"),
        (with_value(valueExtension={}), VALUE_AT, "'valueExtension'"),
        (with_value(valueCode={}), VALUE_AT, "JSON primitive"),
        (with_value(valueCoding="a"), VALUE_AT, "JSON object"),
        (with_value(part=[]), VALUE_AT, "non-empty"),
        (with_value(part=[{"valueCode": "a"}]), f"{VALUE_AT}.part[0]", "'name'"),
        (
            with_value(part=[{"name": "a", "part": [{"name": "b"}]}]),
            f"{VALUE_AT}.part[0].part[0]",
            "exactly one of",
        ),
        (with_value(resource={"id": "x"}), f"{VALUE_AT}.resource", "must be a resource"),
    ],
)
def test_malformed_patches_are_400_naming_the_part(
    document: object, expression: str | None, problem: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_fhirpath_patch(document)
    assert problem in caught.value.diagnostics
    assert caught.value.issues[0].expression == ((expression,) if expression else ())


@pytest.mark.parametrize("index", [-1, True, "1", 1.5, None])
def test_index_must_be_a_non_negative_integer(index: object) -> None:
    index_part: dict[str, Any] = {"name": "index", "valueInteger": index}
    document = op({"name": "type", "valueCode": "insert"}, PATH, VALUE, index_part)
    with pytest.raises(InvalidRequest) as caught:
        parse_fhirpath_patch(document)
    assert caught.value.issues[0].expression == ("Parameters.parameter[0].part[3]",)


def test_the_failing_operation_is_named_by_its_position() -> None:
    document = parameters(
        operation("delete", "Patient.gender"),
        operation("add", "Patient", name="gender"),
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_fhirpath_patch(document)
    assert caught.value.issues[0].expression == ("Parameters.parameter[1]",)


def test_well_formed_operations_parse_in_order() -> None:
    document = parameters(
        operation("delete", "Patient.gender"),
        operation("add", "Patient", name="gender", value={"valueCode": "male"}),
        operation("insert", "Patient.identifier", index=0, value={"valueIdentifier": {}}),
        operation("move", "Patient.identifier", source=1, destination=0),
        operation("replace", "Patient.active", value={"valueBoolean": True}),
    )
    parsed = parse_fhirpath_patch(document)
    assert [o.type for o in parsed] == ["delete", "add", "insert", "move", "replace"]
    assert parsed[1].name == "gender" and parsed[2].index == 0 and parsed[3].source == 1
    assert parse_fhirpath_patch({"resourceType": "Parameters"}) == ()
    unsigned = op(
        {"name": "type", "valueCode": "insert"}, PATH, VALUE,
        {"name": "index", "valueUnsignedInt": 2},
    )  # fmt: skip
    assert parse_fhirpath_patch(unsigned)[0].index == 2


def test_diagnostics_never_quote_the_patch() -> None:
    secret = "SECRET-4711"
    attempts = [
        op({"name": "type", "valueCode": secret}, PATH, VALUE),
        op(TYPE, PATH, {"name": "value", f"value{secret}": secret}),
        op(TYPE, PATH, VALUE, {"name": secret}),
    ]
    for attempt in attempts:
        with pytest.raises(InvalidRequest) as caught:
            parse_fhirpath_patch(attempt)
        assert secret not in str(caught.value.issues)
