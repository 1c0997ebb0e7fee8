"""Row predicates of the SQLite search index: one search value against one index row.

Each function returns the *alternatives* (OR) under which a row of the parameter's index table
matches a value, following docs/search.md. Alternatives stay separate so a standalone test can
run each as its own index range scan (``UNION ALL``), while a composite ORs them on a joined row.
``col`` names a column of the row (bare in index scans, aliased in correlated checks).
Values are always bound parameters, never interpolated.
"""

from __future__ import annotations

from collections.abc import Callable

from fhir_server.core.errors import FeatureNotSupported, InvalidRequest
from fhir_server.search import ucum
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
from fhir_server.storage.sqlite.sql_fragments import Sql, all_of

#: Upper bound appended to a prefix for a range scan: sorts after every continuation.
PREFIX_END = "\U0010ffff"
ONE_DAY = 86_400_000_000  # microseconds
UCUM = "http://unitsofmeasure.org"
_MAX_ABOVE_PREFIXES = 1000

Column = Callable[[str], str]


def prefix_match(column: str, prefix: str) -> Sql:
    """``column`` starts with ``prefix``, as a range so the index serves it."""
    return Sql(f"{column} >= ? AND {column} < ?", (prefix, prefix + PREFIX_END))


def _unsupported(param_type: str, modifier: str | None) -> FeatureNotSupported:
    return FeatureNotSupported(
        f"The modifier ':{modifier}' is not supported on {param_type} parameters here",
        expression=[f":{modifier}"],
    )


def _wrong_value(param_type: str, value: SearchValue) -> InvalidRequest:
    return InvalidRequest(
        f"A {param_type} parameter cannot take a {type(value).__name__} value",
        expression=[param_type],
    )


def value_terms(
    param_type: ParamType, modifier: str | None, value: SearchValue, col: Column, now: int
) -> list[Sql]:
    """The alternatives under which one row matches ``value`` (empty: it never matches)."""
    match param_type, value:
        case "token", TokenValue():
            return token_terms(modifier, value, col)
        case "string", StringValue():
            return [string_term(modifier, value, col)]
        case "date", DateValue():
            return date_terms(value, col, now)
        case "number", NumberValue():
            return number_terms(value, col("value"))
        case "quantity", QuantityValue():
            return quantity_terms(value, col)
        case "reference", ReferenceValue():
            return [reference_term(modifier, value, col)]
        case "uri", UriValue():
            return [uri_term(modifier, value, col)]
    raise _wrong_value(param_type, value)


def _system(column: str, wanted: str | None) -> list[Sql]:
    """``None``: any system; ``""`` (``|code``): no system; else that system."""
    if wanted is None:
        return []
    if wanted == "":
        return [Sql(f"{column} IS NULL")]
    return [Sql(f"{column} = ?", (wanted,))]


def token_terms(modifier: str | None, value: TokenValue, col: Column) -> list[Sql]:
    if modifier == "text":
        if value.code is None:
            return []
        return [prefix_match(col("text"), normalize_string(value.code))]
    if modifier == "of-type":
        if value.code is None or value.value is None:
            return []
        of_type = [
            Sql(f"{col('code')} = ?", (value.value,)),
            Sql(f"{col('type_code')} = ?", (value.code,)),
        ]
        return [all_of([*of_type, *_system(col("type_system"), value.system)])]
    if modifier not in (None, "not"):
        raise _unsupported("token", modifier)
    if value.code is None:  # 'system|': every code of that system
        return [Sql(f"{col('system')} = ?", (value.system,))] if value.system else []
    code = Sql(f"{col('code')} = ?", (value.code,))
    return [all_of([code, *_system(col("system"), value.system)])]


def string_term(modifier: str | None, value: StringValue, col: Column) -> Sql:
    if modifier == "exact":
        return Sql(f"{col('exact')} = ?", (value.value,))
    if modifier == "contains":  # substring: a scan of the parameter's rows, no LIKE escaping
        return Sql(f"instr({col('normalized')}, ?) > 0", (normalize_string(value.value),))
    if modifier is not None:
        raise _unsupported("string", modifier)
    return prefix_match(col("normalized"), normalize_string(value.value))


def approximate_margin(low: int, high: int, now: int) -> int:
    """How far ``ap`` widens a date range on each side: 10 % of the distance between the range
    and now (0 when now lies inside it), at least one day."""
    distance = low - now if low > now else (now - high if high < now else 0)
    return max(ONE_DAY, distance // 10)


def date_terms(value: DateValue, col: Column, now: int) -> list[Sql]:
    low, high = col("low"), col("high")
    s_low, s_high = value.low, value.high
    within = Sql(f"{low} >= ? AND {low} <= ? AND {high} <= ?", (s_low, s_high, s_high))
    after = Sql(f"{high} > ?", (s_high,))
    before = Sql(f"{low} < ?", (s_low,))
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
            return [Sql(f"{low} > ?", (s_high,))]
        case "eb":
            return [Sql(f"{high} < ?", (s_low,))]
        case "ap":
            margin = approximate_margin(s_low, s_high, now)
            return [Sql(f"{low} <= ? AND {high} >= ?", (s_high + margin, s_low - margin))]


def number_terms(value: NumberValue, column: str) -> list[Sql]:
    v = value.value
    match value.prefix:
        case "eq":
            return [Sql(f"{column} >= ? AND {column} < ?", (value.low, value.high))]
        case "ne":
            return [Sql(f"{column} < ?", (value.low,)), Sql(f"{column} >= ?", (value.high,))]
        case "gt" | "sa":
            return [Sql(f"{column} > ?", (v,))]
        case "lt" | "eb":
            return [Sql(f"{column} < ?", (v,))]
        case "ge":
            return [Sql(f"{column} >= ?", (v,))]
        case "le":
            return [Sql(f"{column} <= ?", (v,))]
        case "ap":  # the range serves the index, abs() is the documented rule to the last bit
            margin = 0.1 * abs(v)
            slack = margin * 1e-9 + 1e-300
            return [
                Sql(
                    f"{column} >= ? AND {column} <= ? AND abs({column} - ?) <= ?",
                    (v - margin - slack, v + margin + slack, v, margin),
                )
            ]


def _range_terms(prefix: str, v: float, s_low: float, s_high: float, lo: str, hi: str) -> list[Sql]:
    """Quantity rule on an entry range [lo, hi] (docs/search.md): eq when it meets
    [s_low, s_high); gt/sa, ge on its high end; lt/eb, le on its low end; ap within 10 %."""
    match prefix:
        case "eq":
            return [Sql(f"{lo} < ? AND {hi} >= ?", (s_high, s_low))]
        case "ne":
            return [Sql(f"{hi} < ?", (s_low,)), Sql(f"{lo} >= ?", (s_high,))]
        case "gt" | "sa":
            return [Sql(f"{hi} > ?", (v,))]
        case "lt" | "eb":
            return [Sql(f"{lo} < ?", (v,))]
        case "ge":
            return [Sql(f"{hi} >= ?", (v,))]
        case "le":
            return [Sql(f"{lo} <= ?", (v,))]
    margin = 0.1 * abs(v)  # ap
    return [Sql(f"{lo} <= ? AND {hi} >= ?", (v + margin, v - margin))]


def quantity_terms(value: QuantityValue, col: Column) -> list[Sql]:
    """With a UCUM unit the engine knows, compare canonical forms (the unit decides, whatever
    system the entry names); otherwise the unit must equal the entry's code or unit."""
    system = [Sql(f"{col('system')} = ?", (value.system,))] if value.system is not None else []
    if value.code is not None and value.system in (None, UCUM):
        middle = ucum.canonical(value.value, value.code)
        low = ucum.canonical(value.low, value.code)
        high = ucum.canonical(value.high, value.code)
        if middle is not None and low is not None and high is not None:
            unit = Sql(f"{col('canonical_code')} = ?", (middle[1],))
            ranges = _range_terms(
                value.prefix, middle[0], low[0], high[0],
                col("canonical_low"), col("canonical_high"),
            )  # fmt: skip
            return [all_of([unit, term]) for term in ranges]
    ranges = _range_terms(value.prefix, value.value, value.low, value.high, col("low"), col("high"))
    if value.code is None:
        return [all_of([*system, term]) for term in ranges]
    units = [Sql(f"{col('code')} = ?", (value.code,)), Sql(f"{col('unit')} = ?", (value.code,))]
    return [all_of([*system, unit, term]) for unit in units for term in ranges]


def reference_term(modifier: str | None, value: ReferenceValue, col: Column) -> Sql:
    if modifier == "identifier":
        if value.identifier_value is None:
            return Sql("0")
        found = Sql(f"{col('identifier_value')} = ?", (value.identifier_value,))
        return all_of([found, *_system(col("identifier_system"), value.identifier_system)])
    if modifier is not None and not modifier[:1].isupper():  # ':Type' is the only other one
        raise _unsupported("reference", modifier)
    parts = [Sql(f"{col('target_type')} = ?", (modifier,))] if modifier else []
    if value.url is not None:
        parts.append(Sql(f"{col('url')} = ?", (value.url,)))
        if value.version is not None:
            parts.append(Sql(f"{col('version')} = ?", (value.version,)))
        return all_of(parts)
    if value.target_id is None:
        return Sql("0")
    parts.append(Sql(f"{col('target_id')} = ?", (value.target_id,)))
    if value.target_type is not None:
        parts.append(Sql(f"{col('target_type')} = ?", (value.target_type,)))
    return all_of(parts)


def uri_term(modifier: str | None, value: UriValue, col: Column) -> Sql:
    uri = col("uri")
    if modifier is None:
        return Sql(f"{uri} = ?", (value.uri,))
    if modifier == "below":
        return prefix_match(uri, value.uri)
    if modifier != "above":
        raise _unsupported("uri", modifier)
    if len(value.uri) <= _MAX_ABOVE_PREFIXES:  # each prefix is one index lookup
        prefixes = tuple(value.uri[:n] for n in range(len(value.uri) + 1))
        return Sql(f"{uri} IN ({', '.join('?' * len(prefixes))})", prefixes)
    return Sql(f"substr(?, 1, length({uri})) = {uri}", (value.uri,))
