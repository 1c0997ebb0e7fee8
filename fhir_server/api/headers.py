"""HTTP headers of the FHIR REST API: ETag / If-Match, Prefer, Last-Modified, Location."""

from __future__ import annotations

from fhir_server.core.clock import to_http_date
from fhir_server.storage.port import ResourceVersion

RETURN_PREFERENCES = ("minimal", "representation", "OperationOutcome")


def prefer(header: str | None) -> dict[str, str]:
    """``Prefer: return=minimal, handling=strict`` → {"return": "minimal", "handling": ...}."""
    found: dict[str, str] = {}
    for part in (header or "").split(","):
        for token in part.split(";"):
            key, _, value = token.strip().partition("=")
            if key:
                found[key.strip().lower()] = value.strip().strip('"')
    return found


def return_preference(header: str | None) -> str:
    value = prefer(header).get("return", "representation")
    return value if value in RETURN_PREFERENCES else "representation"


def lenient_handling(header: str | None) -> bool:
    """``Prefer: handling=lenient`` (search.html#errors): drop unknown search parameters instead of
    refusing them; strict is the default."""
    return prefer(header).get("handling") == "lenient"


def version_headers(version: ResourceVersion) -> dict[str, str]:
    return {"ETag": version.etag, "Last-Modified": to_http_date(version.last_updated)}


def location(base_url: str, version: ResourceVersion) -> str:
    return f"{base_url}/{version.resource_type}/{version.id}/_history/{version.version}"
