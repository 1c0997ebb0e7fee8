"""Instants as the SQLite backend stores them (storage/sqlite/rows.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.storage.sqlite.rows import from_text, to_text


def test_from_text_reads_back_what_to_text_wrote_as_strptime_does() -> None:
    rng = random.Random(7)
    start = datetime(1900, 1, 1, tzinfo=UTC)
    for _ in range(5000):
        moment = start + timedelta(microseconds=rng.randrange(300 * 365 * 86_400 * 10**6))
        text = to_text(moment)
        read = from_text(text)
        assert (
            read == moment == datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        )
        assert read.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-13-01T00:00:00.123456Z",
        "2026-01-01 00:00:00.123456Z",
        "2026-01-01T00:00:00.12345xZ",
        "2026-01-01T00:00:00.-12345Z",
        "2026-01-01T00:00:00Z",
        "",
    ],
)
def test_from_text_refuses_other_forms(text: str) -> None:
    with pytest.raises(ValueError):
        from_text(text)
