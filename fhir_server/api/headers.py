"""HTTP headers of the FHIR REST API: ETag / If-Match, Prefer, Last-Modified, Location."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

from fhir_server.core.clock import to_http_date
from fhir_server.core.errors import InvalidRequest
from fhir_server.storage.port import ResourceVersion

_ETAG = re.compile(r'\s*(?:W/)?"?([0-9]+)"?\s*')
RETURN_PREFERENCES = ("minimal", "representation", "OperationOutcome")


def parse_if_match(value: str | None) -> int | None:
    """``If-Match: W/"3"`` → 3 (http.html#concurrency)."""
    if value is None:
        return None
    match = _ETAG.fullmatch(value)
    if match is None:
        raise InvalidRequest('If-Match must be the ETag of a version, e.g. W/"3"')
    return int(match.group(1))


def not_modified(
    version: ResourceVersion, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """Conditional read (http.html#cread): the client's copy is current."""
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or any(
            (m := _ETAG.fullmatch(tag)) is not None and int(m.group(1)) == version.version
            for tag in tags
        )
    if if_modified_since is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return version.last_updated.replace(microsecond=0) <= since
    return False


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
