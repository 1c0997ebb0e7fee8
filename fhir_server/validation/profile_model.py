"""StructureDefinitions compiled into element rules, once per definition.

A snapshot (http://hl7.org/fhir/R4/profiling.html#snapshot) lists every element with its final
constraints. :func:`compile_definition` turns it into a tree of :class:`ElementRule`, keyed by the
element ``id`` (``Observation.category:VSCat.coding.system``): children by JSON name stem, slices
(``sliceName``) under the element they slice. Checking an instance then walks the tree and the
JSON together (profile_check.py); nothing is looked up by path at check time.

Cardinality is checked only where the definition is tighter than the element's ``base`` (the
structural walk already enforces the base cardinalities of R4), and reference targets only in
constraining definitions (profiles): the core's own targets are checked with the references.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: ``max`` of "*".
UNBOUNDED = -1
FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_SYSTEM_TYPE = "http://hl7.org/fhirpath/System."


@dataclass(frozen=True, slots=True)
class TypeRule:
    """One allowed type: its code, the profiles a value must meet, a reference's targets."""

    code: str
    profiles: tuple[str, ...] = ()
    target_profiles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Binding:
    strength: str  # required | extensible | preferred | example
    value_set: str


@dataclass(frozen=True, slots=True)
class Discriminator:
    type: str  # value | pattern | exists | type | profile
    path: str


@dataclass(frozen=True, slots=True)
class Slicing:
    discriminators: tuple[Discriminator, ...]
    rules: str  # closed | open | openAtEnd
    ordered: bool


@dataclass(slots=True)
class ElementRule:
    """One element of a snapshot. ``name`` is the JSON name stem (``value[x]`` for a choice)."""

    id: str
    path: str
    name: str
    min: int
    max: int
    base_min: int
    base_max: int
    types: tuple[TypeRule, ...] = ()
    fixed: tuple[str, Any] | None = None  # (type suffix, value) of fixed[x]
    pattern: tuple[str, Any] | None = None  # (type suffix, value) of pattern[x]
    binding: Binding | None = None
    constraints: tuple[dict[str, Any], ...] = ()
    content_reference: str | None = None
    slice_name: str | None = None
    slicing: Slicing | None = None
    children: dict[str, ElementRule] = field(default_factory=dict)
    slices: list[ElementRule] = field(default_factory=list)
    #: The children by every JSON name they may take (choices expanded: valueQuantity...).
    by_json_name: dict[str, ElementRule] = field(default_factory=dict)
    #: Children a profile constrains even when absent (tighter cardinality, or slices).
    constrained: tuple[ElementRule, ...] = ()
    #: Whether this element or one below it in the snapshot has a value check (fixed, pattern,
    #: required or extensible binding): without invariants or profile rules, the walk skips the
    #: subtrees where this is False.
    has_value_checks: bool = False

    @property
    def is_choice(self) -> bool:
        return self.name.endswith("[x]")

    @property
    def stem(self) -> str:
        return self.name[:-3] if self.is_choice else self.name

    @property
    def is_array(self) -> bool:
        return self.base_max != 1

    @property
    def tighter_min(self) -> bool:
        return self.min > self.base_min

    @property
    def tighter_max(self) -> bool:
        return self.max != UNBOUNDED and (self.base_max == UNBOUNDED or self.max < self.base_max)

    def type_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.types)


@dataclass(slots=True)
class CompiledDefinition:
    """A StructureDefinition ready to check against: ``root`` is the element of its type."""

    url: str
    type: str
    kind: str
    derivation: str
    root: ElementRule

    @property
    def is_profile(self) -> bool:
        return self.derivation == "constraint"


def _max(value: object) -> int:
    if value == "*" or value is None:
        return UNBOUNDED
    return int(str(value))


def _type_code(raw: Mapping[str, Any]) -> str:
    """The FHIR type of an ElementDefinition.type; a primitive's ``value`` element has a FHIRPath
    system type and names its FHIR type in an extension."""
    code = str(raw.get("code", ""))
    if code.startswith(_SYSTEM_TYPE):
        for ext in raw.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXTENSION:
                return str(ext.get("valueUrl") or ext.get("valueUri") or code)
    return code


def _choice_value(element: Mapping[str, Any], prefix: str) -> tuple[str, Any] | None:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return key[len(prefix) :], value
    return None


def _rule(element: Mapping[str, Any]) -> ElementRule:
    path = str(element["path"])
    base = element.get("base") or {}
    types = tuple(
        TypeRule(
            _type_code(t),
            tuple(str(p) for p in t.get("profile", [])),
            tuple(str(p) for p in t.get("targetProfile", [])),
        )
        for t in element.get("type", [])
    )
    binding = element.get("binding")
    value_set = binding.get("valueSet") if isinstance(binding, Mapping) else None
    slicing = element.get("slicing")
    return ElementRule(
        id=str(element.get("id") or path),
        path=path,
        name=path.rsplit(".", 1)[-1],
        min=int(element.get("min", 0)),
        max=_max(element.get("max", "*")),
        base_min=int(base.get("min", element.get("min", 0))),
        base_max=_max(base.get("max", element.get("max", "*"))),
        types=types,
        fixed=_choice_value(element, "fixed"),
        pattern=_choice_value(element, "pattern"),
        binding=(
            Binding(str(binding.get("strength", "")), str(value_set))
            if isinstance(binding, Mapping) and value_set
            else None
        ),
        constraints=tuple(element.get("constraint", [])),
        content_reference=element.get("contentReference"),
        slice_name=element.get("sliceName"),
        slicing=(
            Slicing(
                tuple(
                    Discriminator(str(d.get("type")), str(d.get("path")))
                    for d in slicing.get("discriminator", [])
                ),
                str(slicing.get("rules", "open")),
                bool(slicing.get("ordered", False)),
            )
            if isinstance(slicing, Mapping)
            else None
        ),
    )


def _parent_id(element_id: str) -> tuple[str, str | None]:
    """(the id of the element this one hangs under, its slice name if it is a slice).

    ``A.b:s`` is slice ``s`` of ``A.b``; ``A.b:s.c`` is a child of ``A.b:s``; ``A.b.c`` of ``A.b``.
    """
    head, _, last = element_id.rpartition(".")
    if ":" in last:
        name, _, slice_name = last.partition(":")
        return (f"{head}.{name}" if head else name), slice_name
    return head, None


def compile_definition(sd: Mapping[str, Any]) -> CompiledDefinition:
    """The rule tree of a StructureDefinition's snapshot (ValueError when it has none)."""
    elements = (sd.get("snapshot") or {}).get("element") or []
    if not elements:
        raise ValueError(f"StructureDefinition {sd.get('url')} has no snapshot")
    by_id: dict[str, ElementRule] = {}
    root: ElementRule | None = None
    for element in elements:
        rule = _rule(element)
        by_id[rule.id] = rule
        if root is None:
            root = rule
            continue
        parent_id, slice_name = _parent_id(rule.id)
        if slice_name is not None:
            sliced = by_id.get(parent_id)
            if sliced is not None:
                sliced.slices.append(rule)
            continue
        parent = by_id.get(parent_id)
        if parent is not None:
            parent.children[rule.name] = rule
    assert root is not None
    _index(root)
    return CompiledDefinition(
        url=str(sd.get("url", "")),
        type=str(sd.get("type", root.path)),
        kind=str(sd.get("kind", "")),
        derivation=str(sd.get("derivation", "specialization")),
        root=root,
    )


def _index(rule: ElementRule) -> bool:
    """Fill the derived fields of the tree below ``rule``; return its ``has_value_checks``."""
    found = rule.fixed is not None or rule.pattern is not None
    found = found or (rule.binding is not None and rule.binding.strength in _CHECKED_STRENGTHS)
    constrained = []
    for child in rule.children.values():
        found = _index(child) or found
        if child.tighter_min or child.tighter_max or child.slices:
            constrained.append(child)
        if child.is_choice:
            for code in child.type_codes():
                rule.by_json_name[child.stem + code[:1].upper() + code[1:]] = child
        else:
            rule.by_json_name[child.name] = child
    for slice_rule in rule.slices:
        found = _index(slice_rule) or found
    rule.constrained = tuple(constrained)
    rule.has_value_checks = found
    return found


_CHECKED_STRENGTHS = frozenset({"required", "extensible"})
