"""Structural validation of an R4 resource: the two entry points.

Structure means what the R4 StructureDefinitions and the JSON format say about shape
(http://hl7.org/fhir/R4/json.html, http://hl7.org/fhir/R4/validation.html#structure): known
elements, cardinality, datatypes and primitive formats. Terminology bindings, invariants
(FHIRPath constraints) and profiles are not checked here. Validation only reports; the
server stores the JSON it received.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.errors import Issue, UnprocessableResource
from fhir_server.validation import report, schema
from fhir_server.validation.walk import Walker


def _root_issue(code: str, detail: str) -> list[Issue]:
    return [Issue("error", code, f"resourceType: {detail}", ("resourceType",))]


def validate_structure(resource: dict[str, Any], engine: schema.Engine = "r4") -> list[Issue]:
    """Every structural error of the resource (and the resources it contains); [] if valid.
    ``engine`` "r4b" runs the fhir.resources cross-check as well (tests only: much slower)."""
    if not isinstance(resource, dict):
        return [Issue("error", "structure", "a resource must be a JSON object")]
    kind = resource.get("resourceType")
    node = schema.resource_node(kind, engine) if isinstance(kind, str) else None
    if node is None:
        if kind is None:
            return _root_issue("required", report.MISSING_TYPE)
        return _root_issue("invalid", report.UNKNOWN_TYPE)
    walker = Walker(engine)
    try:
        walker.resource(resource, node, ())
    except RecursionError:
        detail = f"{node.model}: nested too deeply to be validated"
        return [Issue("error", "too-costly", detail, (node.model,))]
    return [report.to_issue(problem, node, resource) for problem in walker.problems]


def check_structure(resource: dict[str, Any]) -> None:
    """Raise :class:`UnprocessableResource` (HTTP 422) listing every structural error."""
    issues = validate_structure(resource)
    if issues:
        count = f"{len(issues)} error{'s' if len(issues) > 1 else ''}"
        diagnostics = f"The resource is not valid FHIR R4 ({count}); first: {issues[0].diagnostics}"
        raise UnprocessableResource(diagnostics, issues=issues)
