"""search/comparisons.py: the prefix rules the storage backends render agree with the in-memory
matcher's predicates, and ``_id`` tests are checked once for both backends."""

from __future__ import annotations

import operator
import random
from collections.abc import Callable, Mapping

import pytest

from fhir_server.core.errors import FeatureNotSupported, InvalidRequest
from fhir_server.search.comparisons import (
    ONE_DAY,
    Alternative,
    Bound,
    End,
    IdComparison,
    Near,
    check_searchable,
    composite_value,
    date_alternatives,
    id_comparison,
    missing_wanted,
    number_alternatives,
    quantity_comparison,
)
from fhir_server.search.matcher_values import date_matches, number_matches, quantity_matches
from fhir_server.search.model import (
    Component,
    CompositeValue,
    DateEntry,
    DateValue,
    NumberEntry,
    NumberValue,
    ParamTest,
    Prefix,
    QuantityEntry,
    QuantityValue,
    StringValue,
    TokenValue,
)
from tests.unit.search.matcher_helpers import CODE, DATE, ID, sp

PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def holds(alternatives: list[Alternative], stored: Mapping[End, float]) -> bool:
    """The alternatives evaluated on one stored value, as a backend would."""

    def condition(c: Bound | Near) -> bool:
        if isinstance(c, Near):
            return abs(stored["value"] - c.center) <= c.margin
        return _OPS[c.op](stored[c.end], c.limit)

    return any(all(condition(c) for c in alternative) for alternative in alternatives)


def test_dates_agree_with_the_matcher() -> None:
    rng = random.Random(11)
    now = 50 * ONE_DAY
    points = [n * ONE_DAY // 2 for n in range(0, 200, 7)]
    for _ in range(3000):
        s_low, s_high = sorted(rng.sample(points, 2))
        t_low, t_high = sorted([rng.choice(points), rng.choice(points)])
        for prefix in PREFIXES:
            value = DateValue(prefix, s_low, s_high)
            expected = date_matches(value, DateEntry(t_low, t_high), now)
            got = holds(date_alternatives(value, now), {"low": t_low, "high": t_high})
            assert got == expected, (prefix, s_low, s_high, t_low, t_high)


def test_numbers_agree_with_the_matcher() -> None:
    rng = random.Random(12)
    for _ in range(2000):
        v = rng.choice([0.0, 1.0, 100.0, -2.5, 0.3]) * rng.choice([1, rng.uniform(0.5, 2)])
        half = rng.choice([0.5, 0.05, 0.005])
        stored = v + rng.choice([0.0, half, -half, 0.1 * v, -0.1 * v, 1.0, -1.0])
        for prefix in PREFIXES:
            value = NumberValue(prefix, v, v - half, v + half)
            expected = number_matches(value, NumberEntry(stored))
            assert holds(number_alternatives(value), {"value": stored}) == expected


def test_number_ap_is_one_near_condition() -> None:
    assert number_alternatives(NumberValue("ap", 10.0, 9.5, 10.5)) == [(Near(10.0, 1.0),)]


def test_quantities_as_written_agree_with_the_matcher() -> None:
    rng = random.Random(13)
    for _ in range(2000):
        v = rng.choice([1.0, 10.0, 100.0])
        t_low, t_high = sorted([v + rng.choice([-20, -1, -0.5, 0, 0.5, 1, 20]) for _ in "lh"])
        for prefix in PREFIXES:
            value = QuantityValue(prefix, v, v - 0.5, v + 0.5, None, "widgets")
            comparison = quantity_comparison(value)
            assert comparison.canonical is None
            entry = QuantityEntry(t_low, t_high, None, "widgets", None)
            got = holds(comparison.alternatives, {"low": t_low, "high": t_high})
            assert got == quantity_matches(value, entry), (prefix, v, t_low, t_high)


def test_quantities_with_a_ucum_unit_compare_canonical_forms() -> None:
    comparison = quantity_comparison(QuantityValue("gt", 5.0, 4.5, 5.5, None, "mg"))
    assert comparison.canonical == "g"
    [[bound]] = comparison.alternatives
    assert isinstance(bound, Bound) and (bound.end, bound.op) == ("high", ">")
    assert bound.limit == pytest.approx(0.005)
    # Another system, or a unit UCUM does not know: the units as written.
    other = quantity_comparison(QuantityValue("gt", 5.0, 4.5, 5.5, "http://x", "mg"))
    assert other.canonical is None
    assert quantity_comparison(QuantityValue("gt", 5, 4.5, 5.5, None, "widgets")).canonical is None


def _id(*ids: str, modifier: str | None = None) -> ParamTest:
    return ParamTest(ID, modifier, tuple(TokenValue(None, i) for i in ids))


def test_id_tests() -> None:
    assert id_comparison(_id("a", "b")) == IdComparison(None, ("a", "b"), False)
    assert id_comparison(_id("a", modifier="not")) == IdComparison(None, ("a",), True)
    assert id_comparison(ParamTest(ID, "missing", (), True)) == IdComparison(False)
    assert id_comparison(ParamTest(ID, None, (), False)) == IdComparison(True)


@pytest.mark.parametrize(
    ("test", "error"),
    [
        (ParamTest(ID, "missing", ()), InvalidRequest),
        (_id("a", modifier="exact"), FeatureNotSupported),
        (ParamTest(ID, None, (StringValue("a"),)), InvalidRequest),
        (ParamTest(ID, None, (TokenValue("s", None),)), InvalidRequest),
    ],
)
def test_id_tests_refused(test: ParamTest, error: type[Exception]) -> None:
    with pytest.raises(error):
        id_comparison(test)


def test_refusals_shared_by_the_compilers() -> None:
    with pytest.raises(FeatureNotSupported):
        check_searchable(ParamTest(sp("text", "special"), None, ()))
    check_searchable(ParamTest(CODE, None, ()))
    assert missing_wanted(ParamTest(CODE, "missing", (), True)) is True
    assert missing_wanted(ParamTest(CODE, "missing", (), False)) is False
    with pytest.raises(InvalidRequest):
        missing_wanted(ParamTest(CODE, "missing", ()))
    pair = sp("code-date", "composite", components=(Component(CODE, "code"), Component(DATE, "d")))
    both = CompositeValue((TokenValue(None, "a"), DateValue("eq", 0, 1)))
    assert composite_value(ParamTest(pair, None, (both,)), both) is both
    for wrong in (CompositeValue((TokenValue(None, "a"),)), TokenValue(None, "a")):
        with pytest.raises(InvalidRequest):
            composite_value(ParamTest(pair, None, (wrong,)), wrong)
