"""Problems found by validation, turned into OperationOutcome issues.

Diagnostics are written here from element names, FHIR type codes and fixed texts only. pydantic's
messages are never used: they may quote the submitted value, which may be personal data (RO-1.4,
GDPR). Issue codes follow http://hl7.org/fhir/R4/valueset-issue-type.html: ``structure`` (unknown
element, wrong JSON shape), ``required`` (missing mandatory element), ``value`` (bad primitive
value), ``invalid`` (anything else).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fhir_server.core.errors import Issue
from fhir_server.core.models import ModelError
from fhir_server.validation import schema
from fhir_server.validation.paths import Loc, Resolved, resolve, safe_name

UNKNOWN_TYPE = "not a FHIR R4 resource type"
MISSING_TYPE = "missing required element 'resourceType'"

_MISSING = frozenset({"missing", "model_field_validation.missing"})
_NOT_OBJECT = frozenset(
    {"model_validation_format", "json_invalid", "model_type", "dict_type", "model_attributes_type"}
)
_FIRST_FIELD = re.compile(r"\['([A-Za-z0-9_]+)'")


@dataclass(frozen=True, slots=True)
class Problem:
    """One error at a JSON location: IssueType code and what was expected (no values)."""

    loc: Loc
    code: str
    detail: str


def missing(name: str) -> str:
    return f"missing required element '{name}'"


def unknown(key: str) -> str:
    return f"unknown element '{safe_name(key)}'"


def _choice(err: ModelError, res: Resolved) -> tuple[str, str, str | None] | None:
    """fhir.resources' choice checks raise ValueError naming the field list (names only)."""
    cause = str(err.ctx.get("error", ""))
    first = _FIRST_FIELD.search(cause)
    if first is None or res.node is None:
        return None
    element = res.node.elements.get(first.group(1))
    if element is None:
        return None
    label = f"{element.name}[x]"
    if cause.startswith("Any of one field value is expected"):
        return "structure", f"only one of '{label}' may be present", None
    if cause.startswith("Expect any of field value"):
        return "required", missing(label), element.name
    return None


def translate(err: ModelError, res: Resolved) -> tuple[str, str, str | None]:
    """(IssueType code, diagnostics detail, child element to point at) for an R4B error."""
    if err.type == "extra_forbidden":
        return "structure", unknown(res.key or ""), None
    if err.type in _MISSING:
        name = res.element.name if res.element else safe_name(res.key or "")
        return "required", missing(name), None
    if err.type == "value_error" and (choice := _choice(err, res)) is not None:
        return choice
    if err.type == "list_type":
        return "structure", "expected a JSON array", None
    if err.type in _NOT_OBJECT:
        return "structure", "expected a JSON object", None
    if res.element is not None and res.element.primitive is not None:
        return "value", res.element.primitive.describe(), None
    return "invalid", f"invalid content ({err.type})", None


def to_issue(problem: Problem, root: schema.Node, resource: object) -> Issue:
    """The OperationOutcome issue of a problem, its location written as FHIRPath."""
    expression = resolve(root, resource, problem.loc).expression
    return Issue("error", problem.code, f"{expression}: {problem.detail}", (expression,))
