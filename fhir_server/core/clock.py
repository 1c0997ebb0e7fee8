"""Clock and FHIR instant formatting. Injected so tests can be deterministic."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def to_instant(moment: datetime) -> str:
    """FHIR instant with millisecond precision in UTC, e.g. ``2026-11-23T07:12:33.123Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def to_http_date(moment: datetime) -> str:
    """RFC 9110 IMF-fixdate, for Last-Modified."""
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")
