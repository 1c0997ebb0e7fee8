"""The in-memory matcher (the congruence oracle) against docs/search.md, row by row.

Every expectation is worked out by hand from the documented rule, boundaries included, since a
wrong oracle would silently bless a wrong backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.search import ucum
from fhir_server.search.matcher import to_microseconds
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    DateEntry,
    NumberEntry,
    NumberValue,
    Prefix,
    QuantityEntry,
    QuantityValue,
    ReferenceEntry,
    ReferenceValue,
    StringValue,
    TokenEntry,
    TokenValue,
    UriEntry,
    UriValue,
)
from fhir_server.search.values import date_bounds, normalize_string
from tests.unit.search.matcher_helpers import (
    CODE,
    CODINGS,
    DATE,
    ID,
    IDENTIFIER,
    LOINC,
    NAME,
    NOW,
    PROBABILITY,
    PROFILE,
    SCT,
    SUBJECT,
    UCUM,
    V2_0203,
    VALUE_QUANTITY,
    check,
    date,
    dentry,
    num,
    qentry,
    qty,
    sentry,
    tok,
)

# --- token ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (tok("1234-5"), True),  # code: any system
        (tok("1234-5", LOINC), True),
        (tok("1234-5", SCT), False),
        (tok("1234-5", ""), False),  # |code: no system
        (tok("local", ""), True),
        (tok(None, LOINC), True),  # system|
        (tok(None, SCT), False),
        (tok("1234"), False),  # no prefix matching on codes
    ],
)
def test_token_forms(value: TokenValue, expected: bool) -> None:
    assert check(CODE, CODINGS, value) is expected


def test_token_values_are_ored() -> None:
    assert check(CODE, CODINGS, tok("x"), tok("local"))
    assert not check(CODE, CODINGS, tok("x"), tok("y"))


def test_token_text_is_a_normalised_prefix_of_the_text() -> None:
    entries = (TokenEntry(None, None, normalize_string("Glucose  Sérum")),)
    assert check(CODE, entries, tok("GLUCOSE se"), modifier="text")
    assert not check(CODE, entries, tok("serum"), modifier="text")


def test_token_not_matches_resources_without_the_parameter() -> None:
    assert check(CODE, (), tok("1234-5"), modifier="not")
    assert check(CODE, CODINGS, tok("9"), modifier="not")
    assert not check(CODE, CODINGS, tok("9"), tok("local"), modifier="not")
    assert not check(CODE, CODINGS, tok("1234-5", LOINC), modifier="not")
    assert check(CODE, CODINGS, tok("1234-5", SCT), modifier="not")


def test_token_of_type_needs_the_type_and_the_value() -> None:
    entries = (
        TokenEntry("urn:mrn", "123", None, V2_0203, "MR"),
        TokenEntry("urn:ssn", "999", None, V2_0203, "SS"),
    )

    def of_type(system: str | None, code: str, value: str) -> bool:
        return check(IDENTIFIER, entries, TokenValue(system, code, value), modifier="of-type")

    assert of_type(V2_0203, "MR", "123")
    assert of_type(None, "MR", "123")
    assert not of_type(V2_0203, "MR", "999")  # value of another identifier
    assert not of_type("http://other", "MR", "123")
    assert not of_type(V2_0203, "SS", "123")


def test_id_compares_the_resource_id() -> None:
    assert check(ID, (), tok("a"), tok("b"), id="b")
    assert not check(ID, (), tok("a"), id="b")
    assert check(ID, (), tok("a"), modifier="not", id="b")
    assert not check(ID, (), tok("b"), modifier="not", id="b")


@pytest.mark.parametrize("modifier", ["in", "not-in", "above", "below", "exact", "bogus"])
def test_unsupported_token_modifiers_are_rejected(modifier: str) -> None:
    with pytest.raises(InvalidRequest, match="not supported"):
        check(CODE, CODINGS, tok("x"), modifier=modifier)


# --- string ---------------------------------------------------------------------------------------


NAMES = (sentry("Émilie  Dürr"), sentry("Zoë"))


def test_string_is_a_normalised_prefix() -> None:
    s = StringValue
    assert check(NAME, NAMES, s("emilie d"))
    assert check(NAME, NAMES, s("ÉMILIE   DÜ"))
    assert check(NAME, NAMES, s("zoe"))
    assert not check(NAME, NAMES, s("durr"))  # not a prefix
    assert not check(NAME, NAMES, s("zoey"))


def test_string_exact_is_case_and_accent_sensitive() -> None:
    assert check(NAME, NAMES, StringValue("Zoë"), modifier="exact")
    assert not check(NAME, NAMES, StringValue("Zoe"), modifier="exact")
    assert not check(NAME, NAMES, StringValue("zoë"), modifier="exact")
    assert not check(NAME, NAMES, StringValue("Zo"), modifier="exact")


def test_string_contains_is_a_normalised_substring() -> None:
    assert check(NAME, NAMES, StringValue("DUR"), modifier="contains")
    assert check(NAME, NAMES, StringValue("ie d"), modifier="contains")
    assert not check(NAME, NAMES, StringValue("xy"), modifier="contains")


# --- date -----------------------------------------------------------------------------------------


def test_date_eq_needs_the_entry_inside_the_search_range_bounds_included() -> None:
    end_of_2020 = to_microseconds(datetime(2021, 1, 1, tzinfo=UTC)) - 1
    assert check(DATE, (DateEntry(end_of_2020, end_of_2020),), date("eq", "2020"))
    assert not check(DATE, (DateEntry(end_of_2020 + 1, end_of_2020 + 1),), date("eq", "2020"))
    assert check(DATE, (dentry("2020-01-01T00:00:00Z"),), date("eq", "2020"))
    assert check(DATE, (dentry("2020-03"),), date("eq", "2020"))


def test_date_precision_a_coarser_entry_is_not_within_a_finer_search() -> None:
    assert not check(DATE, (dentry("2020"),), date("eq", "2020-03"))
    assert check(DATE, (dentry("2020"),), date("ne", "2020-03"))
    assert check(DATE, (dentry("2020-03-04"),), date("eq", "2020-03"))
    assert not check(DATE, (dentry("2020-03-04"),), date("ne", "2020-03"))


@pytest.mark.parametrize(
    ("prefix", "entry", "expected"),
    [
        ("gt", "2020-12-31", False),  # high equal to the search high: not after
        ("gt", "2021-01-01", True),
        ("gt", "2020", False),
        ("gt", "2020-06/2021-02", True),  # a period reaching beyond
        ("ge", "2020", True),  # eq
        ("ge", "2019-06/2020-03", False),
        ("lt", "2020-01-01", False),
        ("lt", "2019-12-31", True),
        ("lt", "2019-06/2020-03", True),
        ("le", "2020-12-31", True),
        ("le", "2021-01-01", False),
        ("sa", "2021-01-01", True),
        ("sa", "2020-06/2021-02", False),  # overlaps: does not start after
        ("eb", "2019-12-31", True),
        ("eb", "2019-06/2020-03", False),
    ],
)
def test_date_prefixes(prefix: Prefix, entry: str, expected: bool) -> None:
    if "/" in entry:
        low, high = entry.split("/")
        target = DateEntry(date_bounds(low)[0], date_bounds(high)[1])
    else:
        target = dentry(entry)
    assert check(DATE, (target,), date(prefix, "2020")) is expected


def test_date_open_ends() -> None:
    since_2019 = DateEntry(date_bounds("2019")[0], MAX_INSTANT)
    until_2019 = DateEntry(MIN_INSTANT, date_bounds("2019")[1])
    assert check(DATE, (since_2019,), date("gt", "2030"))
    assert not check(DATE, (since_2019,), date("eq", "2030"))
    assert check(DATE, (since_2019,), date("ne", "2030"))
    assert not check(DATE, (since_2019,), date("lt", "2019"))
    assert check(DATE, (since_2019,), date("lt", "2019-06"))
    assert check(DATE, (until_2019,), date("lt", "1900"))
    assert check(DATE, (until_2019,), date("eb", "2020"))
    assert not check(DATE, (until_2019,), date("sa", "1900"))


def test_date_ap_widens_by_a_tenth_of_the_distance_to_now_at_least_a_day() -> None:
    day = timedelta(days=1)
    search = date("ap", "2025-12-31")  # touches "now" (2026-01-01): widened by one day
    just_inside = NOW + day - timedelta(microseconds=1)
    for moment, expected in [(just_inside, True), (NOW + day + timedelta(seconds=1), False)]:
        us = to_microseconds(moment)
        assert check(DATE, (DateEntry(us, us),), search) is expected
    # 2016: ten years before now (minus the year itself) -> widened by ~ nine years / 10
    search = date("ap", "2016")
    widen = (to_microseconds(NOW) - date_bounds("2016")[1]) // 10
    edge = date_bounds("2016")[1] + widen
    assert check(DATE, (DateEntry(edge, edge),), search)
    assert not check(DATE, (DateEntry(edge + 1, edge + 1),), search)


# --- number and quantity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        (num("eq", 100), 99.5, True),  # implicit range [99.5, 100.5)
        (num("eq", 100), 100.5, False),
        (num("ne", 100), 100.5, True),
        (num("ne", 100), 100.2, False),
        (num("gt", 100), 100.2, True),  # other prefixes use the exact value
        (num("gt", 100), 100, False),
        (num("ge", 100), 100, True),
        (num("lt", 100), 99.9, True),
        (num("le", 100), 100, True),
        (num("le", 100), 100.1, False),
        (num("sa", 100), 100.1, True),
        (num("eb", 100), 99.9, True),
        (num("ap", 100), 110, True),
        (num("ap", 100), 110.5, False),
        (num("ap", 100), 90, True),
        (num("ap", -100), -109, True),
    ],
)
def test_number(value: NumberValue, target: float, expected: bool) -> None:
    assert check(PROBABILITY, (NumberEntry(target),), value) is expected


def test_number_ne_is_per_entry() -> None:
    entries = (NumberEntry(100), NumberEntry(7))
    assert check(PROBABILITY, entries, num("ne", 100))  # 7 is not 100
    assert not check(PROBABILITY, (NumberEntry(100),), num("ne", 100))
    assert not check(PROBABILITY, (), num("ne", 100))


def fake_canonical(value: float, code: str) -> tuple[float, str] | None:
    factors = {"mg": 0.001, "g": 1.0, "kg": 1000.0}
    return (value * factors[code], "g") if code in factors else None


@pytest.mark.parametrize(
    ("value", "entry", "expected"),
    [
        (qty("eq", 5), qentry(5.4), True),
        (qty("eq", 5), qentry(5.5), False),  # [4.5, 5.5)
        (qty("eq", 5), qentry(4.5), True),
        (qty("eq", 5), qentry(1, 4.5), True),  # a range touching the search range
        (qty("eq", 5), qentry(5.5, 9), False),
        (qty("ne", 5), qentry(5.5, 9), True),
        (qty("gt", 5), qentry(1, 6), True),  # high > value
        (qty("gt", 5), qentry(1, 5), False),
        (qty("ge", 5), qentry(1, 5), True),
        (qty("lt", 5), qentry(4.9, 9), True),  # low < value
        (qty("lt", 5), qentry(5, 9), False),
        (qty("le", 5), qentry(5, 9), True),
        (qty("gt", 5), qentry(-float("inf"), 5), False),  # "<=5 mg"
        (qty("lt", 5), qentry(3, float("inf")), True),
        (qty("ap", 10), qentry(11), True),
        (qty("ap", 10), qentry(11.5, 20), False),
        (qty("ap", 10), qentry(0, 9), True),
    ],
)
def test_quantity_ranges(value: QuantityValue, entry: QuantityEntry, expected: bool) -> None:
    assert check(VALUE_QUANTITY, (entry,), value) is expected


def test_quantity_units_match_code_or_unit_and_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ucum, "canonical", fake_canonical)
    entry = QuantityEntry(5, 5, "http://example.org/units", "pill", "tablet")
    assert check(VALUE_QUANTITY, (entry,), qty("eq", 5, "pill"))
    assert check(VALUE_QUANTITY, (entry,), qty("eq", 5, "tablet"))
    assert not check(VALUE_QUANTITY, (entry,), qty("eq", 5, "mg"))
    assert check(VALUE_QUANTITY, (entry,), qty("eq", 5, "pill", "http://example.org/units"))
    assert not check(VALUE_QUANTITY, (entry,), qty("eq", 5, "pill", UCUM))
    assert check(VALUE_QUANTITY, (entry,), qty("eq", 5))  # no unit: any
    assert not check(VALUE_QUANTITY, (entry,), qty("eq", 5, None, UCUM))


def test_quantity_with_a_ucum_unit_compares_canonical_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ucum, "canonical", fake_canonical)
    grams = QuantityEntry(2, 2, UCUM, "g", "g", 2.0, 2.0, "g")
    assert check(VALUE_QUANTITY, (grams,), qty("eq", 2000, "mg"))  # [1999.5, 2000.5) mg
    assert check(VALUE_QUANTITY, (grams,), qty("gt", 1, "g", UCUM))
    assert not check(VALUE_QUANTITY, (grams,), qty("gt", 2, "kg"))
    assert check(VALUE_QUANTITY, (grams,), qty("lt", 0.0021, "kg"))
    # a search unit with a canonical form ignores entries that have none
    raw = QuantityEntry(2, 2, None, "g", "g")
    assert not check(VALUE_QUANTITY, (raw,), qty("eq", 2, "g"))
    # the canonical path is only for UCUM (or unspecified) systems
    assert not check(VALUE_QUANTITY, (grams,), qty("eq", 2000, "mg", "http://other"))
    assert not check(VALUE_QUANTITY, (raw,), qty("eq", 2, "g", "http://other"))
    assert check(VALUE_QUANTITY, (QuantityEntry(2, 2, "http://other", "g", "g"),),
                 qty("eq", 2, "g", "http://other"))  # fmt: skip


# --- reference and uri --------------------------------------------------------------------------

REFS = (
    ReferenceEntry("Patient", "p1"),
    ReferenceEntry("Patient", "x9", url="http://other.example/fhir/Patient/x9"),
    ReferenceEntry(None, None, url="http://ex.org/Questionnaire/q", version="2"),
    ReferenceEntry(None, None, identifier_system="urn:mrn", identifier_value="123"),
)


@pytest.mark.parametrize(
    ("value", "modifier", "expected"),
    [
        (ReferenceValue("Patient", "p1"), None, True),
        (ReferenceValue("Group", "p1"), None, False),
        (ReferenceValue(None, "p1"), None, True),  # bare id: any type
        (ReferenceValue(None, "p2"), None, False),
        (ReferenceValue("Patient", "p1"), "Patient", True),
        (ReferenceValue("Group", "p1"), "Group", False),
        (ReferenceValue(None, None, url="http://other.example/fhir/Patient/x9"), None, True),
        (ReferenceValue(None, None, url="http://other.example/fhir/Patient/x8"), None, False),
        (ReferenceValue(None, None, url="http://ex.org/Questionnaire/q"), None, True),
        (ReferenceValue(None, None, url="http://ex.org/Questionnaire/q", version="2"), None, True),
        (ReferenceValue(None, None, url="http://ex.org/Questionnaire/q", version="1"), None, False),
        (ReferenceValue(None, None, None, None, "urn:mrn", "123"), "identifier", True),
        (ReferenceValue(None, None, None, None, None, "123"), "identifier", True),
        (ReferenceValue(None, None, None, None, "urn:ssn", "123"), "identifier", False),
        (ReferenceValue(None, None, None, None, "urn:mrn", "12"), "identifier", False),
    ],
)
def test_reference(value: ReferenceValue, modifier: str | None, expected: bool) -> None:
    assert check(SUBJECT, REFS, value, modifier=modifier) is expected


@pytest.mark.parametrize(
    ("modifier", "value", "expected"),
    [
        (None, "http://ex.org/sd/a", True),
        (None, "http://ex.org/sd", False),
        ("above", "http://ex.org/sd/a/b/c", True),  # stored uri is a prefix of the value
        ("above", "http://ex.org/sd", False),
        ("below", "http://ex.org/sd", True),  # value is a prefix of the stored uri
        ("below", "http://ex.org/sd/a/b/c", False),
    ],
)
def test_uri(modifier: str | None, value: str, expected: bool) -> None:
    entries = (UriEntry("http://ex.org/sd/a"), UriEntry("http://ex.org/sd/a/b"))
    assert check(PROFILE, entries, UriValue(value), modifier=modifier) is expected
