"""The R4/R4B gap list: complete for resources, each entry reasoned, each defect handled."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core import models, r4
from fhir_server.validation import r4_gaps, validate_structure
from tests.unit.validation.r4_r4b_diff import diff_model

# Models of datatypes, compared with the R4 datatype definitions in the integration tests.
DATATYPE_MODELS = {"Extension", "ElementDefinition", "ElementDefinitionExample"}


def resource_diff(resource_type: str) -> list[tuple[str, str, str]]:
    return diff_model(
        lambda path: r4.children(resource_type, path), resource_type, resource_type, set()
    )


def test_fallback_types_are_exactly_the_r4_types_without_a_faithful_r4b_model() -> None:
    unfaithful = {
        rt
        for rt in r4.resource_types()
        if models.model_class(rt) is None
        or any(
            (model, name) not in r4_gaps.R4B_ONLY_ELEMENTS for model, name, _ in resource_diff(rt)
        )
    }
    assert unfaithful == set(r4_gaps.FALLBACK_TYPES)


def test_resource_level_differences_of_faithful_models_are_listed() -> None:
    found = {
        (model, name)
        for rt in r4.resource_types() - set(r4_gaps.FALLBACK_TYPES)
        for model, name, what in resource_diff(rt)
    }
    listed = {key for key in r4_gaps.R4B_ONLY_ELEMENTS if key[0] not in DATATYPE_MODELS}
    assert found == listed


def test_every_entry_is_reasoned_on_one_line() -> None:
    reasons = [
        *r4_gaps.FALLBACK_TYPES.values(),
        *r4_gaps.R4B_ONLY_ELEMENTS.values(),
        *r4_gaps.R4B_MISSING_PRIMITIVE_EXTENSIONS.values(),
        *(reason for _, reason in r4_gaps.R4B_LAX_REQUIRED.values()),
        *(f.reason for f in r4_gaps.R4B_ERROR_FILTERS),
        *r4_gaps.R4B_LENIENCIES.values(),
    ]
    assert all(reason.strip() and "\n" not in reason for reason in reasons)
    assert all(f.reference.startswith("http") for f in r4_gaps.R4B_ERROR_FILTERS)
    assert len({f.name for f in r4_gaps.R4B_ERROR_FILTERS}) == len(r4_gaps.R4B_ERROR_FILTERS)


def test_error_filters_match_on_type_and_position() -> None:
    by_name = {f.name: f for f in r4_gaps.R4B_ERROR_FILTERS}
    primitive_ext = by_name["primitive-extension-on-extension-value"]
    assert primitive_ext.matches("extra_forbidden", "Extension", "_valueString", "string", {})
    assert not primitive_ext.matches("extra_forbidden", "Patient", "_valueString", "string", {})
    assert not primitive_ext.matches("extra_forbidden", "Extension", "_foo", None, {})
    assert not primitive_ext.matches("missing", "Extension", "_valueString", "string", {})
    code = by_name["code-unicode-whitespace"]
    assert code.matches("string_pattern_mismatch", "Patient", "gender", "code", {})
    assert not code.matches("string_pattern_mismatch", "Patient", "id", "id", {})
    nulls = by_name["null-array-item"]
    assert nulls.matches("list_type", "Patient", "name", None, {"field": "name"})
    assert not nulls.matches("list_type", "Patient", "name", None, {})


def extension(**value: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "extension": [{"url": "http://x", **value}]}


@pytest.mark.parametrize(
    "resource",
    [
        extension(valueString="a", _valueString={"id": "v1"}),
        extension(_valueCode={"extension": [{"url": "http://y", "valueString": "why"}]}),
        extension(valueMeta={"versionId": "1", "tag": [{"code": "x"}]}),
        extension(valueUuid="urn:uuid:c757873d-ec9a-1326-a141-556f43239520"),
        {
            "resourceType": "StructureDefinition",
            "url": "http://x",
            "name": "x",
            "status": "draft",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "differential": {"element": [{"path": "Patient", "fixedMeta": {"versionId": "1"}}]},
        },
        {
            "resourceType": "CodeSystem",
            "status": "draft",
            "content": "complete",
            "concept": [{"code": "CHEST\u00a0"}, {"code": "\u00a0"}],
        },
    ],
)
def test_valid_r4_that_r4b_rejects_is_accepted(resource: dict[str, Any]) -> None:
    assert validate_structure(resource) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            extension(valueString="a", _valueString={"foo": 1}),
            [("structure", "Patient.extension[0].value.ofType(string).foo")],
        ),
        (
            extension(_valueString="a"),
            [("structure", "Patient.extension[0].value.ofType(string)")],
        ),
        (
            extension(_valueString={"extension": [{"valueString": "x"}]}),
            [("required", "Patient.extension[0].value.ofType(string).extension[0].url")],
        ),
        (
            extension(valueMeta={"lastUpdated": "today"}),
            [("value", "Patient.extension[0].value.ofType(Meta).lastUpdated")],
        ),
        (
            extension(_valueQuantity={"id": "x"}),
            [("structure", "Patient.extension[0]._valueQuantity")],
        ),
        (extension(_url={"id": "x"}), [("structure", "Patient.extension[0]._url")]),
        (
            extension(valueUuid="C757873D-EC9A-4326-A141-556F43239520"),
            [("value", "Patient.extension[0].value.ofType(uuid)")],
        ),
        (
            {
                "resourceType": "CodeSystem",
                "status": "draft",
                "content": "complete",
                "concept": [{"code": "a  b"}],
            },
            [("value", "CodeSystem.concept[0].code")],
        ),
    ],
)
def test_defect_handling_still_checks_the_content(
    resource: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert [(i.code, i.expression[0]) for i in validate_structure(resource)] == expected


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        (
            extension(valueCodeableReference={"concept": {"text": "x"}}),
            "Patient.extension[0].valueCodeableReference",
        ),
        (
            extension(valueRatioRange={"denominator": {"value": 1}}),
            "Patient.extension[0].valueRatioRange",
        ),
        (
            {
                "resourceType": "ActivityDefinition",
                "status": "draft",
                "subjectCanonical": "http://x",
            },
            "ActivityDefinition.subjectCanonical",
        ),
        (
            {
                "resourceType": "PlanDefinition",
                "status": "draft",
                "action": [{"subjectCanonical": "http://x"}],
            },
            "PlanDefinition.action[0].subjectCanonical",
        ),
    ],
)
def test_r4b_only_elements_are_unknown_in_r4(resource: dict[str, Any], expression: str) -> None:
    [issue] = validate_structure(resource)
    assert (issue.code, issue.expression) == ("structure", (expression,))
