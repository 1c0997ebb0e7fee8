"""``_summary`` and ``_elements``: a subset of a resource (R4 search.html#summary, #elements).

Pure functions over FHIR JSON dicts, driven by the R4 StructureDefinition facts of
:mod:`fhir_server.core.r4`. Used by read/vread and, later, search.

Decisions where R4 is loose:

* ``_summary=true`` keeps the elements whose base definition says ``isSummary``, plus mandatory
  ones (min >= 1), plus ``resourceType``, ``id`` and ``meta``, recursing into BackboneElements
  (and ``#path`` content references). Data types are kept whole, except that ``Attachment.data`` is
  dropped where the resource itself types the element ``Attachment`` (ElementDefinition.isSummary
  comment: "Other than Attachment.data, all data type properties are included"); Attachments
  nested inside other data types (RelatedArtifact.document...) stay whole, as the tables do not
  describe data types. The table is followed as is: in R4 ``modifierExtension`` is summary inside
  backbone elements but not at resource level.
* ``_summary`` and ``_elements`` together: R4 does not say how they combine. ``_summary=false``
  (the default view) with ``_elements`` applies ``_elements``; ``_summary=count`` with
  ``_elements`` is a count (nothing to subset); any other pair is InvalidRequest rather than
  silently honouring one of two conflicting views.
* ``_elements`` accepts top-level names only (``name``, ``value``, ``value[x]``, ``valueQuantity``,
  optionally prefixed by the resource type, ``Patient.name``); mandatory top-level elements are
  always returned ("Servers SHOULD always return mandatory elements").
* Whenever content was removed, ``meta.tag`` gets the SUBSETTED coding (once). Nothing removed,
  no tag. Diagnostics never echo submitted text that is not shaped like an element name.

Results are new dicts; containers that change are rebuilt, unchanged sub-objects are shared with
the input, which is never mutated: treat both as read-only. Values (FhirDecimal...) are kept as is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any, Final

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest

__all__ = [
    "SUBSETTED_CODE",
    "SUBSETTED_SYSTEM",
    "Subsetting",
    "SummaryMode",
    "apply_elements",
    "apply_summary",
    "parse_elements",
    "parse_subsetting",
    "parse_summary",
    "subsetted_tag",
]

JsonObject = dict[str, Any]

SUBSETTED_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
SUBSETTED_CODE: Final = "SUBSETTED"
_ALWAYS: Final = frozenset({"resourceType", "id", "_id", "meta"})
_NAME_SHAPE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}(\[x\])?")


class SummaryMode(StrEnum):
    """The R4 ``_summary`` codes (search.html#summary, ValueSet search-summary)."""

    TRUE = "true"
    TEXT = "text"
    DATA = "data"
    COUNT = "count"
    FALSE = "false"


def subsetted_tag() -> JsonObject:
    """The coding marking an incomplete resource (search.html#summary), a fresh dict each call."""
    return {"system": SUBSETTED_SYSTEM, "code": SUBSETTED_CODE, "display": "subsetted"}


# --- parsing ------------------------------------------------------------------------------------


def parse_summary(value: str, *, allow_count: bool = False) -> SummaryMode:
    """Parse a ``_summary`` value (search.html#summary); codes are case-sensitive.

    ``count`` only makes sense for search: pass ``allow_count=True`` there and handle
    :attr:`SummaryMode.COUNT` before subsetting; read/vread leave it False and get InvalidRequest.
    """
    try:
        mode = SummaryMode(value.strip())
    except ValueError:
        allowed = ", ".join(m.value for m in SummaryMode)
        raise InvalidRequest(
            f"Unknown _summary value; allowed values are: {allowed}", expression=("_summary",)
        ) from None
    if mode is SummaryMode.COUNT and not allow_count:
        raise _count_not_allowed()
    return mode


def parse_elements(value: str, resource_type: str) -> tuple[str, ...]:
    """Parse ``_elements`` (search.html#elements) into the canonical top-level names.

    Blank entries are ignored (all blank: InvalidRequest); ``value[x]`` becomes ``value``;
    a ``ResourceType.`` prefix naming ``resource_type`` is dropped; duplicates are removed.
    Unknown names for ``resource_type`` raise InvalidRequest naming them.
    """
    entries = [entry.strip() for entry in value.split(",")]
    names = [_unprefixed(entry, resource_type) for entry in entries if entry]
    if not names:
        raise InvalidRequest(
            "_elements is empty; list one or more top-level element names",
            expression=("_elements",),
        )
    return _validated(names, resource_type)


def _unprefixed(entry: str, resource_type: str) -> str:
    prefix = resource_type + "."
    return entry[len(prefix) :] if entry.startswith(prefix) else entry


def _validated(names: Iterable[str], resource_type: str) -> tuple[str, ...]:
    selectable = _selectable(resource_type)
    canonical = [name.removesuffix("[x]") for name in names]
    unknown = [name for name in canonical if name not in selectable]
    if unknown:
        raise _unknown_elements(unknown, resource_type)
    return tuple(dict.fromkeys(canonical))


def _unknown_elements(unknown: list[str], resource_type: str) -> InvalidRequest:
    shown = [name for name in dict.fromkeys(unknown) if _NAME_SHAPE.fullmatch(name)]
    hidden = len(set(unknown)) - len(shown)
    parts = [", ".join(shown)] if shown else []
    if hidden:
        noun = "entry" if hidden == 1 else "entries"
        parts.append(f"{hidden} {noun} not shaped like an element name")
    return InvalidRequest(
        f"_elements lists what is not a top-level element of {resource_type}: "
        f"{'; '.join(parts)} (only top-level element names are allowed)",
        expression=("_elements",),
    )


def _count_not_allowed() -> InvalidRequest:
    return InvalidRequest(
        "_summary=count is only meaningful for search; it cannot be used here",
        expression=("_summary",),
    )


# --- the request as a whole ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subsetting:
    """What a request asked for: one ``_summary`` mode, or ``_elements`` names (never both)."""

    summary: SummaryMode = SummaryMode.FALSE
    elements: tuple[str, ...] = ()

    def apply(self, resource: JsonObject) -> JsonObject:
        if self.elements and self.summary is not SummaryMode.COUNT:
            return apply_elements(resource, self.elements)
        return apply_summary(resource, self.summary)


def parse_subsetting(
    resource_type: str,
    summary: str | None = None,
    elements: str | None = None,
    *,
    allow_count: bool = False,
) -> Subsetting:
    """Parse both parameters of one request and check they may be combined (see module doc)."""
    mode = parse_summary(summary, allow_count=allow_count) if summary is not None else None
    names = parse_elements(elements, resource_type) if elements is not None else ()
    if mode is not None and names and mode not in (SummaryMode.FALSE, SummaryMode.COUNT):
        raise InvalidRequest(
            f"_summary={mode.value} and _elements cannot be used together; use one of them",
            expression=("_summary", "_elements"),
        )
    return Subsetting(mode or SummaryMode.FALSE, names)


# --- per-type lookup tables, computed once -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    """What one JSON key of an object means for subsetting."""

    element: str  # canonical element name: ``value`` for ``valueQuantity``
    summary: bool  # isSummary or mandatory
    mandatory: bool
    nested: str | None  # path whose children govern the content (backbone), else kept whole
    attachment: bool  # typed Attachment: ``data`` leaves the summary


@cache
def _keys(resource_type: str, path: str) -> dict[str, _Key]:
    """JSON key -> :class:`_Key` for the children of ``path`` (``Observation.component``)."""
    table: dict[str, _Key] = {}
    for info in r4.children(resource_type, path).values():
        stem = info.name.removesuffix("[x]")
        nested = _nested_path(resource_type, info)
        summary, mandatory = info.is_summary or info.min >= 1, info.min >= 1
        codes = info.types if info.is_choice else (None,)
        for code in codes:
            key = stem + code[0].upper() + code[1:] if code else stem
            attachment = (code or (info.types[0] if info.types else "")) == "Attachment"
            entry = _Key(stem, summary, mandatory, nested, attachment)
            table[key] = table["_" + key] = entry
    return table


def _nested_path(resource_type: str, info: r4.ElementInfo) -> str | None:
    target = info.content_reference or info.path
    return target if r4.children(resource_type, target) else None


@cache
def _selectable(resource_type: str) -> dict[str, frozenset[str]]:
    """Name ``_elements`` accepts -> JSON keys it selects (``value`` -> ``valueQuantity``...,
    ``valueQuantity`` -> itself), each with its ``_`` primitive extension key."""
    selectable: dict[str, set[str]] = {"resourceType": {"resourceType"}}
    for key, entry in _resource_keys(resource_type).items():
        selectable.setdefault(entry.element, set()).add(key)
        selectable.setdefault(key.removeprefix("_"), set()).add(key)
    return {name: frozenset(keys) for name, keys in selectable.items()}


@cache
def _always_kept(resource_type: str) -> frozenset[str]:
    """``resourceType``, ``id``, ``meta`` and the mandatory top-level keys."""
    kept = {key for key, entry in _resource_keys(resource_type).items() if entry.mandatory}
    return frozenset(kept | _ALWAYS)


def _selected_keys(resource_type: str, names: Iterable[str]) -> frozenset[str]:
    """Top-level keys kept by ``_elements`` (not cached: the names come from the request)."""
    selectable = _selectable(resource_type)
    chosen = set(_always_kept(resource_type))
    for name in _validated(names, resource_type):
        chosen |= selectable[name]
    return frozenset(chosen)


def _resource_keys(resource_type: str) -> dict[str, _Key]:
    if not r4.is_resource_type(resource_type):
        raise ValueError(f"not a concrete R4 resource type: {resource_type!r}")
    return _keys(resource_type, resource_type)


def _type_of(resource: JsonObject) -> str:
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not r4.is_resource_type(resource_type):
        raise ValueError("the dict is not a resource of a concrete R4 type")
    return resource_type


# --- applying -----------------------------------------------------------------------------------


def apply_summary(resource: JsonObject, mode: SummaryMode) -> JsonObject:
    """Return the ``_summary`` view of ``resource`` (search.html#summary); input untouched.

    ``false`` returns everything, ``data`` drops ``text``, ``text`` keeps ``text`` and the
    always-kept top-level elements, ``true`` keeps summary elements recursively (module doc).
    ``count`` has no resource view: InvalidRequest.
    """
    resource_type = _type_of(resource)
    if mode is SummaryMode.COUNT:
        raise _count_not_allowed()
    if mode is SummaryMode.FALSE:
        return dict(resource)
    if mode is SummaryMode.DATA:
        out = {k: v for k, v in resource.items() if k != "text"}
        return _mark(out, removed=len(out) != len(resource))
    if mode is SummaryMode.TEXT:
        kept = _always_kept(resource_type) | {"text"}
        return _keep_top_level(resource, kept)
    summary, removed = _summarise(resource, resource_type, resource_type)
    return _mark(summary or {}, removed=removed)


def apply_elements(resource: JsonObject, names: Iterable[str]) -> JsonObject:
    """Return only the named top-level elements plus ``id``, ``meta``, ``resourceType`` and the
    mandatory ones (search.html#elements); names as :func:`parse_elements` returns them."""
    resource_type = _type_of(resource)
    return _keep_top_level(resource, _selected_keys(resource_type, names))


def _keep_top_level(resource: JsonObject, kept: frozenset[str]) -> JsonObject:
    out = {k: v for k, v in resource.items() if k in kept}
    return _mark(out, removed=len(out) != len(resource))


def _summarise(node: JsonObject, resource_type: str, path: str) -> tuple[JsonObject | None, bool]:
    """Keep the summary keys of one object; None when nothing is left."""
    keys = _keys(resource_type, path)
    top = path == resource_type
    out: JsonObject = {}
    removed = False
    for key, value in node.items():
        entry = keys.get(key)
        if not ((top and key in _ALWAYS) or (entry is not None and entry.summary)):
            removed = True
            continue
        new_value, changed = _summarise_value(key, value, entry, resource_type)
        removed = removed or changed
        if new_value is not None:
            out[key] = new_value
    return (out or None), removed


def _summarise_value(
    key: str, value: Any, entry: _Key | None, resource_type: str
) -> tuple[Any, bool]:
    if entry is None or key.startswith("_"):
        return value, False
    if entry.nested is not None:
        nested = entry.nested
        return _each(value, lambda item: _summarise(item, resource_type, nested))
    if entry.attachment:
        return _each(value, _without_attachment_data)
    return value, False


def _without_attachment_data(node: JsonObject) -> tuple[JsonObject | None, bool]:
    out = {k: v for k, v in node.items() if k not in ("data", "_data")}
    return (out or None), len(out) != len(node)


def _each(
    value: Any, change: Callable[[JsonObject], tuple[JsonObject | None, bool]]
) -> tuple[Any, bool]:
    """Apply ``change`` to an object or to each object of an array; empty results are dropped."""
    if isinstance(value, dict):
        return change(value)
    if not isinstance(value, list):
        return value, False
    out: list[Any] = []
    removed = False
    for item in value:
        new_item, changed = change(item) if isinstance(item, dict) else (item, False)
        removed = removed or changed
        if new_item is not None:
            out.append(new_item)
    return (out or None), removed


def _mark(resource: JsonObject, *, removed: bool) -> JsonObject:
    """Add the SUBSETTED tag to ``meta`` (a new meta) when content was removed."""
    if not removed:
        return resource
    meta = resource.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    tags = meta.get("tag")
    tags = list(tags) if isinstance(tags, list) else []
    if not any(_is_subsetted(tag) for tag in tags):
        tags.append(subsetted_tag())
    meta["tag"] = tags
    if "meta" in resource:
        return {k: (meta if k == "meta" else v) for k, v in resource.items()}
    head: JsonObject = {k: resource[k] for k in ("resourceType", "id", "_id") if k in resource}
    return {**head, "meta": meta, **resource}


def _is_subsetted(tag: Any) -> bool:
    return (
        isinstance(tag, dict)
        and tag.get("system") == SUBSETTED_SYSTEM
        and tag.get("code") == SUBSETTED_CODE
    )
