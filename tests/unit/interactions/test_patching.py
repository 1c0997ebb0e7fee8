"""The patch entry points: Content-Type over HTTP, Parameters or Binary in a Bundle entry."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from fhir_server.core.errors import InvalidRequest, UnprocessableResource, UnsupportedMediaType
from fhir_server.interactions.patching import (
    FHIRPATH_PATCH,
    JSON_PATCH,
    FhirPathPatch,
    JsonPatch,
    Patch,
    parse_bundle_patch,
    parse_http_patch,
    patch_format,
)
from fhir_server.interactions.table import PATCH_FORMATS
from tests.unit.interactions.test_fhirpath_patch import operation, parameters

PATIENT = {"resourceType": "Patient", "id": "p", "gender": "female"}
JSON_OPS = [{"op": "replace", "path": "/gender", "value": "male"}]
FHIRPATH_OPS = parameters(operation("replace", "Patient.gender", value={"valueCode": "male"}))


def binary(content_type: str, data: object) -> dict[str, Any]:
    return {"resourceType": "Binary", "contentType": content_type, "data": data}


def encoded(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


@pytest.mark.parametrize(
    ("content_type", "format_"),
    [
        ("application/json-patch+json", JSON_PATCH),
        ("Application/JSON-Patch+JSON; charset=utf-8", JSON_PATCH),
        ("application/fhir+json", FHIRPATH_PATCH),
        ("application/fhir+json; fhirVersion=4.0", FHIRPATH_PATCH),
        ("application/json", FHIRPATH_PATCH),
        ("application/json+fhir", FHIRPATH_PATCH),
    ],
)
def test_content_type_picks_the_format(content_type: str, format_: str) -> None:
    assert patch_format(content_type) == format_
    document = JSON_OPS if format_ == JSON_PATCH else FHIRPATH_OPS
    patch: Patch = parse_http_patch(content_type, document)
    assert patch.format == format_
    assert patch.apply(PATIENT) == {**PATIENT, "gender": "male"}
    assert PATIENT["gender"] == "female"


@pytest.mark.parametrize("content_type", [None, "", "application/fhir+xml", "text/plain"])
def test_other_content_types_are_415_naming_the_accepted_ones(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_http_patch(content_type, JSON_OPS)
    for accepted in ("application/json-patch+json", "application/fhir+json", "application/json"):
        assert accepted in caught.value.diagnostics


def test_the_body_must_match_the_content_type() -> None:
    with pytest.raises(InvalidRequest, match="JSON array"):
        parse_http_patch(JSON_PATCH, FHIRPATH_OPS)
    with pytest.raises(InvalidRequest, match="Parameters resource"):
        parse_http_patch(FHIRPATH_PATCH, JSON_OPS)
    with pytest.raises(InvalidRequest, match="Parameters resource"):
        parse_http_patch(FHIRPATH_PATCH, None)  # an empty body


def test_capability_statement_lists_both_formats() -> None:
    assert set(PATCH_FORMATS) == {JSON_PATCH, FHIRPATH_PATCH}


def test_bundle_entry_patches() -> None:
    fhirpath = parse_bundle_patch(FHIRPATH_OPS)
    assert isinstance(fhirpath, FhirPathPatch) and fhirpath.format == FHIRPATH_PATCH
    json_patch = parse_bundle_patch(binary("application/json-patch+json", encoded(JSON_OPS)))
    assert isinstance(json_patch, JsonPatch) and json_patch.format == JSON_PATCH
    assert json_patch.apply(PATIENT) == fhirpath.apply(PATIENT) == {**PATIENT, "gender": "male"}
    wrapped = binary("application/json-patch+json; charset=utf-8", "\n".join(encoded(JSON_OPS)))
    assert isinstance(parse_bundle_patch(wrapped), JsonPatch)


@pytest.mark.parametrize(
    "resource",
    [
        None,
        [],
        PATIENT,
        {"resourceType": "Binary", "data": encoded(JSON_OPS)},
        binary("application/json", encoded(JSON_OPS)),
        binary("application/json-patch+json", "not base64!"),
        binary("application/json-patch+json", base64.b64encode(b"[not json").decode()),
        binary("application/json-patch+json", 42),
    ],
)
def test_other_bundle_entry_resources_are_400_naming_resource(resource: object) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_bundle_patch(resource)
    assert caught.value.issues[0].expression == ("resource",)


def test_bundle_patch_errors_come_from_the_format() -> None:
    with pytest.raises(InvalidRequest, match="JSON array"):
        parse_bundle_patch(binary("application/json-patch+json", encoded({"op": "add"})))
    with pytest.raises(InvalidRequest) as caught:
        parse_bundle_patch({"resourceType": "Parameters", "parameter": [{"name": "x"}]})
    assert caught.value.issues[0].expression == ("Parameters.parameter[0].name",)
    patch = parse_bundle_patch(parameters(operation("delete", "Patient.name")))
    assert patch.apply(PATIENT) == PATIENT
    move = parse_bundle_patch(
        parameters(operation("move", "Patient.name", source=0, destination=0))
    )
    with pytest.raises(UnprocessableResource, match="source 0 is out of range"):
        move.apply(PATIENT)
