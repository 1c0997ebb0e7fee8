"""Building HTTP responses: FHIR JSON bodies, _pretty, write results with Prefer."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from fhir_server.api.errors import operation_outcome
from fhir_server.api.headers import location, version_headers
from fhir_server.core import fhirjson
from fhir_server.core.errors import Issue
from fhir_server.storage.port import ResourceVersion


class Negotiated:
    """What the client asked the answer to look like."""

    __slots__ = ("media_type", "pretty")

    def __init__(self, media_type: str, pretty: bool) -> None:
        self.media_type = media_type
        self.pretty = pretty

    def body(self, raw: bytes) -> bytes:
        if not self.pretty:
            return raw
        return fhirjson.dumps(fhirjson.loads(raw), pretty=True)

    def json(
        self, value: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return self.raw(fhirjson.dumps(value, pretty=self.pretty), status, headers)

    def raw(self, raw: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(
            self.body(raw) if self.pretty and raw else raw,
            status_code=status,
            headers=headers,
            media_type=f"{self.media_type}; charset=utf-8",
        )


def written(
    negotiated: Negotiated,
    base_url: str,
    version: ResourceVersion,
    *,
    created: bool,
    preference: str,
    what: str,
) -> Response:
    """201/200 for create, update and patch, with the body the Prefer header asked for."""
    status = 201 if created else 200
    headers = version_headers(version)
    if created:
        headers["Location"] = location(base_url, version)
    headers["Content-Location"] = location(base_url, version)
    if preference == "minimal":
        return Response(status_code=status, headers=headers)
    if preference == "OperationOutcome":
        message = f"{what} {version.resource_type}/{version.id} (version {version.version})"
        outcome = operation_outcome([Issue("information", "informational", message)])
        return negotiated.json(outcome, status, headers)
    assert version.body is not None
    return negotiated.raw(version.body, status, headers)
