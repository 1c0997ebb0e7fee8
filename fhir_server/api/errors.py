"""OperationOutcomes of the REST door (HTTP statuses: core/errors.py http_status)."""

from __future__ import annotations

from typing import Any

from fhir_server.core.errors import Issue


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
