"""ValueSet expansion: ``compose`` -> the list of codes (http://hl7.org/fhir/R4/valueset.html#compose).

Rules followed (R4 valueset.html and terminology-service.html#expand):

* within one ``include``, the system part (all of it, ``concept``, or ``filter`` s, which AND)
  and each imported ``valueSet`` are intersected; includes are unioned; ``exclude`` s subtract;
* a value set that has only an ``expansion`` is used as it is;
* a code system the server does not hold (SNOMED CT, LOINC, DICOM…) is fine when its concepts are
  enumerated; a whole-system include or a filter on it is :class:`ExpansionNotSupported`, naming
  the system; so is a CodeSystem whose ``content`` is ``not-present``. ``example`` and
  ``fragment`` code systems expand to what they hold (the expansion is then flagged partial);
* ``compose.inactive: false`` leaves out inactive concepts taken from a code system;
* imports are followed with cycle detection; an expansion larger than ``max_size`` codes is
  :class:`TooCostly` (``$expand`` and ``:in`` say which value set).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from fhir_server.terminology.codesystems import CodeSystemIndex, Concept
from fhir_server.terminology.errors import ExpansionNotSupported, TooCostly, UnknownValueSet

DEFAULT_MAX_SIZE = 10_000
Key = tuple[str, str]  # (system, code)


@dataclass(frozen=True, slots=True)
class Entry:
    """One code of an expansion (ValueSet.expansion.contains)."""

    system: str
    code: str
    display: str | None = None
    version: str | None = None
    abstract: bool = False
    inactive: bool = False
    designations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Expansion:
    """The codes of a value set; ``used`` the ``system|version`` code systems read; ``partial``
    when some came from an example/fragment code system or a stored expansion."""

    url: str | None
    version: str | None
    entries: tuple[Entry, ...]
    used: tuple[str, ...] = ()
    partial: bool = False

    def keys(self) -> frozenset[Key]:
        return frozenset((e.system, e.code) for e in self.entries)


#: Looks up a CodeSystem index by ``url`` or ``url|version`` (None: not held).
CodeSystems = Callable[[str], CodeSystemIndex | None]
#: Looks up a ValueSet resource by ``url`` or ``url|version``.
ValueSets = Callable[[str], dict[str, Any] | None]


class Expander:
    """One expansion run: code systems and value sets come from the callables."""

    def __init__(
        self, code_systems: CodeSystems, value_sets: ValueSets, max_size: int = DEFAULT_MAX_SIZE
    ) -> None:
        self._code_systems = code_systems
        self._value_sets = value_sets
        self.max_size = max_size
        self._used: dict[str, None] = {}
        self._partial = False

    def expand(self, value_set: dict[str, Any], stack: tuple[str, ...] = ()) -> Expansion:
        url = value_set.get("url")
        what = str(url or value_set.get("id") or "the value set")
        compose = value_set.get("compose")
        if not isinstance(compose, dict):
            return self._stored_expansion(value_set, what)
        found: dict[Key, Entry] = {}
        inner = (*stack, str(url)) if url else stack
        for include in compose.get("include", ()):
            for entry in self._part(include, inner, what):
                found.setdefault((entry.system, entry.code), entry)
            self._check_size(len(found), what)
        for exclude in compose.get("exclude", ()):
            for entry in self._part(exclude, inner, what):
                found.pop((entry.system, entry.code), None)
        entries: Iterable[Entry] = found.values()
        if compose.get("inactive") is False:
            entries = (e for e in entries if not e.inactive)
        return Expansion(
            url if isinstance(url, str) else None, value_set.get("version"),
            tuple(entries), tuple(self._used), self._partial,
        )  # fmt: skip

    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_size:
            raise TooCostly(
                f"The expansion of ValueSet '{what}' has more than {self.max_size} codes; "
                "this server does not expand value sets that large"
            )

    def _stored_expansion(self, value_set: dict[str, Any], what: str) -> Expansion:
        expansion = value_set.get("expansion")
        if not isinstance(expansion, dict):
            raise ExpansionNotSupported(
                f"ValueSet '{what}' has neither a compose nor an expansion: nothing to expand"
            )
        entries: list[Entry] = []
        _flatten(expansion.get("contains", ()), entries)
        self._check_size(len(entries), what)
        url = value_set.get("url")
        return Expansion(
            url if isinstance(url, str) else None, value_set.get("version"), tuple(entries),
            partial=expansion.get("total", len(entries)) != len(entries),
        )  # fmt: skip

    # --- one include or exclude ------------------------------------------------------------

    def _part(self, part: dict[str, Any], stack: tuple[str, ...], what: str) -> list[Entry]:
        """The codes of one include/exclude: its system part intersected with its imports."""
        sets: list[dict[Key, Entry]] = []
        system = part.get("system")
        if isinstance(system, str):
            sets.append({(e.system, e.code): e for e in self._system_part(part, system, what)})
        for reference in part.get("valueSet", ()):
            imported = self._import(str(reference), stack, what)
            sets.append({(e.system, e.code): e for e in imported})
        if not sets:
            return []
        first, *rest = sets
        return [entry for key, entry in first.items() if all(key in other for other in rest)]

    def _import(self, reference: str, stack: tuple[str, ...], what: str) -> tuple[Entry, ...]:
        url = reference.partition("|")[0]
        if url in stack:
            chain = " -> ".join((*stack, url))
            raise ExpansionNotSupported(f"ValueSet '{what}' imports itself in a cycle: {chain}")
        resource = self._value_sets(reference)
        if resource is None:
            raise UnknownValueSet(reference)
        return self.expand(resource, stack).entries

    def _system_part(self, part: dict[str, Any], system: str, what: str) -> list[Entry]:
        version = part.get("version")
        reference = f"{system}|{version}" if isinstance(version, str) else system
        index = self._code_systems(reference)
        concepts = part.get("concept")
        if isinstance(concepts, list) and concepts:
            return self._enumerated(system, index, concepts)
        if index is None or index.content == "not-present":
            kind = "a filter on" if part.get("filter") else "all codes of"
            raise ExpansionNotSupported(
                f"ValueSet '{what}' includes {kind} code system '{system}', which this server "
                "does not hold; only value sets that list that system's codes can be expanded"
            )
        self._note(index)
        chosen: Iterable[Concept] = index
        for raw in part.get("filter", ()):
            chosen = apply_filter(index, raw, list(chosen), what)
        return [_entry(index, c) for c in chosen]

    def _enumerated(
        self, system: str, index: CodeSystemIndex | None, concepts: list[dict[str, Any]]
    ) -> list[Entry]:
        """Listed codes: kept as listed for a system not held; else checked against it (a code
        a complete system lacks is left out), with its display and flags from the system."""
        out: list[Entry] = []
        if index is not None:
            self._note(index)
        for raw in concepts:
            code = raw.get("code")
            if not isinstance(code, str):
                continue
            designations = tuple(raw.get("designation", ()))
            concept = index.get(code) if index is not None else None
            if concept is None:
                if index is not None and index.complete:
                    continue
                out.append(Entry(system, code, raw.get("display"), designations=designations))
                continue
            entry = _entry(index, concept) if index is not None else Entry(system, code)
            if raw.get("display"):
                entry = replace(entry, display=raw["display"])
            out.append(replace(entry, designations=designations or entry.designations))
        return out

    def _note(self, index: CodeSystemIndex) -> None:
        self._used[f"{index.url}|{index.version}" if index.version else index.url] = None
        if not index.complete:
            self._partial = True


def _entry(index: CodeSystemIndex, concept: Concept) -> Entry:
    return Entry(
        index.url, concept.code, concept.display, index.version, concept.abstract,
        concept.inactive, tuple(concept.designations),
    )  # fmt: skip


def _flatten(contains: Iterable[dict[str, Any]], out: list[Entry]) -> None:
    for item in contains:
        if isinstance(item.get("system"), str) and isinstance(item.get("code"), str):
            out.append(
                Entry(
                    item["system"], item["code"], item.get("display"), item.get("version"),
                    item.get("abstract") is True, item.get("inactive") is True,
                    tuple(item.get("designation", ())),
                )
            )  # fmt: skip
        _flatten(item.get("contains", ()), out)


# --- filters (valueset.html#compose: ValueSet.compose.include.filter) --------------------------


def apply_filter(
    index: CodeSystemIndex, raw: dict[str, Any], concepts: list[Concept], what: str
) -> list[Concept]:
    """The concepts among ``concepts`` that pass one filter."""
    prop, op, value = str(raw.get("property", "")), str(raw.get("op", "")), raw.get("value")
    if not isinstance(value, str):
        raise ExpansionNotSupported(f"ValueSet '{what}': a filter on '{prop}' has no value")
    hierarchical = prop in ("concept", "code")
    if hierarchical and op in ("is-a", "descendent-of", "is-not-a", "generalizes"):
        below = index.descendants(value)
        if op == "is-a":
            return [c for c in concepts if c.code == value or c.code in below]
        if op == "descendent-of":
            return [c for c in concepts if c.code in below]
        if op == "is-not-a":
            return [c for c in concepts if c.code != value and c.code not in below]
        return [c for c in concepts if index.subsumes(c.code, value)]
    if op in ("in", "not-in") and hierarchical:
        listed = {v.strip() for v in value.split(",")}
        return [c for c in concepts if (c.code in listed) == (op == "in")]
    if op == "regex":
        pattern = re.compile(value)
        return [c for c in concepts if any(pattern.fullmatch(v) for v in _values(c, prop))]
    if op == "=":
        return [c for c in concepts if value in _values(c, prop)]
    if op == "exists":
        wanted = value == "true"
        return [c for c in concepts if bool(_values(c, prop)) == wanted]
    if op in ("in", "not-in"):
        listed = {v.strip() for v in value.split(",")}
        return [c for c in concepts if bool(listed & set(_values(c, prop))) == (op == "in")]
    raise ExpansionNotSupported(
        f"ValueSet '{what}': the filter '{prop} {op}' on '{index.url}' is not supported"
    )


def _values(concept: Concept, prop: str) -> list[str]:
    """The values of a property as text (codes, strings, booleans as true/false)."""
    if prop in ("concept", "code"):
        return [concept.code]
    if prop == "display":
        return [concept.display] if concept.display else []
    if prop in ("parent", "subsumedBy"):
        return list(concept.parents)
    if prop == "child":
        return list(concept.children)
    out: list[str] = []
    for name, value in concept.properties:
        if name != prop:
            continue
        if isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, dict):
            out.append(str(value.get("code", "")))
        elif value is not None:
            out.append(str(value))
    return out
