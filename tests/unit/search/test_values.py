"""Search value normalisation (fhir_server.search.values) and UCUM conversion (ucum)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fhir_server.core.fhirjson import FhirDecimal
from fhir_server.search.model import MAX_INSTANT, MIN_INSTANT
from fhir_server.search.ucum import canonical
from fhir_server.search.values import (
    date_bounds,
    decimal_value,
    normalize_string,
    number_bounds,
    split_reference,
)


def micros(text: str) -> int:
    """An ISO instant (with zone) in microseconds since the epoch, for readable expectations."""
    moment = datetime.fromisoformat(text)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# --- strings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Émilie  Dürr", "emilie durr"),
        ("  PETER\tJames\n", "peter james"),
        ("Straße", "strasse"),  # casefold, not lower
        ("ﬁnn", "finn"),  # compatibility ligature
        ("Øyvind", "øyvind"),  # no decomposition exists: kept
        ("", ""),
    ],
)
def test_normalize_string(text: str, expected: str) -> None:
    assert normalize_string(text) == expected


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2020", "2020-01-01T00:00:00+00:00", "2020-12-31T23:59:59.999999+00:00"),
        ("2020-02", "2020-02-01T00:00:00+00:00", "2020-02-29T23:59:59.999999+00:00"),
        ("2021-02", "2021-02-01T00:00:00+00:00", "2021-02-28T23:59:59.999999+00:00"),
        ("2020-12", "2020-12-01T00:00:00+00:00", "2020-12-31T23:59:59.999999+00:00"),
        ("2020-02-03", "2020-02-03T00:00:00+00:00", "2020-02-03T23:59:59.999999+00:00"),
        (
            "2020-02-03T10:00:00+02:00",
            "2020-02-03T08:00:00+00:00",
            "2020-02-03T08:00:00.999999+00:00",
        ),
        (
            "2020-02-03T00:30:00-05:30",
            "2020-02-03T06:00:00+00:00",
            "2020-02-03T06:00:00.999999+00:00",
        ),
        ("2020-02-03T10:00:00Z", "2020-02-03T10:00:00+00:00", "2020-02-03T10:00:00.999999+00:00"),
        ("2020-02-03T10:00:00", "2020-02-03T10:00:00+00:00", "2020-02-03T10:00:00.999999+00:00"),
        ("2020-02-03T10:00", "2020-02-03T10:00:00+00:00", "2020-02-03T10:00:59.999999+00:00"),
        ("2020-02-03T10:00Z", "2020-02-03T10:00:00+00:00", "2020-02-03T10:00:59.999999+00:00"),
        (
            "2020-02-03T10:00:00.5",
            "2020-02-03T10:00:00.500000+00:00",
            "2020-02-03T10:00:00.599999+00:00",
        ),
        (
            "2020-02-03T10:00:00.123Z",
            "2020-02-03T10:00:00.123000+00:00",
            "2020-02-03T10:00:00.123999+00:00",
        ),
        (
            "2020-02-03T10:00:00.123456789Z",  # beyond microseconds: truncated
            "2020-02-03T10:00:00.123456+00:00",
            "2020-02-03T10:00:00.123456+00:00",
        ),
        ("1969-12-31", "1969-12-31T00:00:00+00:00", "1969-12-31T23:59:59.999999+00:00"),
        (
            "2020-01-01T00:00:00+14:00",
            "2019-12-31T10:00:00+00:00",
            "2019-12-31T10:00:00.999999+00:00",
        ),
    ],
)
def test_date_bounds_follow_precision_and_zone(text: str, low: str, high: str) -> None:
    assert date_bounds(text) == (micros(low), micros(high))


def test_date_bounds_at_the_edges_of_the_calendar() -> None:
    assert date_bounds("0001") == (MIN_INSTANT, micros("0001-12-31T23:59:59.999999+00:00"))
    assert date_bounds("9999")[1] == MAX_INSTANT
    assert date_bounds("9999-12")[1] == MAX_INSTANT
    assert date_bounds("9999-12-31T23:59:59.999999Z")[1] == MAX_INSTANT
    assert date_bounds("0001-01-01T00:00:00+01:00")[0] == MIN_INSTANT  # clamped, not below
    assert date_bounds("2016-12-31T23:59:60Z") == date_bounds("2016-12-31T23:59:59Z")  # leap


@pytest.mark.parametrize(
    "text",
    [
        "2021-02-30",
        "2020-13",
        "2020-00",
        "2020-01-32",
        "0000",
        "20",
        "2020-1-1",
        "2020-01-01T25:00Z",
        "2020-01-01T10:60Z",
        "2020-01-01T10:00:61Z",
        "2020-01-01T10:00:00+15:00",
        "2020-01-01T10",
        "2020-01-01 10:00",
        "2020-01-01T10:00:00.Z",
        "today",
        "",
    ],
)
def test_date_bounds_rejects_what_is_not_a_fhir_date(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        date_bounds(text)
    assert text not in str(caught.value) or not text


# --- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", (100.0, 99.5, 100.5)),
        ("100.00", (100.0, 99.995, 100.005)),
        ("1e2", (100.0, 50.0, 150.0)),  # one significant figure; see the module docstring
        ("1.0e2", (100.0, 95.0, 105.0)),
        ("5.40e-3", (0.0054, 0.005395, 0.005405)),
        ("-2.5", (-2.5, -2.55, -2.45)),
        ("0", (0.0, -0.5, 0.5)),
        ("+7", (7.0, 6.5, 7.5)),
    ],
)
def test_number_bounds(text: str, expected: tuple[float, float, float]) -> None:
    assert number_bounds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "abc", "1,5", "NaN", "Infinity", "1e", ".5", "5.", "--1"])
def test_number_bounds_rejects_non_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        number_bounds(text)


def test_decimal_value_accepts_json_numbers_only() -> None:
    assert decimal_value(3) == 3.0
    assert decimal_value(2.5) == 2.5
    assert decimal_value(FhirDecimal("1.50")) == 1.5
    assert decimal_value(Decimal("-1e3")) == -1000.0
    assert decimal_value(True) is None
    assert decimal_value("3") is None
    assert decimal_value(None) is None
    assert decimal_value(float("nan")) is None


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient/1", ("Patient", "1")),
        ("Patient/1/_history/2", ("Patient", "1")),
        ("http://other.org/fhir/Observation/a.b-c", ("Observation", "a.b-c")),
        ("https://x.org/fhir/Patient/1/_history/7", ("Patient", "1")),
        ("#contained", None),
        ("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", None),
        ("Patient?identifier=123", None),
        ("NotAType/1", None),
        ("Patient/", None),
        ("Patient/" + "x" * 65, None),
        ("1", None),
    ],
)
def test_split_reference(text: str, expected: tuple[str, str] | None) -> None:
    assert split_reference(text) == expected


# --- UCUM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code", "expected_value", "expected_code"),
    [
        (5, "mg/dL", 50.0, "g.m-3"),
        (0.05, "g/L", 50.0, "g.m-3"),
        (50, "ug/mL", 50.0, "g.m-3"),
        (70, "kg", 70000.0, "g"),
        (2, "[lb_av]", 907.18474, "g"),
        (1, "[oz_av]", 28.349523125, "g"),
        (250, "mL", 0.00025, "m3"),
        (1, "l", 0.001, "m3"),
        (90, "fL", 9e-14, "m3"),
        (180, "cm", 1.8, "m"),
        (70, "[in_i]", 1.778, "m"),
        (6, "[ft_i]", 1.8288, "m"),
        (5.5, "mmol/L", 5.5, "m-3.mol"),
        (140, "meq/L", 140.0, "m-3.eq"),
        (290, "mosm/kg", 0.00029, "g-1.osm"),
        (72, "/min", 1.2, "s-1"),
        (72, "{beats}/min", 1.2, "s-1"),
        (2, "h", 7200.0, "s"),
        (1, "d", 86400.0, "s"),
        (1, "wk", 604800.0, "s"),
        (1, "mo", 2629800.0, "s"),
        (1, "a", 31557600.0, "s"),
        (500, "ms", 0.5, "s"),
        (120, "mm[Hg]", 15998640.0, "g.m-1.s-2"),
        (16, "kPa", 16000000.0, "g.m-1.s-2"),
        (1, "Pa", 1000.0, "g.m-1.s-2"),
        (50, "%", 0.5, "1"),
        (3, "1", 3.0, "1"),
        (7, "{score}", 7.0, "1"),
        (4.5, "10*3/uL", 4.5e12, "m-3"),
        (4.5, "10*9/L", 4.5e12, "m-3"),
        (25, "kg/m2", 25000.0, "g.m-2"),
        (90, "mL/min/{1.73_m2}", 1.5e-06, "m3.s-1"),
        (3, "m[IU]/L", 3.0, "m-3.[IU]"),
        (40, "U/L", 40000.0, "m-3.U"),
        (9.81, "m/s2", 9.81, "m.s-2"),
        (37, "Cel", 310.15, "K"),
        (98.6, "[degF]", 310.15, "K"),
        (300, "K", 300.0, "K"),
    ],
)
def test_ucum_canonical(value: float, code: str, expected_value: float, expected_code: str) -> None:
    converted = canonical(value, code)
    assert converted is not None
    assert converted[0] == pytest.approx(expected_value, rel=1e-12)
    assert converted[1] == expected_code


def test_ucum_equal_quantities_in_different_units_agree() -> None:
    assert canonical(5, "mg/dL") == canonical(0.05, "g/L") == canonical(50, "mg/L")
    assert canonical(1, "10*3/uL") == canonical(1, "10*9/L")


@pytest.mark.parametrize("code", ["", "cd", "Cel/h", "cm[H2O]", "mg/(kg.d)", "foo", "kat", "m{"])
def test_ucum_unknown_units(code: str) -> None:
    assert canonical(1, code) is None


def test_ucum_open_range_ends_stay_infinite() -> None:
    assert canonical(float("inf"), "mg") == (math.inf, "g")
    assert canonical(float("-inf"), "mg/dL") == (-math.inf, "g.m-3")
    assert canonical(float("-inf"), "Cel") == (-math.inf, "K")
