"""Value terms of MongoDB search: one search value against the stored values of one kind.

The MongoDB twin of ``storage/sqlite/search_values.py``, with the same semantics (docs/search.md,
the in-memory matcher's rules); the date, number and quantity prefix rules are those of
search/comparisons.py, rendered as field conditions. Each function returns the *alternatives* (OR)
under which one stored value matches a search value, as :class:`Term`\\ s: the kind of value (the
letter of :data:`~fhir_server.storage.mongo.search_index.KIND_FIELDS`) and a condition on it. For
the string kinds (``t``, ``x``, ``s``, ``e``, ``u``) the condition is the query of the string itself
(a plain string means equality); for the sub-document kinds (``d``, ``n``, ``q``, ``r``) it is the
field conditions of one sub-document, which the caller puts in an ``$elemMatch`` (so a range's two
ends hold on the same value, never across two values of an array). ``prefix`` is the parameter code
and separator at the top level, empty inside a composite element. A term never holds a logical
operator: mongoeco refuses ``$or``/``$and`` inside ``$elemMatch`` (MongoDB accepts them), so
alternatives are always ORed by the caller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.search.comparisons import (
    Alternative,
    Bound,
    End,
    Near,
    Op,
    date_alternatives,
    number_alternatives,
    quantity_comparison,
    unsupported_modifier,
    wrong_value,
)
from fhir_server.search.model import (
    DateValue,
    NumberValue,
    ParamType,
    QuantityValue,
    ReferenceValue,
    SearchValue,
    StringValue,
    TokenValue,
    UriValue,
)
from fhir_server.search.values import normalize_string
from fhir_server.storage.mongo.search_index import (
    ANY_SYSTEM,
    NO_SYSTEM,
    OF_TYPE,
    OF_TYPE_NO_SYSTEM,
    OF_TYPE_SYSTEM,
    SYSTEM_ONLY,
    WITH_SYSTEM,
    key,
    reference_key,
)

#: Longest uri ``:above`` answers with one ``$in`` of its prefixes; longer ones use ``$expr``.
MAX_ABOVE_PREFIXES = 1000

#: The kind ``uri :above`` uses for a long uri: ``condition`` is a whole top-level query.
EXPR = "expr"


@dataclass(frozen=True, slots=True)
class Term:
    """One alternative: a condition on one stored value of ``kind``."""

    kind: str
    condition: Any


def starts_with(text: str) -> dict[str, str]:
    """A case-sensitive anchored regex: a prefix MongoDB answers with an index range."""
    return {"$regex": "^" + re.escape(text)}


def value_terms(
    param_type: ParamType, modifier: str | None, value: SearchValue, prefix: str, now: int
) -> list[Term]:
    """The alternatives under which one stored value matches ``value`` (empty: never)."""
    match param_type, value:
        case "token", TokenValue():
            return token_terms(modifier, value, prefix)
        case "string", StringValue():
            return [string_term(modifier, value, prefix)]
        case "date", DateValue():
            return [Term("d", c) for c in date_conditions(value, now)]
        case "number", NumberValue():
            return [Term("n", c) for c in number_conditions(value)]
        case "quantity", QuantityValue():
            return [Term("q", c) for c in quantity_conditions(value)]
        case "reference", ReferenceValue():
            condition = reference_condition(modifier, value)
            return [] if condition is None else [Term("r", condition)]
        case "uri", UriValue():
            return [uri_term(modifier, value, prefix)]
    raise wrong_value(param_type, value)


def token_terms(modifier: str | None, value: TokenValue, prefix: str) -> list[Term]:
    if modifier == "text":
        if value.code is None:
            return []
        return [Term("x", starts_with(prefix + normalize_string(value.code)))]
    if modifier == "of-type":
        if value.code is None or value.value is None:
            return []
        if value.system is None:
            return [Term("t", key(prefix, OF_TYPE, value.code, value.value))]
        if value.system == "":
            return [Term("t", key(prefix, OF_TYPE_NO_SYSTEM, value.code, value.value))]
        return [Term("t", key(prefix, OF_TYPE_SYSTEM, value.system, value.code, value.value))]
    if modifier not in (None, "not"):
        raise unsupported_modifier("token", modifier)
    return [Term("t", k) for k in token_value_keys(value, prefix)]


def token_value_keys(value: TokenValue, prefix: str) -> list[str]:
    """The stored key equal to a token value, if it can match anything."""
    if value.code is None:  # 'system|': every code of that system
        return [key(prefix, SYSTEM_ONLY, value.system)] if value.system else []
    if value.system is None:
        return [key(prefix, ANY_SYSTEM, value.code)]
    if value.system == "":
        return [key(prefix, NO_SYSTEM, value.code)]
    return [key(prefix, WITH_SYSTEM, value.system, value.code)]


def string_term(modifier: str | None, value: StringValue, prefix: str) -> Term:
    if modifier == "exact":
        return Term("e", prefix + value.value)
    if modifier == "contains":  # normalised strings hold no line breaks ('.' matches the rest)
        return Term(
            "s",
            {"$regex": "^" + re.escape(prefix) + ".*" + re.escape(normalize_string(value.value))},
        )
    if modifier is not None:
        raise unsupported_modifier("string", modifier)
    return Term("s", starts_with(prefix + normalize_string(value.value)))


_OPERATORS: dict[Op, str] = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


def bounds_condition(alternative: Alternative, fields: Mapping[End, str]) -> dict[str, Any]:
    """One alternative of search/comparisons.py as the field conditions of one sub-document."""
    condition: dict[str, Any] = {}
    for part in alternative:
        match part:
            case Bound(end, op, limit):
                condition.setdefault(fields[end], {})[_OPERATORS[op]] = limit
            case Near(center, margin):
                if not math.isfinite(center):
                    condition[fields["value"]] = center
                else:
                    low, high = _approximate_bounds(center, margin)
                    condition[fields["value"]] = {"$gte": low, "$lte": high}
    return condition


def date_conditions(value: DateValue, now: int) -> list[dict[str, Any]]:
    """Alternatives on a stored ``{l, h}`` range (both inclusive)."""
    return [bounds_condition(a, {"low": "l", "high": "h"}) for a in date_alternatives(value, now)]


def _approximate_bounds(v: float, margin: float) -> tuple[float, float]:
    """The doubles ``t`` with ``abs(t - v) <= margin`` as computed in floating point (the
    matcher's rule to the last bit), an interval because rounding is monotonic."""

    def ok(t: float) -> bool:
        return abs(t - v) <= margin

    low, high = v - margin, v + margin
    for _ in range(64):  # a few ulps at most
        if ok(low) and ok(math.nextafter(low, -math.inf)):
            low = math.nextafter(low, -math.inf)
        elif not ok(low):
            low = math.nextafter(low, math.inf)
        else:
            break
    for _ in range(64):
        if ok(high) and ok(math.nextafter(high, math.inf)):
            high = math.nextafter(high, math.inf)
        elif not ok(high):
            high = math.nextafter(high, -math.inf)
        else:
            break
    return low, high


def number_conditions(value: NumberValue) -> list[dict[str, Any]]:
    return [bounds_condition(a, {"value": "v"}) for a in number_alternatives(value)]


def quantity_conditions(value: QuantityValue) -> list[dict[str, Any]]:
    """search/comparisons.py's rule: the canonical range and unit, or the range as written with
    its system and its code or unit."""
    comparison = quantity_comparison(value)
    if comparison.canonical is not None:
        canonical: dict[End, str] = {"low": "cl", "high": "ch"}
        return [
            {"cc": comparison.canonical, **bounds_condition(a, canonical)}
            for a in comparison.alternatives
        ]
    written: dict[End, str] = {"low": "l", "high": "h"}
    ranges = [bounds_condition(a, written) for a in comparison.alternatives]
    system = {"s": value.system} if value.system is not None else {}
    if value.code is None:
        return [{**system, **term} for term in ranges]
    return [{**system, unit: value.code, **term} for unit in ("c", "u") for term in ranges]


def _system(field: str, wanted: str | None) -> dict[str, Any]:
    """``None``: any system; ``""`` (``|value``): no system; else that system."""
    if wanted is None:
        return {}
    return {field: None if wanted == "" else wanted}


def reference_condition(modifier: str | None, value: ReferenceValue) -> dict[str, Any] | None:
    """Conditions on one stored ``{k, t, i, u, v, s, n}`` reference; None: never matches."""
    if modifier == "identifier":
        if value.identifier_value is None:
            return None
        return {"n": value.identifier_value, **_system("s", value.identifier_system)}
    if modifier is not None and not modifier[:1].isupper():  # ':Type' is the only other one
        raise unsupported_modifier("reference", modifier)
    condition: dict[str, Any] = {"t": modifier} if modifier else {}
    if value.url is not None:
        condition["u"] = value.url
        if value.version is not None:
            condition["v"] = value.version
        return condition
    if value.target_id is None:
        return None
    typed = reference_key(value.target_type, value.target_id)
    if typed is not None:
        condition["k"] = typed
    else:
        condition["i"] = value.target_id
    return condition


def uri_term(modifier: str | None, value: UriValue, prefix: str) -> Term:
    if modifier is None:
        return Term("u", prefix + value.uri)
    if modifier == "below":
        return Term("u", starts_with(prefix + value.uri))
    if modifier != "above":
        raise unsupported_modifier("uri", modifier)
    if len(value.uri) <= MAX_ABOVE_PREFIXES:  # each prefix is one index lookup
        return Term("u", {"$in": [prefix + value.uri[:n] for n in range(len(value.uri) + 1)]})
    # Some stored uri (with its parameter prefix) is a prefix of the wanted one: a scan.
    wanted = prefix + value.uri
    return Term(
        EXPR,
        {
            "$expr": {
                "$anyElementTrue": [
                    {
                        "$map": {
                            "input": {"$ifNull": ["$ixu", []]},
                            "as": "u",
                            "in": {
                                "$and": [
                                    {"$eq": [{"$substrCP": ["$$u", 0, len(prefix)]}, prefix]},
                                    {"$eq": [{"$indexOfCP": [wanted, "$$u"]}, 0]},
                                ]
                            },
                        }
                    }
                ]
            }
        },
    )
