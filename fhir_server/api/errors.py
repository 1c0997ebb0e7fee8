"""Core errors → HTTP status + OperationOutcome (http://hl7.org/fhir/R4/http.html#Status)."""

from __future__ import annotations

from typing import Any

from fhir_server.core import errors
from fhir_server.core.errors import FhirError, Issue

_STATUS: tuple[tuple[type[FhirError], int], ...] = (
    (errors.InvalidRequest, 400),
    (errors.FeatureNotSupported, 400),
    (errors.ResourceNotFound, 404),
    (errors.UnknownResourceType, 404),
    (errors.InteractionNotSupported, 405),
    (errors.NotAcceptable, 406),
    (errors.VersionConflict, 409),
    (errors.ResourceConflict, 409),
    (errors.ResourceGone, 410),
    (errors.PreconditionFailed, 412),
    (errors.PayloadTooLarge, 413),
    (errors.UnsupportedMediaType, 415),
    (errors.UnprocessableResource, 422),
    (errors.HookVeto, 422),
)


def status_of(error: FhirError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


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
