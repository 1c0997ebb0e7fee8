"""What a search value asks of the stored values, stated once for the storage backends.

The prefix rules of docs/search.md (``eq``, ``ne``, ``gt``, ``lt``, ``ge``, ``le``, ``sa``, ``eb``,
``ap``) on dates, numbers and quantities, and the rules of an ``_id`` test, as plain data the
backends render: storage/sqlite/search_values.py into SQL, storage/mongo/search_values.py into
MongoDB field conditions. The in-memory matcher (search/matcher_values.py) states the same rules
as predicates; tests/unit/search/test_comparisons.py checks the two agree.

A stored date or quantity is a range ``[low, high]`` (both ends inclusive), a stored number one
``value``. Each function returns the *alternatives* (OR) under which a stored value matches; an
alternative is a tuple of :class:`Bound` / :class:`Near` conditions that must all hold (AND).
Alternatives stay separate so a backend can run each as its own index range scan, and the order
of conditions is the order a backend writes them in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fhir_server.core.errors import FeatureNotSupported, InvalidRequest
from fhir_server.search import ucum
from fhir_server.search.model import (
    CompositeValue,
    DateValue,
    NumberValue,
    ParamTest,
    Prefix,
    QuantityValue,
    SearchValue,
    TokenValue,
)

ONE_DAY = 86_400_000_000  # microseconds
UCUM = "http://unitsofmeasure.org"

#: Which stored value a condition is on: an end of a stored range, or a stored number.
End = Literal["low", "high", "value"]
Op = Literal["<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True)
class Bound:
    """``stored end <op> limit``."""

    end: End
    op: Op
    limit: float  # an int (microseconds) for dates


@dataclass(frozen=True, slots=True)
class Near:
    """``abs(stored value - center) <= margin``, computed in floating point (number ``ap``)."""

    center: float
    margin: float


Condition = Bound | Near
Alternative = tuple[Condition, ...]


def approximate_margin(low: int, high: int, now: int) -> int:
    """How far ``ap`` widens a date range on each side: 10 % of the distance between the range
    and now (0 when now lies inside it), at least one day."""
    distance = low - now if low > now else (now - high if high < now else 0)
    return max(ONE_DAY, distance // 10)


def date_alternatives(value: DateValue, now: int) -> list[Alternative]:
    """A stored date range against a searched one (``now`` anchors ``ap``)."""
    s_low, s_high = value.low, value.high
    within: Alternative = (
        Bound("low", ">=", s_low),
        Bound("low", "<=", s_high),
        Bound("high", "<=", s_high),
    )
    after: Alternative = (Bound("high", ">", s_high),)
    before: Alternative = (Bound("low", "<", s_low),)
    match value.prefix:
        case "eq":
            return [within]
        case "ne":
            return [before, after]
        case "gt":
            return [after]
        case "lt":
            return [before]
        case "ge":
            return [after, within]
        case "le":
            return [before, within]
        case "sa":
            return [(Bound("low", ">", s_high),)]
        case "eb":
            return [(Bound("high", "<", s_low),)]
        case "ap":
            margin = approximate_margin(s_low, s_high, now)
            return [(Bound("low", "<=", s_high + margin), Bound("high", ">=", s_low - margin))]


def number_alternatives(value: NumberValue) -> list[Alternative]:
    """A stored number against a searched one: ``eq``/``ne`` on the implicit range
    ``[low, high)`` of its precision, the other prefixes on the value as sent."""
    v = value.value
    match value.prefix:
        case "eq":
            return [(Bound("value", ">=", value.low), Bound("value", "<", value.high))]
        case "ne":
            return [(Bound("value", "<", value.low),), (Bound("value", ">=", value.high),)]
        case "gt" | "sa":
            return [(Bound("value", ">", v),)]
        case "lt" | "eb":
            return [(Bound("value", "<", v),)]
        case "ge":
            return [(Bound("value", ">=", v),)]
        case "le":
            return [(Bound("value", "<=", v),)]
        case "ap":
            return [(Near(v, 0.1 * abs(v)),)]


def range_alternatives(prefix: Prefix, v: float, s_low: float, s_high: float) -> list[Alternative]:
    """Quantity rule on a stored range [low, high] (docs/search.md): eq when it meets
    [s_low, s_high); gt/sa, ge on its high end; lt/eb, le on its low end; ap within 10 %."""
    match prefix:
        case "eq":
            return [(Bound("low", "<", s_high), Bound("high", ">=", s_low))]
        case "ne":
            return [(Bound("high", "<", s_low),), (Bound("low", ">=", s_high),)]
        case "gt" | "sa":
            return [(Bound("high", ">", v),)]
        case "lt" | "eb":
            return [(Bound("low", "<", v),)]
        case "ge":
            return [(Bound("high", ">=", v),)]
        case "le":
            return [(Bound("low", "<=", v),)]
    margin = 0.1 * abs(v)  # ap
    return [(Bound("low", "<=", v + margin), Bound("high", ">=", v - margin))]


@dataclass(frozen=True, slots=True)
class QuantityComparison:
    """How a stored quantity matches. ``canonical`` set: its canonical form has that unit and
    its canonical range meets an alternative (the unit decides, whatever system the entry
    names). None: its range as written meets an alternative, its system is the searched one
    (when given) and its code or its unit is the searched code (when given)."""

    canonical: str | None
    alternatives: list[Alternative]


def quantity_comparison(value: QuantityValue) -> QuantityComparison:
    """With a UCUM unit the engine knows, compare canonical forms; otherwise the units as
    written."""
    if value.code is not None and value.system in (None, UCUM):
        middle = ucum.canonical(value.value, value.code)
        low = ucum.canonical(value.low, value.code)
        high = ucum.canonical(value.high, value.code)
        if middle is not None and low is not None and high is not None:
            ranges = range_alternatives(value.prefix, middle[0], low[0], high[0])
            return QuantityComparison(middle[1], ranges)
    return QuantityComparison(
        None, range_alternatives(value.prefix, value.value, value.low, value.high)
    )


@dataclass(frozen=True, slots=True)
class IdComparison:
    """What an ``_id`` test asks. ``constant`` set (``_id:missing``): every resource has an id,
    so the test holds for every resource (True) or none (False). Otherwise the resource id is
    one of ``ids`` or, ``negated`` (``:not``), none of them."""

    constant: bool | None
    ids: tuple[str, ...] = ()
    negated: bool = False


def id_comparison(test: ParamTest) -> IdComparison:
    """The ``_id`` test ``test`` checked: InvalidRequest for a value that is not an id or a
    ``:missing`` without true/false, FeatureNotSupported for another modifier."""
    if test.modifier == "missing" or test.missing is not None:
        if test.missing is None:
            raise InvalidRequest("Parameter _id:missing needs the value true or false")
        return IdComparison(not test.missing)
    if test.modifier not in (None, "not"):
        raise FeatureNotSupported(
            f"The modifier ':{test.modifier}' is not supported on '_id'", expression=["_id"]
        )
    ids: list[str] = []
    for value in test.values:
        if not isinstance(value, TokenValue) or value.code is None:
            raise InvalidRequest("Parameter '_id' needs ids as values", expression=["_id"])
        ids.append(value.code)
    return IdComparison(None, tuple(ids), test.modifier == "not")


# --- refusals both compilers give ----------------------------------------------------------------


def unsupported_modifier(param_type: str, modifier: str | None) -> FeatureNotSupported:
    return FeatureNotSupported(
        f"The modifier ':{modifier}' is not supported on {param_type} parameters here",
        expression=[f":{modifier}"],
    )


def wrong_value(param_type: str, value: SearchValue) -> InvalidRequest:
    return InvalidRequest(
        f"A {param_type} parameter cannot take a {type(value).__name__} value",
        expression=[param_type],
    )


def check_searchable(test: ParamTest) -> None:
    """FeatureNotSupported for a ``special`` parameter (no index: nothing to compare)."""
    if test.param.type == "special":
        raise FeatureNotSupported(
            f"The parameter '{test.param.code}' cannot be searched on this server",
            expression=[test.param.code],
        )


def missing_wanted(test: ParamTest) -> bool:
    """``:missing=true`` (True) or ``false``; InvalidRequest without either."""
    if test.missing is None:
        raise InvalidRequest(
            f"Parameter {test.param.code}:missing needs the value true or false",
            expression=[test.param.code],
        )
    return test.missing


def composite_value(test: ParamTest, value: SearchValue) -> CompositeValue:
    """``value`` of the composite parameter of ``test``, one part per component;
    InvalidRequest otherwise."""
    components = test.param.components
    if not isinstance(value, CompositeValue) or len(value.parts) != len(components):
        raise InvalidRequest(
            f"The composite parameter '{test.param.code}' needs "
            f"{len(components)} values joined by '$'",
            expression=[test.param.code],
        )
    return value
