"""A CodeSystem read once into a flat index of its concepts, with the hierarchy resolved.

R4 states a hierarchy in two ways (http://hl7.org/fhir/R4/codesystem.html#hierarchy): nested
``concept`` elements, and the ``parent``/``child`` properties (``subsumedBy`` in the
terminology-level vocabulary, http://hl7.org/fhir/concept-properties). Both are read, so
``is-a``/``descendent-of`` filters and ``$lookup``'s parent/child work for either style.

A concept is *abstract* when its ``notSelectable`` (or ``abstract``) property is true, and
*inactive* when its ``status`` is retired/inactive/deprecated or its ``inactive`` property is
true (the core uses all of these).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_PARENT_PROPERTIES = frozenset(("parent", "subsumedBy"))
_CHILD_PROPERTIES = frozenset(("child",))
_INACTIVE_STATUS = frozenset(("retired", "inactive", "deprecated"))
_VALUE_KEYS = (
    "valueCode", "valueCoding", "valueString", "valueInteger", "valueBoolean",
    "valueDateTime", "valueDecimal",
)  # fmt: skip


@dataclass(slots=True)
class Concept:
    """One concept of a code system, as the operations report it."""

    code: str
    display: str | None
    definition: str | None
    designations: list[dict[str, Any]]
    properties: list[tuple[str, Any]]  # (property code, value) in order
    raw_properties: list[dict[str, Any]] = field(default_factory=list)  # as written
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    abstract: bool = False
    inactive: bool = False


def property_value(prop: dict[str, Any]) -> Any:
    for key in _VALUE_KEYS:
        if key in prop:
            return prop[key]
    return None


class CodeSystemIndex:
    """The concepts of one CodeSystem resource by code, with parents and children."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.url: str = str(resource.get("url", ""))
        self.version: str | None = resource.get("version")
        self.content: str = str(resource.get("content", "complete"))
        self.case_sensitive: bool = resource.get("caseSensitive") is not False
        self.concepts: dict[str, Concept] = {}
        self._folded: dict[str, str] | None = None
        self._descendants: dict[str, frozenset[str]] = {}
        for concept in resource.get("concept", ()):
            self._add(concept, None)
        self._link_properties()

    @property
    def complete(self) -> bool:
        """Whether every code of the system is here (``example``/``fragment`` are partial)."""
        return self.content == "complete"

    def _add(self, raw: dict[str, Any], parent: str | None) -> None:
        code = raw.get("code")
        if not isinstance(code, str):
            return
        props = [
            (str(p.get("code")), property_value(p))
            for p in raw.get("property", ())
            if isinstance(p, dict)
        ]
        concept = Concept(
            code, raw.get("display"), raw.get("definition"),
            list(raw.get("designation", ())), props,
            [p for p in raw.get("property", ()) if isinstance(p, dict)],
        )  # fmt: skip
        for name, value in props:
            if name in ("notSelectable", "abstract") and value is True:
                concept.abstract = True
            elif (name == "status" and value in _INACTIVE_STATUS) or (
                name == "inactive" and value is True
            ):
                concept.inactive = True
        self.concepts.setdefault(code, concept)
        if parent is not None:
            _link(self.concepts, parent, code)
        for child in raw.get("concept", ()):
            self._add(child, code)

    def _link_properties(self) -> None:
        for concept in list(self.concepts.values()):
            for name, value in concept.properties:
                if name in _PARENT_PROPERTIES and isinstance(value, str):
                    _link(self.concepts, value, concept.code)
                elif name in _CHILD_PROPERTIES and isinstance(value, str):
                    _link(self.concepts, concept.code, value)

    def get(self, code: str) -> Concept | None:
        """The concept with that code (case-insensitively when the system says so)."""
        found = self.concepts.get(code)
        if found is not None or self.case_sensitive:
            return found
        if self._folded is None:
            self._folded = {c.lower(): c for c in self.concepts}
        key = self._folded.get(code.lower())
        return self.concepts[key] if key is not None else None

    def descendants(self, code: str) -> frozenset[str]:
        """Every code below ``code`` (not itself), through any number of levels."""
        cached = self._descendants.get(code)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self.concepts[code].children) if code in self.concepts else []
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            concept = self.concepts.get(current)
            if concept is not None:
                stack.extend(concept.children)
        result = frozenset(seen)
        self._descendants[code] = result
        return result

    def ancestors(self, code: str) -> frozenset[str]:
        """Every code above ``code`` (not itself)."""
        seen: set[str] = set()
        stack = list(self.concepts[code].parents) if code in self.concepts else []
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                concept = self.concepts.get(current)
                stack.extend(concept.parents if concept is not None else ())
        return frozenset(seen)

    def subsumes(self, ancestor: str, code: str) -> bool:
        return code == ancestor or code in self.descendants(ancestor)

    def __iter__(self) -> Iterator[Concept]:
        return iter(self.concepts.values())

    def __len__(self) -> int:
        return len(self.concepts)


def _link(concepts: dict[str, Concept], parent: str, child: str) -> None:
    if parent in concepts and child not in concepts[parent].children:
        concepts[parent].children.append(child)
    if child in concepts and parent not in concepts[child].parents:
        concepts[child].parents.append(parent)
