"""Row predicates of the SQLite search index: one search value against one index row.

Each function returns the *alternatives* (OR) under which a row of the parameter's index table
matches a value, following docs/search.md. Alternatives stay separate so a standalone test can
run each as its own index range scan (``UNION ALL``), while a composite ORs them on a joined row.
``col`` names a column of the row (bare in index scans, aliased in correlated checks).
Values are always bound parameters, never interpolated. The date, number and quantity prefix
rules are those of search/comparisons.py (shared with the MongoDB backend), rendered as SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from fhir_server.search.comparisons import (
    Alternative,
    Bound,
    End,
    Near,
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
from fhir_server.storage.sqlite.sql_fragments import Sql, all_of, in_list

#: Upper bound appended to a prefix for a range scan: sorts after every continuation.
PREFIX_END = "\U0010ffff"
_MAX_ABOVE_PREFIXES = 1000
#: From how many values plain tokens are grouped per system, and at most how many per IN list.
GROUPED = 8
_IN_CHUNK = 500

Column = Callable[[str], str]


def prefix_match(column: str, prefix: str) -> Sql:
    """``column`` starts with ``prefix``, as a range so the index serves it."""
    return Sql(f"{column} >= ? AND {column} < ?", (prefix, prefix + PREFIX_END))


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
    raise wrong_value(param_type, value)


def values_terms(
    param_type: ParamType,
    modifier: str | None,
    values: Sequence[SearchValue],
    col: Column,
    now: int,
) -> list[Sql]:
    """The alternatives of all ``values`` of one test. Plain tokens of one system (or of none,
    ``|code``) become ``system = ? AND code IN (…)`` terms of up to 500 codes, so a long list
    (``:in`` a value set: thousands of codes) stays within SQLite's limits on expression depth
    and compound SELECTs."""
    if param_type != "token" or modifier not in (None, "not") or len(values) < GROUPED:
        return [t for v in values for t in value_terms(param_type, modifier, v, col, now)]
    by_system: dict[str, list[str]] = {}
    out: list[Sql] = []
    for value in values:
        if isinstance(value, TokenValue) and value.system is not None and value.code is not None:
            by_system.setdefault(value.system, []).append(value.code)
        else:
            out += value_terms(param_type, modifier, value, col, now)
    for system, codes in by_system.items():
        for start in range(0, len(codes), _IN_CHUNK):
            chunk = codes[start : start + _IN_CHUNK]
            out.append(all_of([in_list(col("code"), chunk), *_system(col("system"), system)]))
    return out


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
        raise unsupported_modifier("token", modifier)
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
        raise unsupported_modifier("string", modifier)
    return prefix_match(col("normalized"), normalize_string(value.value))


def bounds_sql(alternative: Alternative, columns: Mapping[End, str]) -> Sql:
    """One alternative of search/comparisons.py as a condition on ``columns``."""
    parts: list[str] = []
    params: list[float] = []
    for condition in alternative:
        match condition:
            case Bound(end, op, limit):
                parts.append(f"{columns[end]} {op} ?")
                params.append(limit)
            case Near(center, margin):  # the range serves the index, abs() is the exact rule
                column = columns["value"]
                slack = margin * 1e-9 + 1e-300
                parts.append(f"{column} >= ? AND {column} <= ? AND abs({column} - ?) <= ?")
                params += [center - margin - slack, center + margin + slack, center, margin]
    return Sql(" AND ".join(parts), tuple(params))


def date_terms(value: DateValue, col: Column, now: int) -> list[Sql]:
    columns: dict[End, str] = {"low": col("low"), "high": col("high")}
    return [bounds_sql(a, columns) for a in date_alternatives(value, now)]


def number_terms(value: NumberValue, column: str) -> list[Sql]:
    return [bounds_sql(a, {"value": column}) for a in number_alternatives(value)]


def quantity_terms(value: QuantityValue, col: Column) -> list[Sql]:
    """search/comparisons.py's rule: the canonical range and unit, or the range as written with
    its system and its code or unit."""
    comparison = quantity_comparison(value)
    if comparison.canonical is not None:
        unit = Sql(f"{col('canonical_code')} = ?", (comparison.canonical,))
        canonical: dict[End, str] = {"low": col("canonical_low"), "high": col("canonical_high")}
        return [all_of([unit, bounds_sql(a, canonical)]) for a in comparison.alternatives]
    written: dict[End, str] = {"low": col("low"), "high": col("high")}
    ranges = [bounds_sql(a, written) for a in comparison.alternatives]
    system = [Sql(f"{col('system')} = ?", (value.system,))] if value.system is not None else []
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
        raise unsupported_modifier("reference", modifier)
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
        raise unsupported_modifier("uri", modifier)
    if len(value.uri) <= _MAX_ABOVE_PREFIXES:  # each prefix is one index lookup
        prefixes = tuple(value.uri[:n] for n in range(len(value.uri) + 1))
        return Sql(f"{uri} IN ({', '.join('?' * len(prefixes))})", prefixes)
    return Sql(f"substr(?, 1, length({uri})) = {uri}", (value.uri,))
