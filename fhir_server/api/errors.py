"""Core errors → HTTP status + OperationOutcome (http://hl7.org/fhir/R4/http.html#Status)."""

from __future__ import annotations

from typing import Any

from fhir_server.core.errors import FhirError, Issue, http_status


def status_of(error: FhirError) -> int:
    """The HTTP status of a core error (one table, in the core: batch and transaction responses
    carry the same statuses in ``entry.response.status``)."""
    return http_status(error)


def operation_outcome(issues: tuple[Issue, ...] | list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [issue.to_fhir() for issue in issues]}


def internal_error(request_id: str) -> dict[str, Any]:
    return operation_outcome(
        [
            Issue(
                "fatal",
                "exception",
                f"The server failed to process the request (request id {request_id}); "
                "nothing was changed by it",
            )
        ]
    )
