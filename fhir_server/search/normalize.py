"""Index entries from the typed nodes a search parameter's expression selects.

One table per search parameter type, from the node's FHIR type to the function giving its
entries (a *leaf*), as the tables of http://hl7.org/fhir/R4/search.html ("Search parameter
types") say; the indexer resolves the leaf once per static type when it compiles a parameter.
An element of a type a parameter type cannot use (a ``string`` in a date parameter, a
SampledData in a quantity one), or a malformed value, gives no entry: indexing must never fail
the write of a stored resource, and such values can never match a search of that type anyway.
Dates, numbers and quantities are in :mod:`normalize_measures`.

Choices recorded here: an Extension node is indexed by its ``value[x]``; an inline resource
(``Bundle.entry[0].resource``) is a reference to its type and id.

Entries are immutable, and the same code, coding, name or reference recurs across resources
(statuses, LOINC codes, a patient's subject): those built from strings alone are memoised in
bounded caches, so the recurring ones are built (and their text folded) once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from functools import cache, lru_cache
from typing import Any

from fhir_server.core import r4
from fhir_server.search import normalize_measures as measures
from fhir_server.search.model import (
    IndexEntry,
    ParamType,
    ReferenceEntry,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.search.values import is_id, normalize_string, split_reference

_STRINGS = frozenset({"string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid"})
_URIS = frozenset({"uri", "url", "canonical", "oid", "uuid"})
_HUMAN_NAME = ("family", "given", "prefix", "suffix", "text")
_ADDRESS = ("line", "city", "district", "state", "postalCode", "country", "text")
_CACHED = 4096  # entries per cache

#: The entries of one value of a known FHIR type (never fails: a malformed value gives none).
Leaf = Callable[[Any], list[IndexEntry]]
#: The entries of one ``(value, fhir_type)`` node.
Normalizer = Callable[[Any, str], Iterable[IndexEntry]]


def leaves(param_type: ParamType) -> Mapping[str, Leaf] | None:
    """FHIR type -> leaf for a parameter type, None for a type that is never indexed
    (``special``; ``composite`` is assembled from its components). A type that is absent gives
    no entries. An ``Extension`` is indexed by its ``value[x]``."""
    return _tables().get(param_type)


def normalizer(param_type: ParamType) -> Normalizer | None:
    """The function turning one ``(value, fhir_type)`` node into entries (see :func:`leaves`)."""
    table = leaves(param_type)
    if table is None:
        return None
    get = table.get

    def normalize(value: Any, fhir_type: str) -> list[IndexEntry]:
        leaf = get(fhir_type)
        return leaf(value) if leaf is not None else []

    return normalize


@cache
def _tables() -> dict[str, dict[str, Leaf]]:
    tables: dict[str, dict[str, Leaf]] = {
        "string": {
            **dict.fromkeys(_STRINGS, _string),
            "HumanName": _parts(_HUMAN_NAME),
            "Address": _parts(_ADDRESS),
        },
        "token": {
            "Coding": _coding,
            "CodeableConcept": _codeable_concept,
            "Identifier": _identifier,
            "ContactPoint": _contact_point,
            "boolean": _boolean,
            **dict.fromkeys(_STRINGS, _code),
        },
        "date": {
            **dict.fromkeys(measures.DATES, measures.date),
            "Period": measures.period_entry,
            "Timing": measures.timing,
        },
        "number": {
            **dict.fromkeys(measures.NUMBERS, measures.number),
            **dict.fromkeys((*measures.QUANTITIES, "Money"), measures.number_of_value),
            "Range": measures.number_range,
        },
        "quantity": {
            **dict.fromkeys(measures.NUMBERS, measures.quantity_number),
            **dict.fromkeys(measures.QUANTITIES, measures.quantity),
            "Money": measures.money,
            "Range": measures.range_entry,
        },
        "reference": {
            "Reference": _reference_entry,
            **dict.fromkeys(_URIS, _canonical_entry),
            "Resource": _inline_resource,
        },
        "uri": dict.fromkeys(_URIS, _uri),
    }
    for table in tables.values():
        table["Extension"] = _extension_of(table)
    return tables


def _extension_of(table: dict[str, Leaf]) -> Leaf:
    def extension(value: Any) -> list[IndexEntry]:
        value, fhir_type = unwrap_extension(value, "Extension")
        leaf = table.get(fhir_type)
        return leaf(value) if leaf is not None else []

    return extension


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


def _string(value: Any) -> list[IndexEntry]:
    if isinstance(value, str) and value and (entry := _string_entry(value)) is not None:
        return [entry]
    return []


@lru_cache(maxsize=_CACHED)
def _string_entry(text: str) -> StringEntry | None:
    folded = normalize_string(text)
    return StringEntry(folded, text) if folded else None


def _parts(names: tuple[str, ...]) -> Leaf:
    """A HumanName or an Address: one entry per part (each ``given``, each ``line``...)."""

    def parts(value: Any) -> list[IndexEntry]:
        if not isinstance(value, dict):
            return []
        found: list[IndexEntry] = []
        for name in names:
            part = value.get(name)
            if part is None:
                continue
            for text in part if isinstance(part, list) else (part,):
                if isinstance(text, str) and text and (entry := _string_entry(text)) is not None:
                    found.append(entry)
        return found

    return parts


# --- token -----------------------------------------------------------------------------------


def _folded(value: Any) -> str | None:
    text = _text(value)
    return normalize_string(text) or None if text is not None else None


def _coding(coding: Any) -> list[IndexEntry]:
    if isinstance(coding, dict):
        get = coding.get
        entry = _coding_entry(_text(get("system")), _text(get("code")), _text(get("display")))
        if entry is not None:
            return [entry]
    return []


@lru_cache(maxsize=_CACHED)
def _coding_entry(system: str | None, code: str | None, display: str | None) -> TokenEntry | None:
    text = _folded(display)
    if code is None and text is None:
        return None
    return TokenEntry(system, code, text)


def _codeable_concept(value: Any) -> list[IndexEntry]:
    if not isinstance(value, dict):
        return []
    found: list[IndexEntry] = []
    codings = value.get("coding")
    if codings is not None:
        for coding in codings if isinstance(codings, list) else (codings,):
            found.extend(_coding(coding))
    if (text := _folded(value.get("text"))) is not None:
        found.append(TokenEntry(None, None, text))
    return found


def _contact_point(value: Any) -> list[IndexEntry]:
    if isinstance(value, dict) and (code := _text(value.get("value"))) is not None:
        return [TokenEntry(None, code)]
    return []


def _boolean(value: Any) -> list[IndexEntry]:
    return [TokenEntry(None, "true" if value else "false")] if isinstance(value, bool) else []


def _code(value: Any) -> list[IndexEntry]:
    return [_code_entry(value)] if isinstance(value, str) and value else []


@lru_cache(maxsize=_CACHED)
def _code_entry(code: str) -> TokenEntry:
    return TokenEntry(None, code)


def _identifier(identifier: Any) -> list[IndexEntry]:
    if not isinstance(identifier, dict):
        return []
    system, code = _text(identifier.get("system")), _text(identifier.get("value"))
    kind = identifier.get("type")
    text = _folded(kind.get("text")) if isinstance(kind, dict) else None
    if code is None and text is None:
        return []
    types = [
        (_text(c.get("system")), _text(c.get("code")))
        for c in _list(kind.get("coding") if isinstance(kind, dict) else None)
        if isinstance(c, dict) and _text(c.get("code")) is not None
    ]
    if not types:
        return [TokenEntry(system, code, text)]
    return [TokenEntry(system, code, text, t_system, t_code) for t_system, t_code in types]


# --- reference and uri -----------------------------------------------------------------------


def _reference_entry(value: Any) -> list[IndexEntry]:
    entry = _reference(value) if isinstance(value, dict) else None
    return [] if entry is None else [entry]


def _canonical_entry(value: Any) -> list[IndexEntry]:
    """A canonical or uri; ``#id`` is a contained resource, not indexed (as for Reference)."""
    if isinstance(value, str) and value and not value.startswith("#"):
        return [_canonical(value)]
    return []


def _inline_resource(value: Any) -> list[IndexEntry]:
    if isinstance(value, dict):
        kind, id_ = _text(value.get("resourceType")), _text(value.get("id"))
        if kind is not None and id_ is not None:
            return [ReferenceEntry(kind, id_)]
    return []


def _reference(value: dict[str, Any]) -> ReferenceEntry | None:
    identifier = value.get("identifier")
    id_system = id_value = None
    if isinstance(identifier, dict):
        id_system, id_value = _text(identifier.get("system")), _text(identifier.get("value"))
    kind = _text(value.get("type")) if id_value is not None else None
    return _reference_of(_text(value.get("reference")), id_system, id_value, kind)


@lru_cache(maxsize=_CACHED)
def _reference_of(
    text: str | None, id_system: str | None, id_value: str | None, kind: str | None
) -> ReferenceEntry | None:
    """The entry of a Reference from its ``reference``, its identifier's ``system`` and
    ``value``, and (read only with an identifier) its ``type``."""
    target_type = target_id = url = None
    if text is not None and not text.startswith("#"):
        parts = split_reference(text)
        if parts is not None:
            target_type, target_id = parts
        elif is_id(text):  # a bare id (not valid R4, but found): what `param=id` searches
            target_id = text
        if parts is None or ":" in text:  # absolute URL, urn:uuid:..., or an odd relative one
            url = text
    if target_id is None and url is None and id_value is None:
        return None
    if target_type is None and id_value is not None:
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


def _uri(value: Any) -> list[IndexEntry]:
    return [UriEntry(value)] if isinstance(value, str) and value else []
