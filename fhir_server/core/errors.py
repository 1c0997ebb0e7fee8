"""Typed errors of the core, independent of any protocol.

Each door maps them to its own answer: HTTP status + OperationOutcome (api/), HL7 ACK AE/AR with
ERR, DICOM failure status. Diagnostics say what was wrong and where (the FHIRPath of the element)
and never echo submitted values, which may be personal data (RO-1.4, GDPR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: Names the rule an issue reports (a constraint key such as ``pat-1``); the extension the HL7
#: validator and HAPI put on OperationOutcome.issue for the same purpose.
MESSAGE_ID_EXTENSION = "http://hl7.org/fhir/StructureDefinition/operationoutcome-message-id"


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome.issue: severity, IssueType code, what happened, where; ``key``: the
    invariant (StructureDefinition constraint key) that failed, if one did."""

    severity: str
    code: str
    diagnostics: str
    expression: tuple[str, ...] = field(default=())
    key: str | None = None

    def to_fhir(self) -> dict[str, object]:
        out: dict[str, object] = {"severity": self.severity, "code": self.code}
        if self.key:
            out["extension"] = [{"url": MESSAGE_ID_EXTENSION, "valueString": self.key}]
        if self.diagnostics:
            out["diagnostics"] = self.diagnostics
        if self.expression:
            out["expression"] = list(self.expression)
        return out


class FhirError(Exception):
    """Base of every error a user can cause. ``code`` is the OperationOutcome IssueType."""

    code = "exception"

    def __init__(
        self,
        diagnostics: str,
        *,
        expression: Sequence[str] = (),
        issues: Sequence[Issue] = (),
    ) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.issues: tuple[Issue, ...] = tuple(issues) or (
            Issue("error", self.code, diagnostics, tuple(expression)),
        )


class InvalidRequest(FhirError):
    """The request itself is malformed (bad JSON, wrong resourceType, id mismatch, bad header)."""

    code = "invalid"


class UnprocessableResource(FhirError):
    """The resource is well-formed JSON but violates the FHIR rules (structure, cardinality...)."""

    code = "invalid"


class ResourceNotFound(FhirError):
    code = "not-found"


class BlobNotFound(ResourceNotFound):
    """No blob is stored under ``key`` (a DICOM instance, an attachment), or the version being
    streamed was deleted part way. HTTP 404 like any resource not found."""

    def __init__(self, key: str) -> None:
        super().__init__("no blob is stored under the requested key")
        self.key = key


class ResourceGone(FhirError):
    """The resource was deleted; its history is kept."""

    code = "deleted"


class UnknownResourceType(FhirError):
    code = "not-supported"


class FeatureNotSupported(FhirError):
    """The request asks for a FHIR feature this server does not offer yet (HTTP 400)."""

    code = "not-supported"


class InteractionNotSupported(FhirError):
    """The interaction is not supported on this path (HTTP 405)."""

    code = "not-supported"


class VersionConflict(FhirError):
    """A concurrent write changed the resource first (HTTP 409)."""

    code = "conflict"


class ResourceConflict(FhirError):
    """The write conflicts with the state of the server (HTTP 409)."""

    code = "conflict"


class PreconditionFailed(FhirError):
    """If-Match (or another precondition) did not hold (HTTP 412)."""

    code = "conflict"


class UnsupportedMediaType(FhirError):
    code = "not-supported"


class NotAcceptable(FhirError):
    code = "not-supported"


class PayloadTooLarge(FhirError):
    code = "too-costly"


class Unauthenticated(FhirError):
    """No valid credentials: a missing, malformed, expired, revoked or foreign access token
    (HTTP 401 with ``WWW-Authenticate``)."""

    code = "login"


class Forbidden(FhirError):
    """The caller is known but its scopes or launch context do not allow this (HTTP 403)."""

    code = "forbidden"


class HookVeto(FhirError):
    """A PRE_STORE / PRE_COMMIT rule refused the write (business rule, HTTP 422)."""

    code = "business-rule"


class DanglingReference(UnprocessableResource):
    """A local reference of the resource names no current resource of the server (unknown or
    deleted), or a version that is not stored or is a deletion (referential integrity, HTTP 422
    like every unprocessable resource; HAPI answers 400). One issue per reference, whose
    ``expression`` is the referring element; ``sources`` holds, in the same order, the
    (type, id) of the resource each one is in (a unit of several writes: which write failed)."""

    code = "not-found"

    def __init__(
        self,
        diagnostics: str,
        *,
        sources: Sequence[tuple[str, str]] = (),
        issues: Sequence[Issue] = (),
    ) -> None:
        super().__init__(diagnostics, issues=issues)
        self.sources = tuple(sources)


class DeleteConflict(ResourceConflict):
    """A deletion refused because other current resources refer to the resource (referential
    integrity, HTTP 409 as HAPI). ``target`` is the (type, id) whose deletion was refused,
    ``referrers`` the (type, id, element path) of the first references found, ``total`` how
    many references there are in all."""

    def __init__(
        self,
        diagnostics: str,
        *,
        target: tuple[str, str],
        referrers: Sequence[tuple[str, str, str]],
        total: int,
        issues: Sequence[Issue] = (),
    ) -> None:
        super().__init__(diagnostics, issues=issues)
        self.target = target
        self.referrers = tuple(referrers)
        self.total = total


#: The HTTP status of each error kind (http://hl7.org/fhir/R4/http.html#Status). The REST door
#: answers with it, and batch/transaction responses carry it in ``entry.response.status``.
HTTP_STATUS: tuple[tuple[type[FhirError], int], ...] = (
    (InvalidRequest, 400),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (FeatureNotSupported, 400),
    (ResourceNotFound, 404),
    (UnknownResourceType, 404),
    (InteractionNotSupported, 405),
    (NotAcceptable, 406),
    (VersionConflict, 409),
    (ResourceConflict, 409),
    (ResourceGone, 410),
    (PreconditionFailed, 412),
    (PayloadTooLarge, 413),
    (UnsupportedMediaType, 415),
    (UnprocessableResource, 422),
    (HookVeto, 422),
)


def http_status(error: FhirError) -> int:
    for kind, status in HTTP_STATUS:
        if isinstance(error, kind):
            return status
    return 500
