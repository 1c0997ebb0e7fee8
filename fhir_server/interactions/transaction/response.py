"""The response Bundle of a batch or transaction (http://hl7.org/fhir/R4/bundle.html,
http.html#transaction-response): one entry per request entry, in the same order, each with
``response.status`` (an HTTP status line), ``location``, ``etag`` and ``lastModified`` where they
apply, and the resource or an OperationOutcome as ``Prefer: return=`` asks.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

from fhir_server.core.clock import to_instant
from fhir_server.core.errors import FhirError, Issue, http_status
from fhir_server.interactions.bundles import bundle
from fhir_server.storage.port import ResourceVersion


def status_line(status: int) -> str:
    """``201`` → ``201 Created`` (entry.response.status starts with the 3-digit code)."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def outcome(issues: list[Issue] | tuple[Issue, ...]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_fhir() for issue in issues]}


def written_entry(
    base: str,
    version: ResourceVersion,
    status: int,
    preference: str,
    message: str,
) -> dict[str, Any]:
    """The response entry of a create, update, patch, or a conditional create that matched."""
    url = f"{version.resource_type}/{version.id}"
    response: dict[str, Any] = {"status": status_line(status)}
    if status == 201:
        response["location"] = f"{url}/_history/{version.version}"
    response["etag"] = version.etag
    response["lastModified"] = to_instant(version.last_updated)
    entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
    if preference == "representation" and version.body is not None:
        entry["resource"] = orjson.Fragment(version.body)
    elif preference == "OperationOutcome":
        response["outcome"] = outcome([Issue("information", "informational", message)])
    entry["response"] = response
    return entry


def deleted_entry(version: ResourceVersion | None, preference: str, message: str) -> dict[str, Any]:
    """A delete (``version`` is the tombstone, or None/the old state when nothing was deleted)."""
    response: dict[str, Any] = {"status": status_line(204)}
    if version is not None:
        response["etag"] = version.etag
        response["lastModified"] = to_instant(version.last_updated)
    if preference == "OperationOutcome":
        response["status"] = status_line(200)
        response["outcome"] = outcome([Issue("information", "informational", message)])
    return {"response": response}


def read_entry(
    base: str, version: ResourceVersion | None, body: bytes | dict[str, Any], status: int = 200
) -> dict[str, Any]:
    """A GET entry's answer: a resource (read, vread) or a Bundle (search, history, metadata)."""
    response: dict[str, Any] = {"status": status_line(status)}
    entry: dict[str, Any] = {}
    if version is not None:
        entry["fullUrl"] = f"{base}/{version.resource_type}/{version.id}"
        response["etag"] = version.etag
        response["lastModified"] = to_instant(version.last_updated)
    if status != 304:
        entry["resource"] = orjson.Fragment(body) if isinstance(body, bytes) else body
    entry["response"] = response
    return entry


def failed_entry(error: FhirError) -> dict[str, Any]:
    """A batch entry that failed: its status and the OperationOutcome saying why."""
    return {
        "response": {
            "status": status_line(http_status(error)),
            "outcome": outcome(error.issues),
        }
    }


def response_bundle(kind: str, timestamp: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``batch-response`` or ``transaction-response``."""
    return bundle(f"{kind}-response", timestamp, [], entries)
