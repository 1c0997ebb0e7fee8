"""Reading a batch or transaction Bundle into entries (http://hl7.org/fhir/R4/bundle.html).

Only what processing needs is checked here: the Bundle's type, the entry count limit and each
entry's request (method, url, the conditional headers). The resources themselves are validated
by the write pipeline when their entry is processed, and their errors name the entry.
Diagnostics never quote values of the Bundle (they may be personal data, RO-1.4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.core.errors import FhirError, InvalidRequest, Issue, PayloadTooLarge
from fhir_server.interactions.params import parse_instant

#: Bundle.type values this endpoint processes (http.html#transaction).
PROCESSED_TYPES = ("batch", "transaction")

#: entry.request.method values (http://hl7.org/fhir/R4/valueset-http-verb.html).
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")

#: Processing order of a transaction (http.html#trules): DELETE, POST, PUT/PATCH, GET/HEAD.
ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}

#: Default maximum number of entries in one Bundle (configurable, Settings.max_bundle_entries).
DEFAULT_MAX_ENTRIES = 10_000


@dataclass(slots=True)
class Entry:
    """One entry of the request Bundle, at position ``index``."""

    index: int
    full_url: str | None
    method: str
    url: str
    resource: dict[str, Any] | None
    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    if_none_exist: str | None = None

    @property
    def where(self) -> str:
        """The FHIRPath of the entry in the request Bundle."""
        return f"Bundle.entry[{self.index}]"

    @property
    def label(self) -> str:
        """How diagnostics name the entry: its position and fullUrl (a URL, not patient data)."""
        shown = f" (fullUrl {self.full_url})" if self.full_url else ""
        return f"entry {self.index}{shown}"

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True, slots=True)
class RequestBundle:
    type: str
    entries: list[Entry]


def read_bundle(body: object, max_entries: int = DEFAULT_MAX_ENTRIES) -> RequestBundle:
    """The Bundle's type and entries, or a 400 (413 past ``max_entries``) naming the element."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise InvalidRequest(
            "POST to the FHIR base takes a Bundle of type batch or transaction",
            expression=["resourceType"],
        )
    kind = body.get("type")
    if kind not in PROCESSED_TYPES:
        raise InvalidRequest(
            "Bundle.type must be batch or transaction to be processed at the FHIR base "
            "(other Bundles are stored with POST /Bundle)",
            expression=["Bundle.type"],
        )
    raw_entries = body.get("entry", [])
    if not isinstance(raw_entries, list):
        raise InvalidRequest("Bundle.entry must be a JSON array", expression=["Bundle.entry"])
    if len(raw_entries) > max_entries:
        raise PayloadTooLarge(
            f"The Bundle has {len(raw_entries)} entries; this server processes at most "
            f"{max_entries} in one batch or transaction (split it into several)",
            expression=["Bundle.entry"],
        )
    return RequestBundle(kind, [_entry(i, raw) for i, raw in enumerate(raw_entries)])


def _entry(index: int, raw: object) -> Entry:
    where = f"Bundle.entry[{index}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"entry {index} is not a JSON object", expression=[where])
    request = raw.get("request")
    if not isinstance(request, dict):
        raise InvalidRequest(
            f"entry {index} has no request (method and url)", expression=[f"{where}.request"]
        )
    method = request.get("method")
    if method not in METHODS:
        raise InvalidRequest(
            f"entry {index}: request.method must be one of {', '.join(METHODS)}",
            expression=[f"{where}.request.method"],
        )
    url = request.get("url")
    if not isinstance(url, str) or not url.strip():
        raise InvalidRequest(
            f"entry {index} has no request.url", expression=[f"{where}.request.url"]
        )
    full_url = raw.get("fullUrl")
    if full_url is not None and not isinstance(full_url, str):
        raise InvalidRequest(
            f"entry {index}: fullUrl must be a string", expression=[f"{where}.fullUrl"]
        )
    resource = raw.get("resource")
    if resource is not None and not isinstance(resource, dict):
        raise InvalidRequest(
            f"entry {index}: resource must be a JSON object", expression=[f"{where}.resource"]
        )
    entry = Entry(index, full_url, method, url.strip(), resource)
    for key in ("ifMatch", "ifNoneMatch", "ifModifiedSince", "ifNoneExist"):
        value = request.get(key)
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(
                f"entry {index}: request.{key} must be a string",
                expression=[f"{where}.request.{key}"],
            )
    entry.if_match = request.get("ifMatch")
    entry.if_none_match = request.get("ifNoneMatch")
    entry.if_modified_since = request.get("ifModifiedSince")
    entry.if_none_exist = request.get("ifNoneExist")
    if entry.if_modified_since is not None:
        try:
            parse_instant(entry.if_modified_since, "ifModifiedSince")
        except InvalidRequest:
            raise InvalidRequest(
                f"entry {index}: request.ifModifiedSince must be an instant",
                expression=[f"{where}.request.ifModifiedSince"],
            ) from None
    _check_resource_presence(entry)
    return entry


def _check_resource_presence(entry: Entry) -> None:
    if entry.method in ("POST", "PUT", "PATCH") and entry.resource is None:
        raise InvalidRequest(
            f"{entry.label}: a {entry.method} entry needs a resource",
            expression=[f"{entry.where}.resource"],
        )


def in_entry(entry: Entry, error: FhirError) -> list[Issue]:
    """The error's issues, located in the request Bundle: a resource's element path
    (``Patient.birthDate``) becomes ``Bundle.entry[3].resource.birthDate``, a request-level
    error points at the entry's request, and each diagnostic names the entry."""
    issues = []
    for issue in error.issues:
        expression = tuple(_locate(entry, e) for e in issue.expression) or (
            f"{entry.where}.request" if entry.resource is None else entry.where,
        )
        text = f"{entry.label[0].upper()}{entry.label[1:]} ({entry.method}): {issue.diagnostics}"
        issues.append(Issue(issue.severity, issue.code, text, expression))
    return issues


def _locate(entry: Entry, expression: str) -> str:
    if expression.startswith("Bundle.entry["):
        return expression
    kind = entry.resource.get("resourceType") if entry.resource is not None else None
    if isinstance(kind, str) and (expression == kind or expression.startswith(kind + ".")):
        return f"{entry.where}.resource{expression[len(kind) :]}"
    if expression.startswith(("request.", "fullUrl", "resource")):
        return f"{entry.where}.{expression.replace('resourceType', 'resource.resourceType')}"
    return f"{entry.where}.request"


def relocated(entry: Entry, error: FhirError) -> FhirError:
    """The same error (same kind, so the same HTTP status), its issues located in the Bundle."""
    kind = type(error)
    moved = kind.__new__(kind)  # no __init__: subclasses take their own arguments
    moved.__dict__.update(error.__dict__)
    moved.args = error.args
    moved.issues = tuple(in_entry(entry, error))
    return moved
