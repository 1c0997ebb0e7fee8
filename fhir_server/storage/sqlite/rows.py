"""Conversions between SQLite rows and port objects."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.storage.port import OutboxEvent, ResourceVersion

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_text(moment: datetime) -> str:
    """Fixed-width UTC text with microseconds: sorts like the instants it encodes."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, the unit of search index dates (search/model.py)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_text(text: str) -> datetime:
    """The instant :func:`to_text` wrote (fromisoformat reads that form ~20x faster than
    strptime; anything else goes through the strict format)."""
    if len(text) == 27 and text[10] == "T" and text[19] == "." and text[26] == "Z":
        return datetime.fromisoformat(text[:26]).replace(tzinfo=UTC)
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def version_from_row(
    resource_type: str, id: str, version: int, last_updated: str, method: str, body: bytes | None
) -> ResourceVersion:
    return ResourceVersion(
        resource_type=resource_type,
        id=id,
        version=version,
        last_updated=from_text(last_updated),
        method=method,
        body=bytes(body) if body is not None else None,
    )


def event_from_row(row: tuple[int, str, str, int, str, str, int]) -> OutboxEvent:
    seq, resource_type, id, version, interaction, occurred, attempts = row
    return OutboxEvent(seq, resource_type, id, version, interaction, from_text(occurred), attempts)
