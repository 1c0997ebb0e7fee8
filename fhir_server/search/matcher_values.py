"""The in-memory matcher's per-type rules: does one parameter occurrence match one resource?

Each function here is one row of docs/search.md written as plainly as possible, because the
matcher is the oracle the storage backends are compared against: it must be obviously right
rather than fast. The corpus-level tests (chains, ``_has``, compartments) and sorting live in
:mod:`fhir_server.search.matcher`.

A resource matches a :class:`ParamTest` when **some** value (comma = OR) matches **some** entry
of the parameter, except ``:not`` (no entry equals any value) and ``:missing`` (presence of
entries). Prefixes such as ``ne`` are per entry (search.html#prefix compares the search value
with each target value), so ``ne`` never matches a resource without the parameter.
"""

from __future__ import annotations

from fhir_server.core.errors import InvalidRequest
from fhir_server.search import ucum
from fhir_server.search.model import (
    ID_PARAM,
    CompositeEntry,
    CompositeValue,
    DateEntry,
    DateValue,
    IndexEntry,
    NumberEntry,
    NumberValue,
    ParamTest,
    Prefix,
    QuantityEntry,
    QuantityValue,
    ReferenceEntry,
    ReferenceValue,
    SearchParamDef,
    SearchValue,
    StringEntry,
    StringValue,
    TokenEntry,
    TokenValue,
    UriEntry,
    UriValue,
)
from fhir_server.search.values import normalize_string

#: The UCUM code system (http://hl7.org/fhir/R4/search.html#quantity): units are canonicalised
#: only when the search names this system or none.
UCUM_SYSTEM = "http://unitsofmeasure.org"

#: The smallest widening of a date ``ap`` search on each side (docs/search.md: "at least one day").
DAY_MICROSECONDS = 86_400_000_000

Entries = tuple[IndexEntry | CompositeEntry, ...]

#: Modifiers each parameter type accepts (``missing`` is accepted everywhere and handled first).
#: Token ``in``/``not-in``/``above``/``below`` need a terminology service the server lacks.
_MODIFIERS: dict[str, frozenset[str | None]] = {
    "token": frozenset({None, "text", "not", "of-type"}),
    "string": frozenset({None, "exact", "contains"}),
    "date": frozenset({None}),
    "number": frozenset({None}),
    "quantity": frozenset({None}),
    "uri": frozenset({None, "above", "below"}),
    "composite": frozenset({None}),
}


def param_matches(test: ParamTest, resource_id: str, entries: Entries, now_us: int) -> bool:
    """Whether a resource with these entries for ``test.param`` (and this id, for ``_id``)
    matches the parameter occurrence; ``now_us`` is "now" for date ``ap``."""
    param, modifier = test.param, test.modifier
    if param.code == ID_PARAM:
        entries = (TokenEntry(None, resource_id),)
    if modifier == "missing" or test.missing is not None:
        if test.missing is None:
            raise InvalidRequest(
                f"Parameter {param.code}:missing needs the value true or false",
                expression=[param.code],
            )
        return (not entries) == test.missing
    _check_modifier(param, modifier)
    if modifier == "not":
        return not any(_token_equal(v, e) for v in test.values for e in entries)
    return any(_matches(param, modifier, v, e, now_us) for v in test.values for e in entries)


def _check_modifier(param: SearchParamDef, modifier: str | None) -> None:
    if param.type == "reference":
        if modifier in (None, "identifier") or (modifier is not None and modifier[:1].isupper()):
            return
    elif modifier in _MODIFIERS.get(param.type, frozenset()):
        return
    what = f"The modifier :{modifier[:20]}" if modifier else "Search"
    raise InvalidRequest(
        f"{what} is not supported on the {param.type} parameter {param.code}",
        expression=[param.code],
    )


def _matches(
    param: SearchParamDef,
    modifier: str | None,
    value: SearchValue,
    entry: IndexEntry | CompositeEntry,
    now_us: int,
) -> bool:
    """One value against one entry; a value or entry of another kind than the parameter's type
    never matches (the indexer and the parser each guarantee the kinds)."""
    match param.type, value, entry:
        case "token", TokenValue(), TokenEntry():
            if modifier == "text":
                return _token_text(value, entry)
            if modifier == "of-type":
                return _of_type(value, entry)
            return _token_equal(value, entry)
        case "string", StringValue(), StringEntry():
            return _string(modifier, value, entry)
        case "date", DateValue(), DateEntry():
            return date_matches(value, entry, now_us)
        case "number", NumberValue(), NumberEntry():
            return number_matches(value, entry)
        case "quantity", QuantityValue(), QuantityEntry():
            return quantity_matches(value, entry)
        case "reference", ReferenceValue(), ReferenceEntry():
            return reference_matches(modifier, value, entry)
        case "uri", UriValue(), UriEntry():
            return _uri(modifier, value, entry)
        case "composite", CompositeValue(), CompositeEntry():
            return _composite(param, value, entry, now_us)
    return False


# --- token and string ---------------------------------------------------------------------------


def _system_ok(wanted: str | None, system: str | None) -> bool:
    """``None``: any system; ``""`` (``|code``): no system; else that system."""
    if wanted is None:
        return True
    if wanted == "":
        return system is None
    return system == wanted


def _token_equal(value: SearchValue, entry: IndexEntry | CompositeEntry) -> bool:
    """``code``, ``system|code``, ``|code`` or ``system|`` (code None) against one entry."""
    if not isinstance(value, TokenValue) or not isinstance(entry, TokenEntry):
        return False
    if value.code is None:
        return bool(value.system) and entry.system == value.system
    return entry.code == value.code and _system_ok(value.system, entry.system)


def _token_text(value: TokenValue, entry: TokenEntry) -> bool:
    """``:text``: the entry's (already normalised) text starts with the normalised value."""
    if entry.text is None or value.code is None:
        return False
    return entry.text.startswith(normalize_string(value.code))


def _of_type(value: TokenValue, entry: TokenEntry) -> bool:
    """``:of-type=type_system|type_code|value``: an Identifier with that type and value."""
    if value.code is None or value.value is None:
        return False
    return (
        entry.type_code == value.code
        and _system_ok(value.system, entry.type_system)
        and entry.code == value.value
    )


def _string(modifier: str | None, value: StringValue, entry: StringEntry) -> bool:
    if modifier == "exact":
        return entry.exact == value.value
    if modifier == "contains":
        return normalize_string(value.value) in entry.normalized
    return entry.normalized.startswith(normalize_string(value.value))


# --- date, number, quantity ---------------------------------------------------------------------


def date_matches(value: DateValue, entry: DateEntry, now_us: int) -> bool:
    """Both ranges inclusive at both ends (docs/search.md, "date" rows)."""
    s, t = value, entry
    eq = s.low <= t.low and t.high <= s.high
    match s.prefix:
        case "eq":
            return eq
        case "ne":
            return not eq
        case "gt":
            return t.high > s.high
        case "lt":
            return t.low < s.low
        case "ge":
            return t.high > s.high or eq
        case "le":
            return t.low < s.low or eq
        case "sa":
            return t.low > s.high
        case "eb":
            return t.high < s.low
        case "ap":
            widen = max(_distance(s.low, s.high, now_us) // 10, DAY_MICROSECONDS)
            return t.low <= s.high + widen and t.high >= s.low - widen
    raise _bad_prefix(value.prefix)


def _distance(low: int, high: int, point: int) -> int:
    """Distance from the search range to ``point`` (zero when the range contains it)."""
    if point < low:
        return low - point
    if point > high:
        return point - high
    return 0


def number_matches(value: NumberValue, entry: NumberEntry) -> bool:
    """``eq`` uses the implicit range ``[low, high)`` of the value's precision, the other
    prefixes the exact value (docs/search.md, "number" rows)."""
    s, t = value, entry.value
    match s.prefix:
        case "eq":
            return s.low <= t < s.high
        case "ne":
            return not s.low <= t < s.high
        case "gt" | "sa":
            return t > s.value
        case "lt" | "eb":
            return t < s.value
        case "ge":
            return t >= s.value
        case "le":
            return t <= s.value
        case "ap":
            return abs(t - s.value) <= 0.1 * abs(s.value)
    raise _bad_prefix(value.prefix)


def quantity_matches(value: QuantityValue, entry: QuantityEntry) -> bool:
    """A unit restricts the entries (canonical UCUM form when the search unit has one)."""
    if value.code is None:
        if value.system is not None and entry.system != value.system:
            return False
        return _range_prefix(
            value.prefix, value.value, value.low, value.high, entry.low, entry.high
        )
    canonical = _canonical_search(value)
    if canonical is not None:
        (c_value, c_low, c_high), c_code = canonical
        if entry.canonical_code != c_code:
            return False
        if entry.canonical_low is None or entry.canonical_high is None:
            return False
        return _range_prefix(
            value.prefix, c_value, c_low, c_high, entry.canonical_low, entry.canonical_high
        )
    if value.code not in (entry.code, entry.unit):
        return False
    if value.system is not None and entry.system != value.system:
        return False
    return _range_prefix(value.prefix, value.value, value.low, value.high, entry.low, entry.high)


def _canonical_search(value: QuantityValue) -> tuple[tuple[float, float, float], str] | None:
    """The search value, low and high in the canonical unit, and that unit; None when the
    search unit is not a UCUM unit the engine knows."""
    if value.code is None or value.system not in (None, UCUM_SYSTEM):
        return None
    converted = [ucum.canonical(x, value.code) for x in (value.value, value.low, value.high)]
    if converted[0] is None or converted[1] is None or converted[2] is None:
        return None
    return (converted[0][0], converted[1][0], converted[2][0]), converted[0][1]


def _range_prefix(
    prefix: Prefix, value: float, low: float, high: float, t_low: float, t_high: float
) -> bool:
    """A search value (with its implicit range ``[low, high)``) against an entry range
    ``[t_low, t_high]`` (docs/search.md, "quantity" row)."""
    eq = t_low < high and t_high >= low
    match prefix:
        case "eq":
            return eq
        case "ne":
            return not eq
        case "gt" | "sa":
            return t_high > value
        case "lt" | "eb":
            return t_low < value
        case "ge":
            return t_high >= value
        case "le":
            return t_low <= value
        case "ap":
            margin = 0.1 * abs(value)
            return t_low <= value + margin and t_high >= value - margin
    raise _bad_prefix(prefix)


def _bad_prefix(prefix: str) -> InvalidRequest:
    return InvalidRequest(f"Unknown search prefix {prefix[:10]!r}")


# --- reference, uri, composite ------------------------------------------------------------------


def reference_matches(modifier: str | None, value: ReferenceValue, entry: ReferenceEntry) -> bool:
    """``Type/id``, bare ``id``, a URL (with version), ``:Type`` or ``:identifier``."""
    if modifier == "identifier":
        return (
            value.identifier_value is not None
            and entry.identifier_value == value.identifier_value
            and _system_ok(value.identifier_system, entry.identifier_system)
        )
    if modifier is not None and entry.target_type != modifier:
        return False
    if value.url is not None:
        return entry.url == value.url and (value.version is None or entry.version == value.version)
    if value.target_id is None or entry.target_id != value.target_id:
        return False
    return value.target_type is None or entry.target_type == value.target_type


def _uri(modifier: str | None, value: UriValue, entry: UriEntry) -> bool:
    if modifier == "above":
        return value.uri.startswith(entry.uri)
    if modifier == "below":
        return entry.uri.startswith(value.uri)
    return entry.uri == value.uri


def _composite(
    param: SearchParamDef, value: CompositeValue, entry: CompositeEntry, now: int
) -> bool:
    """Every component matches within this one composite element (never across elements)."""
    if len(value.parts) != len(param.components):
        raise InvalidRequest(
            f"The composite parameter {param.code} takes {len(param.components)} values "
            "separated by $",
            expression=[param.code],
        )
    if len(entry.parts) != len(param.components):
        return False
    return all(
        any(_matches(component.param, None, part, e, now) for e in entries)
        for component, part, entries in zip(param.components, value.parts, entry.parts, strict=True)
    )
