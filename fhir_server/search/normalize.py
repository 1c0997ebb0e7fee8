"""Index entries from the typed nodes a search parameter's expression selects.

One function per search parameter type, each dispatching on the node's FHIR type as the tables of
http://hl7.org/fhir/R4/search.html ("Search parameter types") say. An element of a type a
parameter type cannot use (a ``string`` in a date parameter, a SampledData in a quantity one), or
a malformed value, gives no entry: indexing must never fail the write of a stored resource, and
such values can never match a search of that type anyway.

Choices recorded here: a Range in a number parameter gives one entry per bound present; a
quantity comparator opens the range on its side (``<5`` is ``[-inf, 5]``); Money is a quantity
whose code is the currency (system ``urn:iso:std:iso:4217``); an Extension node is indexed by its
``value[x]``; an inline resource (``Bundle.entry[0].resource``) is a reference to its type and id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fhir_server.core import r4
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    DateEntry,
    IndexEntry,
    NumberEntry,
    ParamType,
    QuantityEntry,
    ReferenceEntry,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.search.ucum import canonical
from fhir_server.search.values import (
    date_bounds,
    decimal_value,
    is_id,
    normalize_string,
    split_reference,
)

UCUM = "http://unitsofmeasure.org"
CURRENCY = "urn:iso:std:iso:4217"

_STRINGS = frozenset({"string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid"})
_NUMBERS = frozenset({"decimal", "integer", "positiveInt", "unsignedInt"})
_DATES = frozenset({"date", "dateTime", "instant"})
_QUANTITIES = frozenset({"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity"})
_URIS = frozenset({"uri", "url", "canonical", "oid", "uuid"})
_HUMAN_NAME = ("family", "given", "prefix", "suffix", "text")
_ADDRESS = ("line", "city", "district", "state", "postalCode", "country", "text")

Normalizer = Callable[[Any, str], Iterator[IndexEntry]]


def normalizer(param_type: ParamType) -> Normalizer | None:
    """The function turning one ``(value, fhir_type)`` node into entries, None for a type that
    is never indexed (``special``; ``composite`` is assembled from its components)."""
    return {
        "string": string_entries,
        "token": token_entries,
        "date": date_entries,
        "number": number_entries,
        "quantity": quantity_entries,
        "reference": reference_entries,
        "uri": uri_entries,
    }.get(param_type)


def unwrap_extension(value: Any, fhir_type: str) -> tuple[Any, str]:
    """An Extension node stands for its ``value[x]`` (``valueCodeableConcept`` ->
    CodeableConcept); anything else is returned as is. No value: ``(None, "")``."""
    if fhir_type != "Extension":
        return value, fhir_type
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("value") and len(key) > 5:
                name = key[5:]
                lowered = name[0].lower() + name[1:]
                return item, lowered if lowered in r4.primitive_types() else name
    return None, ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    return [] if value is None else [value]


# --- string ----------------------------------------------------------------------------------


def string_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    if fhir_type in _STRINGS:
        texts = [value]
    elif fhir_type in ("HumanName", "Address") and isinstance(value, dict):
        names = _HUMAN_NAME if fhir_type == "HumanName" else _ADDRESS
        texts = [part for name in names for part in _list(value.get(name))]
    else:
        return
    for text in texts:
        if (exact := _text(text)) is not None and (folded := normalize_string(exact)):
            yield StringEntry(folded, exact)


# --- token -----------------------------------------------------------------------------------


def _folded(value: Any) -> str | None:
    text = _text(value)
    return normalize_string(text) or None if text is not None else None


def _coding(coding: Any) -> Iterator[IndexEntry]:
    if isinstance(coding, dict):
        code, text = _text(coding.get("code")), _folded(coding.get("display"))
        if code is not None or text is not None:
            yield TokenEntry(_text(coding.get("system")), code, text)


def token_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    if fhir_type == "Coding":
        yield from _coding(value)
    elif fhir_type == "CodeableConcept" and isinstance(value, dict):
        for coding in _list(value.get("coding")):
            yield from _coding(coding)
        if (text := _folded(value.get("text"))) is not None:
            yield TokenEntry(None, None, text)
    elif fhir_type == "Identifier" and isinstance(value, dict):
        yield from _identifier(value)
    elif fhir_type == "ContactPoint" and isinstance(value, dict):
        if (code := _text(value.get("value"))) is not None:
            yield TokenEntry(None, code)
    elif fhir_type == "boolean" and isinstance(value, bool):
        yield TokenEntry(None, "true" if value else "false")
    elif fhir_type in _STRINGS and (code := _text(value)) is not None:
        yield TokenEntry(None, code)


def _identifier(identifier: dict[str, Any]) -> Iterator[IndexEntry]:
    system, code = _text(identifier.get("system")), _text(identifier.get("value"))
    kind = identifier.get("type")
    text = _folded(kind.get("text")) if isinstance(kind, dict) else None
    if code is None and text is None:
        return
    types = [
        (_text(c.get("system")), _text(c.get("code")))
        for c in _list(kind.get("coding") if isinstance(kind, dict) else None)
        if isinstance(c, dict) and _text(c.get("code")) is not None
    ]
    if not types:
        yield TokenEntry(system, code, text)
    for type_system, type_code in types:
        yield TokenEntry(system, code, text, type_system, type_code)


# --- date ------------------------------------------------------------------------------------


def _bounds(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, str):
        return None
    try:
        return date_bounds(value)
    except ValueError:
        return None


def _period(period: Any) -> tuple[int, int] | None:
    if not isinstance(period, dict):
        return None
    start, end = _bounds(period.get("start")), _bounds(period.get("end"))
    if start is None and end is None:
        return None
    return (start[0] if start else MIN_INSTANT), (end[1] if end else MAX_INSTANT)


def date_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    span: tuple[int, int] | None = None
    if fhir_type in _DATES:
        span = _bounds(value)
    elif fhir_type == "Period":
        span = _period(value)
    elif fhir_type == "Timing" and isinstance(value, dict):
        spans = [b for b in map(_bounds, _list(value.get("event"))) if b is not None]
        repeat = value.get("repeat")
        if isinstance(repeat, dict) and (bounds := _period(repeat.get("boundsPeriod"))):
            spans.append(bounds)
        if spans:
            span = min(s[0] for s in spans), max(s[1] for s in spans)
    if span is not None:
        yield DateEntry(*span)


# --- number and quantity ---------------------------------------------------------------------


def number_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    numbers: list[Any] = []
    if fhir_type in _NUMBERS:
        numbers = [value]
    elif isinstance(value, dict) and (fhir_type in _QUANTITIES or fhir_type == "Money"):
        numbers = [value.get("value")]
    elif fhir_type == "Range" and isinstance(value, dict):
        numbers = [b.get("value") for b in (value.get("low"), value.get("high")) if b]
    for number in numbers:
        if (as_float := decimal_value(number)) is not None:
            yield NumberEntry(as_float)


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


def quantity_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    if fhir_type in _NUMBERS:
        if (number := decimal_value(value)) is not None:
            yield QuantityEntry(number, number, None, None, None)
    elif not isinstance(value, dict):
        return
    elif fhir_type in _QUANTITIES:
        number = decimal_value(value.get("value"))
        if number is None:
            return
        low = high = number
        comparator = value.get("comparator")
        if comparator in ("<", "<="):
            low = float("-inf")
        elif comparator in (">", ">="):
            high = float("inf")
        system, code = _text(value.get("system")), _text(value.get("code"))
        yield _with_canonical(low, high, system, code, _text(value.get("unit")))
    elif fhir_type == "Money":
        number, currency = decimal_value(value.get("value")), _text(value.get("currency"))
        if number is not None:
            yield QuantityEntry(number, number, CURRENCY if currency else None, currency, currency)
    elif fhir_type == "Range":
        yield from _range(value)


def _range(value: dict[str, Any]) -> Iterator[IndexEntry]:
    low_q, high_q = value.get("low"), value.get("high")
    low_q = low_q if isinstance(low_q, dict) else {}
    high_q = high_q if isinstance(high_q, dict) else {}
    low, high = decimal_value(low_q.get("value")), decimal_value(high_q.get("value"))
    if low is None and high is None:
        return
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
    yield entry


# --- reference and uri -----------------------------------------------------------------------


def reference_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    if fhir_type == "Reference" and isinstance(value, dict):
        entry = _reference(value)
        if entry is not None:
            yield entry
    elif fhir_type in _URIS and (text := _text(value)) is not None and not text.startswith("#"):
        yield _canonical(text)  # "#id": a contained resource, not indexed (as for Reference)
    elif fhir_type == "Resource" and isinstance(value, dict):
        kind, id_ = _text(value.get("resourceType")), _text(value.get("id"))
        if kind is not None and id_ is not None:
            yield ReferenceEntry(kind, id_)


def _reference(value: dict[str, Any]) -> ReferenceEntry | None:
    target_type = target_id = url = None
    text = _text(value.get("reference"))
    if text is not None and not text.startswith("#"):
        parts = split_reference(text)
        if parts is not None:
            target_type, target_id = parts
        elif is_id(text):  # a bare id (not valid R4, but found): what `param=id` searches
            target_id = text
        if parts is None or ":" in text:  # absolute URL, urn:uuid:..., or an odd relative one
            url = text
    identifier = value.get("identifier")
    id_system = id_value = None
    if isinstance(identifier, dict):
        id_system, id_value = _text(identifier.get("system")), _text(identifier.get("value"))
    if target_id is None and url is None and id_value is None:
        return None
    if target_type is None and id_value is not None:
        kind = _text(value.get("type"))
        target_type = kind if kind is not None and r4.is_resource_type(kind) else None
    return ReferenceEntry(target_type, target_id, url, None, id_system, id_value)


def _canonical(text: str) -> ReferenceEntry:
    """A canonical (or uri) reference: ``url|version``; a relative ``Type/id`` also gives the
    type and id (canonicals should be absolute, examples are not always)."""
    url, _, version = text.partition("|")
    if ":" not in url and (parts := split_reference(url)) is not None:
        return ReferenceEntry(parts[0], parts[1], url, version or None)
    if is_id(url):  # a bare id: not a canonical, but what `param=id` would search
        return ReferenceEntry(None, url, url, version or None)
    return ReferenceEntry(None, None, url, version or None)


def uri_entries(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
    value, fhir_type = unwrap_extension(value, fhir_type)
    if fhir_type in _URIS and (text := _text(value)) is not None:
        yield UriEntry(text)
