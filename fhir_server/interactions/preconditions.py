"""Version preconditions (http://hl7.org/fhir/R4/http.html#concurrency, #cread): the ETag in
``If-Match`` and the conditional read headers. REST carries them as HTTP headers, a Bundle entry
as ``request.ifMatch``, ``ifNoneMatch`` and ``ifModifiedSince``; both read them here."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime

from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions.params import parse_instant
from fhir_server.storage.port import ResourceVersion

_ETAG = re.compile(r'\s*(?:W/)?"?([0-9]+)"?\s*')


def parse_if_match(value: str | None, where: str = "If-Match") -> int | None:
    """``W/"3"`` → 3."""
    if value is None:
        return None
    match = _ETAG.fullmatch(value)
    if match is None:
        raise InvalidRequest(
            f'{where} must be the ETag of a version, e.g. W/"3"',
            expression=[where] if where.startswith("request.") else [],
        )
    return int(match.group(1))


def not_modified(
    version: ResourceVersion, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """Conditional read: the client's copy is current. ``if_modified_since`` is an HTTP date
    (a header) or a FHIR instant (a Bundle entry's ``request.ifModifiedSince``)."""
    if if_none_match is not None:
        tags = [tag.strip() for tag in if_none_match.split(",")]
        return "*" in tags or any(
            (m := _ETAG.fullmatch(tag)) is not None and int(m.group(1)) == version.version
            for tag in tags
        )
    if if_modified_since is not None:
        since = _moment(if_modified_since)
        return since is not None and version.last_updated.replace(microsecond=0) <= since
    return False


def _moment(value: str) -> datetime | None:
    """An HTTP date, or a FHIR instant; None if it is neither."""
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        pass
    try:
        return parse_instant(value, "ifModifiedSince")
    except InvalidRequest:
        return None
