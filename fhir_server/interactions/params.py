"""Parsing of the request parameters the core understands (search.html#count, http.html#history).

Errors name the parameter and say what was expected, never echoing the value back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from fhir_server.core.errors import InvalidRequest

Params = Sequence[tuple[str, str]]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_DATE_ONLY = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


def single(params: Params, name: str) -> str | None:
    """The value of a parameter that may appear at most once."""
    values = [value for key, value in params if key == name]
    if len(values) > 1:
        raise InvalidRequest(f"Parameter '{name}' may appear only once")
    return values[0] if values else None


def reject_unknown(params: Params, allowed: Iterable[str], where: str) -> None:
    known = set(allowed)
    unknown = sorted({key for key, _ in params if key not in known})
    if unknown:
        names = ", ".join(f"'{name}'" for name in unknown)
        supported = ", ".join(sorted(known)) or "none"
        raise InvalidRequest(
            f"Unknown or unsupported parameter {names} for {where}; supported: {supported}"
        )


def parse_count(value: str | None) -> int:
    """``_count``: a non-negative integer; values above the maximum are lowered to it."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit():
        raise InvalidRequest("Parameter '_count' must be a non-negative integer")
    return min(int(value), MAX_PAGE_SIZE)


def parse_instant(value: str | None, name: str) -> datetime | None:
    """An instant, or a date (midnight UTC). R4 wants a time zone on an instant; one without is
    read as UTC rather than refused, as the servers clients know do."""
    if value is None:
        return None
    text = value.strip()
    if _DATE_ONLY.fullmatch(text):
        parts = [int(p) for p in text.split("-")] + [1, 1]
        try:
            return datetime(parts[0], parts[1], parts[2], tzinfo=UTC)
        except ValueError:
            pass
    elif _INSTANT.fullmatch(text):
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    raise InvalidRequest(
        f"Parameter '{name}' must be an instant (e.g. 2026-01-31T10:00:00Z; without a time zone "
        "it is read as UTC) or a date (YYYY, YYYY-MM or YYYY-MM-DD)"
    )
