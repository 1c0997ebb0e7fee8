"""The leaves (:mod:`normalize`) of the date, number and quantity parameter types.

Choices recorded here: a Range in a number parameter gives one entry per bound present; a
quantity comparator opens the range on its side (``<5`` is ``[-inf, 5]``); Money is a quantity
whose code is the currency (system ``urn:iso:std:iso:4217``); a Timing is the span from its
first event (or bounds) to its last.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    DateEntry,
    IndexEntry,
    NumberEntry,
    QuantityEntry,
)
from fhir_server.search.ucum import canonical
from fhir_server.search.values import date_bounds, decimal_value

UCUM = "http://unitsofmeasure.org"
CURRENCY = "urn:iso:std:iso:4217"

NUMBERS = frozenset({"decimal", "integer", "positiveInt", "unsignedInt"})
DATES = frozenset({"date", "dateTime", "instant"})
QUANTITIES = frozenset({"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity"})
_CACHED = 4096  # entries per cache


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


# --- date ----------------------------------------------------------------------------------


def _bounds(value: Any) -> tuple[int, int] | None:
    return _text_bounds(value) if isinstance(value, str) else None


@lru_cache(maxsize=_CACHED)
def _text_bounds(text: str) -> tuple[int, int] | None:
    """Memoised: a resource often repeats a date (``authoredOn`` and ``executionPeriod.start``),
    and resources share them (a birth date, the day of a batch)."""
    try:
        return date_bounds(text)
    except ValueError:
        return None


def _period(period: Any) -> tuple[int, int] | None:
    if not isinstance(period, dict):
        return None
    start, end = _bounds(period.get("start")), _bounds(period.get("end"))
    if start is None and end is None:
        return None
    return (start[0] if start else MIN_INSTANT), (end[1] if end else MAX_INSTANT)


def date(value: Any) -> list[IndexEntry]:
    entry = _date_entry(value) if isinstance(value, str) else None
    return [] if entry is None else [entry]


@lru_cache(maxsize=_CACHED)
def _date_entry(text: str) -> DateEntry | None:
    span = _text_bounds(text)
    return None if span is None else DateEntry(*span)


def period_entry(value: Any) -> list[IndexEntry]:
    span = _period(value)
    return [] if span is None else [DateEntry(*span)]


def timing(value: Any) -> list[IndexEntry]:
    if not isinstance(value, dict):
        return []
    spans = [b for b in map(_bounds, _list(value.get("event"))) if b is not None]
    repeat = value.get("repeat")
    if isinstance(repeat, dict) and (bounds := _period(repeat.get("boundsPeriod"))):
        spans.append(bounds)
    if not spans:
        return []
    return [DateEntry(min(s[0] for s in spans), max(s[1] for s in spans))]


# --- number and quantity ---------------------------------------------------------------------


def _numbers(numbers: Iterable[Any]) -> list[IndexEntry]:
    return [NumberEntry(f) for number in numbers if (f := decimal_value(number)) is not None]


def number(value: Any) -> list[IndexEntry]:
    return _numbers((value,))


def number_of_value(value: Any) -> list[IndexEntry]:
    return _numbers((value.get("value"),)) if isinstance(value, dict) else []


def number_range(value: Any) -> list[IndexEntry]:
    if not isinstance(value, dict):
        return []
    return _numbers([b.get("value") for b in (value.get("low"), value.get("high")) if b])


def _with_canonical(
    low: float, high: float, system: str | None, code: str | None, unit: str | None
) -> QuantityEntry:
    """The entry, with its UCUM canonical form when the unit is UCUM: the code of a UCUM
    quantity, or (no system) its code or else its unit text when that parses as UCUM, as in
    ``{"value": 12, "unit": "a"}``. A code of another system is never read as UCUM."""
    ucum_code = code or unit if system == UCUM or system is None else None
    if ucum_code is not None:
        low_c, high_c = canonical(low, ucum_code), canonical(high, ucum_code)
        if low_c is not None and high_c is not None:
            return QuantityEntry(low, high, system, code, unit, low_c[0], high_c[0], low_c[1])
    return QuantityEntry(low, high, system, code, unit)


def quantity_number(value: Any) -> list[IndexEntry]:
    number = decimal_value(value)
    return [] if number is None else [QuantityEntry(number, number, None, None, None)]


def quantity(value: Any) -> list[IndexEntry]:
    if not isinstance(value, dict):
        return []
    number = decimal_value(value.get("value"))
    if number is None:
        return []
    low = high = number
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        low = float("-inf")
    elif comparator in (">", ">="):
        high = float("inf")
    system, code = _text(value.get("system")), _text(value.get("code"))
    return [_with_canonical(low, high, system, code, _text(value.get("unit")))]


def money(value: Any) -> list[IndexEntry]:
    if not isinstance(value, dict):
        return []
    number, currency = decimal_value(value.get("value")), _text(value.get("currency"))
    if number is None:
        return []
    return [QuantityEntry(number, number, CURRENCY if currency else None, currency, currency)]


def range_entry(value: Any) -> list[IndexEntry]:
    if not isinstance(value, dict):
        return []
    low_q, high_q = value.get("low"), value.get("high")
    low_q = low_q if isinstance(low_q, dict) else {}
    high_q = high_q if isinstance(high_q, dict) else {}
    low, high = decimal_value(low_q.get("value")), decimal_value(high_q.get("value"))
    if low is None and high is None:
        return []
    unit_of = low_q if low is not None else high_q
    system, code = _text(unit_of.get("system")), _text(unit_of.get("code"))
    entry = _with_canonical(
        float("-inf") if low is None else low,
        float("inf") if high is None else high,
        system,
        code,
        _text(unit_of.get("unit")),
    )
    other = high_q if low is not None else low_q
    if (_text(other.get("system")), _text(other.get("code"))) not in ((None, None), (system, code)):
        entry = QuantityEntry(entry.low, entry.high, system, code, entry.unit)  # mixed units
    return [entry]
