"""Write side of MongoDB search: the index fields embedded in a live ``resources`` document.

Attribute pattern: one field per *kind of value*, never one per parameter, so a handful of
MongoDB indexes (indexes.py) serve every parameter of the registry, custom ones included. Every
value carries the parameter code, either as a prefix of a string (``code`` + :data:`SEP`) or as
the ``p`` field of a sub-document. Fields (all top-level, all starting with ``ix``):

``ixp``  codes of the parameters that have entries (``:missing``).
``ixt``  token keys (:func:`token_keys`): ``code``, ``system|code``, ``|code``, ``system|`` and
         the ``:of-type`` forms, each a prefixed string; equality and ``$in`` only.
``ixx``  token display/text, normalised (``:text``, an anchored prefix).
``ixs``  strings normalised (lower-cased, accent-folded: values.normalize_string), prefix match.
``ixe``  strings as written (``:exact``).
``ixu``  uris.
``ixd``  dates ``{p, l, h}``: inclusive bounds in microseconds since the epoch.
``ixn``  numbers ``{p, v}``.
``ixq``  quantities ``{p, l, h, s, c, u, cl, ch, cc}``: range, system, code, unit and the range
         in canonical UCUM units with the canonical code (``c*`` absent when not convertible).
``ixr``  references ``{p, k, t, i, u, v, s, n}``: ``k`` ``"Type/id"`` (when both are known),
         type, id, url, version, identifier system and value.
``ixc``  composites: one sub-document per element ``{p, <kind><n>: [...]}``, component ``n``
         stored like the top-level fields of its kind (``t0``, ``q1``, ...; keys and
         sub-documents without the parameter code), so one ``$elemMatch`` keeps the components
         of one element paired.
``ixm``  compartments, ``"Patient/123"``.
``ixo``  sort values ``{p, a, d}``: the lowest (ascending) and highest (descending) value of
         the parameter, as the in-memory matcher defines them; absent when it has none.

Absent fields are not written (an empty index writes ``ixp: []`` only). A ``None`` member of a
sub-document is not written either: ``{field: None}`` in a query matches it being absent.
Assumption: each parameter's entries are of the parameter's own type (the indexer guarantees it),
so sort values are computed from the entries without knowing the type.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fhir_server.search.model import (
    CompositeEntry,
    DateEntry,
    IndexEntry,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    ResourceIndex,
    StringEntry,
    TokenEntry,
    UriEntry,
)

#: Separates the parameter code, the key's form and its parts in prefixed strings.
SEP = "\x1f"

PRESENT = "ixp"
TOKENS = "ixt"
TOKEN_TEXTS = "ixx"
STRINGS = "ixs"
EXACT = "ixe"
URIS = "ixu"
DATES = "ixd"
NUMBERS = "ixn"
QUANTITIES = "ixq"
REFERENCES = "ixr"
COMPOSITES = "ixc"
COMPARTMENTS = "ixm"
SORT = "ixo"

#: Every top-level field :func:`index_fields` can write (the store unsets them on a tombstone).
INDEX_FIELDS: tuple[str, ...] = (
    PRESENT,
    TOKENS,
    TOKEN_TEXTS,
    STRINGS,
    EXACT,
    URIS,
    DATES,
    NUMBERS,
    QUANTITIES,
    REFERENCES,
    COMPOSITES,
    COMPARTMENTS,
    SORT,
)

#: The field of each kind of value at the top level; inside a composite element, component n
#: of a kind is stored under the kind's letter + n (``t0``, ``q1``).
KIND_FIELDS: dict[str, str] = {
    "t": TOKENS,
    "x": TOKEN_TEXTS,
    "s": STRINGS,
    "e": EXACT,
    "u": URIS,
    "d": DATES,
    "n": NUMBERS,
    "q": QUANTITIES,
    "r": REFERENCES,
}


def key(prefix: str, form: str, *parts: str) -> str:
    """A prefixed string: ``prefix`` (``code`` + SEP, or empty in a composite), the form and
    its parts, separated by SEP."""
    return prefix + SEP.join((form, *parts))


def param_prefix(code: str) -> str:
    return code + SEP


# Token key forms: any system, system|code, |code (no system), system| (every code),
# and :of-type with any / a given / no type system.
ANY_SYSTEM, WITH_SYSTEM, NO_SYSTEM, SYSTEM_ONLY = "c", "s", "n", "S"
OF_TYPE, OF_TYPE_SYSTEM, OF_TYPE_NO_SYSTEM = "o", "os", "on"


def token_keys(prefix: str, entry: TokenEntry) -> list[str]:
    """Every key a token entry is found by (search.html#token forms, ``:of-type``)."""
    keys: list[str] = []
    if entry.code is not None:
        keys.append(key(prefix, ANY_SYSTEM, entry.code))
        if entry.system is None:
            keys.append(key(prefix, NO_SYSTEM, entry.code))
        else:
            keys.append(key(prefix, WITH_SYSTEM, entry.system, entry.code))
        if entry.type_code is not None:
            keys.append(key(prefix, OF_TYPE, entry.type_code, entry.code))
            if entry.type_system is None:
                keys.append(key(prefix, OF_TYPE_NO_SYSTEM, entry.type_code, entry.code))
            else:
                keys.append(
                    key(prefix, OF_TYPE_SYSTEM, entry.type_system, entry.type_code, entry.code)
                )
    if entry.system:
        keys.append(key(prefix, SYSTEM_ONLY, entry.system))
    return keys


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def reference_key(target_type: str | None, target_id: str | None) -> str | None:
    """``"Type/id"``, the ``_id`` of the target's document; None unless both are known."""
    if target_type is None or target_id is None:
        return None
    return f"{target_type}/{target_id}"


class _Fields:
    """Accumulates the values of one scope: the document, or one composite element."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.values: dict[str, list[Any]] = {}

    def add(self, kind: str, value: Any) -> None:
        self.values.setdefault(self.names[kind], []).append(value)

    def add_entry(self, entry: IndexEntry, prefix: str, base: dict[str, Any]) -> None:
        """One entry, under ``prefix`` (strings) / with ``base`` (sub-documents)."""
        match entry:
            case TokenEntry():
                for token in token_keys(prefix, entry):
                    self.add("t", token)
                if entry.text is not None:
                    self.add("x", prefix + entry.text)
            case StringEntry():
                self.add("s", prefix + entry.normalized)
                self.add("e", prefix + entry.exact)
            case UriEntry():
                self.add("u", prefix + entry.uri)
            case DateEntry():
                self.add("d", {**base, "l": entry.low, "h": entry.high})
            case NumberEntry():
                self.add("n", {**base, "v": entry.value})
            case QuantityEntry():
                self.add("q", {**base, **_quantity(entry)})
            case ReferenceEntry():
                self.add("r", {**base, **_reference(entry)})

    def result(self) -> dict[str, list[Any]]:
        return {name: _unique(values) for name, values in self.values.items()}


def _unique(values: list[Any]) -> list[Any]:
    """Strings once each (a smaller multikey index); sub-documents as they are."""
    if values and isinstance(values[0], str):
        return list(dict.fromkeys(values))
    return values


def _quantity(entry: QuantityEntry) -> dict[str, Any]:
    return _compact(
        {
            "l": entry.low,
            "h": entry.high,
            "s": entry.system,
            "c": entry.code,
            "u": entry.unit,
            "cl": entry.canonical_low,
            "ch": entry.canonical_high,
            "cc": entry.canonical_code,
        }
    )


def _reference(entry: ReferenceEntry) -> dict[str, Any]:
    return _compact(
        {
            "k": reference_key(entry.target_type, entry.target_id),
            "t": entry.target_type,
            "i": entry.target_id,
            "u": entry.url,
            "v": entry.version,
            "s": entry.identifier_system,
            "n": entry.identifier_value,
        }
    )


def component_names(position: int) -> dict[str, str]:
    """Field names of component ``position`` inside a composite element."""
    return {kind: f"{kind}{position}" for kind in KIND_FIELDS}


def _composite(code: str, entry: CompositeEntry) -> dict[str, Any]:
    element: dict[str, Any] = {"p": code}
    for position, part in enumerate(entry.parts):
        fields = _Fields(component_names(position))
        for component in part:
            fields.add_entry(component, "", {})
        element.update(fields.result())
    return element


SortValue = str | int | float


def _sort_value(entry: IndexEntry | CompositeEntry, descending: bool) -> SortValue | None:
    """One entry's contribution to the sort (matcher._entry_sort_value)."""
    match entry:
        case DateEntry() | QuantityEntry():
            return entry.high if descending else entry.low
        case NumberEntry():
            return entry.value
        case StringEntry():
            return entry.normalized
        case TokenEntry():
            return entry.code
        case ReferenceEntry():
            return reference_key(entry.target_type, entry.target_id)
        case UriEntry():
            return entry.uri
    return None


def _sort_entry(code: str, entries: Iterable[IndexEntry | CompositeEntry]) -> dict[str, Any] | None:
    entries = tuple(entries)
    lows = [v for e in entries if (v := _sort_value(e, False)) is not None]
    highs = [v for e in entries if (v := _sort_value(e, True)) is not None]
    if not lows or not highs:
        return None
    return {"p": code, "a": min(lows), "d": max(highs)}


def index_fields(index: ResourceIndex) -> dict[str, Any]:
    """The ``ix*`` fields of a live resource document holding ``index``."""
    fields = _Fields(KIND_FIELDS)
    composites: list[dict[str, Any]] = []
    sort: list[dict[str, Any]] = []
    present: list[str] = []
    for code, entries in index.entries.items():
        if not entries:
            continue
        present.append(code)
        prefix, base = param_prefix(code), {"p": code}
        for entry in entries:
            if isinstance(entry, CompositeEntry):
                composites.append(_composite(code, entry))
            else:
                fields.add_entry(entry, prefix, base)
        sort_entry = _sort_entry(code, entries)
        if sort_entry is not None:
            sort.append(sort_entry)
    result: dict[str, Any] = {PRESENT: present, **fields.result()}
    if composites:
        result[COMPOSITES] = composites
    if index.compartments:
        members = (reference_key(t, i) for t, i in index.compartments)
        result[COMPARTMENTS] = list(dict.fromkeys(m for m in members if m is not None))
    if sort:
        result[SORT] = sort
    return result
