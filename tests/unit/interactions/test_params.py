"""Parameters the core parses itself: _count, _since (http://hl7.org/fhir/R4/http.html#history)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions.params import (
    MAX_PAGE_SIZE,
    parse_count,
    parse_instant,
    reject_unknown,
    single,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T10:00:00Z", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31T10:00:00.123+02:00",
         datetime(2026, 1, 31, 10, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))),
        ("2026-01-31T10:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31T10:00:00", datetime(2026, 1, 31, 10, tzinfo=UTC)),
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01", datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_since_forms(text: str, expected: datetime) -> None:
    assert parse_instant(text, "_since") == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "2026-02-30", "31/01/2026", ""])
def test_since_errors_name_the_parameter(text: str) -> None:
    with pytest.raises(InvalidRequest, match="_since") as error:
        parse_instant(text, "_since")
    assert text not in error.value.diagnostics or text == ""


def test_count() -> None:
    assert parse_count(None) == 50
    assert parse_count("0") == 0
    assert parse_count(str(MAX_PAGE_SIZE * 10)) == MAX_PAGE_SIZE
    for bad in ("-1", "1.5", "ten"):
        with pytest.raises(InvalidRequest, match="_count"):
            parse_count(bad)


def test_single_and_unknown() -> None:
    assert single([("a", "1")], "a") == "1" and single([], "a") is None
    with pytest.raises(InvalidRequest, match="only once"):
        single([("a", "1"), ("a", "2")], "a")
    with pytest.raises(InvalidRequest, match="'foo'"):
        reject_unknown([("foo", "x")], ("_count",), "history")
