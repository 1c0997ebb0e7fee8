"""Extraction plans: how one search parameter's entries are taken from a resource.

A parameter's FHIRPath expression is compiled once (:mod:`fhirpath`); its plan then turns what
the expression selects into entries with the *leaf* of :mod:`normalize` for each node's FHIR
type. When the expression is a union of plain key paths (:mod:`fhirpath_chains`: nine in ten of
the R4 parameters), the plan walks the JSON keys directly with each path's leaf resolved at
compile time; otherwise it evaluates the compiled closures and looks the leaf up per node. Both
give the same entries in the same order.

Entries are deduplicated in first-seen order: a union like ``a | a`` or a CodeableConcept
repeating a coding must not count twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.search.fhirpath import CompiledPath, Ctx, Node, UnsupportedExpression, compile_path
from fhir_server.search.fhirpath_chains import Chain
from fhir_server.search.fhirpath_needs import Needs, conjoin
from fhir_server.search.model import CompositeEntry, IndexEntry, ReferenceEntry, SearchParamDef
from fhir_server.search.normalize import Leaf, leaves

Entries = tuple[IndexEntry | CompositeEntry, ...]
#: FHIR type -> leaf, for one parameter type.
Table = Mapping[str, Leaf]
#: JSON keys from the focus, and the leaf of what they reach.
Steps = tuple[tuple[tuple[str, ...], Leaf], ...]

# Several parameters often select the same element (``code``, ``combo-code`` and the
# composites all read Observation.code; ``subject`` and ``patient`` the same Reference): within
# one ``Indexer.index`` call, the entries of an object are computed once per leaf. The memo
# keeps each object it has seen, so its id is never reused for another object meanwhile.
Memo = dict[tuple[int, Leaf], tuple[Any, list[IndexEntry]]]


def _unique(found: list[IndexEntry]) -> tuple[IndexEntry, ...]:
    return tuple(found) if len(found) < 2 else tuple(dict.fromkeys(found))


def _walk(focus: Any, keys: tuple[str, ...]) -> list[Any]:
    """The values reached from ``focus`` through ``keys``, arrays flattened. The nulls an
    array may hold are kept: a later step skips them as it skips every non-object, and
    :func:`_apply` skips them at the end."""
    values = [focus]
    for key in keys:
        found: list[Any] = []
        for value in values:
            if isinstance(value, dict) and (item := value.get(key)) is not None:
                if isinstance(item, list):
                    found.extend(item)
                else:
                    found.append(item)
        if not found:
            return found
        values = found
    return values


def _apply(values: Iterable[Any], leaf: Leaf, memo: Memo, found: list[IndexEntry]) -> None:
    """Adds the entries of each value that is not null."""
    for value in values:
        if isinstance(value, dict):
            key = (id(value), leaf)
            seen = memo.get(key)
            if seen is None:
                seen = memo[key] = (value, leaf(value))
            found.extend(seen[1])
        elif value is not None:
            found.extend(leaf(value))


def _walk_steps(focus: Any, steps: Steps, memo: Memo, found: list[IndexEntry]) -> None:
    for keys, leaf in steps:
        _apply(_walk(focus, keys), leaf, memo, found)


def _apply_nodes(nodes: list[Node], table: Table, memo: Memo, found: list[IndexEntry]) -> None:
    get = table.get
    for value, ctx in nodes:
        leaf = get(ctx.type)
        if leaf is not None:
            _apply((value,), leaf, memo, found)


def _steps(chains: tuple[Chain, ...], table: Table) -> Steps:
    """The chains whose type has entries, with their leaf (the others never give any)."""
    return tuple((keys, leaf) for keys, ctx in chains if (leaf := table.get(ctx.type)))


@dataclass(frozen=True, slots=True)
class _Key:
    """One key of the resource (``Task.status``, ``Patient.name``): the most common plan."""

    path: CompiledPath
    key: str
    leaf: Leaf

    def entries(self, resource: dict[str, Any], memo: Memo | None = None) -> Entries:
        item = resource.get(self.key)
        if item is None:
            return ()
        if isinstance(item, list):
            found: list[IndexEntry] = []
            _apply(item, self.leaf, {} if memo is None else memo, found)
            return _unique(found)
        if isinstance(item, dict):
            found = []
            _apply((item,), self.leaf, {} if memo is None else memo, found)
            return _unique(found)
        return tuple(self.leaf(item))  # a primitive: at most one entry


@dataclass(frozen=True, slots=True)
class _Direct:
    """A union of plain key paths from the resource."""

    path: CompiledPath
    steps: Steps

    def entries(self, resource: dict[str, Any], memo: Memo | None = None) -> Entries:
        found: list[IndexEntry] = []
        _walk_steps(resource, self.steps, {} if memo is None else memo, found)
        return _unique(found)


@dataclass(frozen=True, slots=True)
class _Simple:
    """Any other expression: its compiled closures, then a leaf per node."""

    path: CompiledPath
    table: Table

    def entries(self, resource: dict[str, Any], memo: Memo | None = None) -> Entries:
        nodes = self.path.select(resource)
        if not nodes:
            return ()
        found: list[IndexEntry] = []
        _apply_nodes(nodes, self.table, {} if memo is None else memo, found)
        return _unique(found)


@dataclass(frozen=True, slots=True)
class _Component:
    """A composite's component, relative to each node the composite selects: direct steps per
    static type of that node when its expression is made of chains."""

    path: CompiledPath
    table: Table
    steps: Mapping[Ctx, Steps] | None

    def part(self, node: Node, resource: dict[str, Any], memo: Memo) -> tuple[IndexEntry, ...]:
        found: list[IndexEntry] = []
        if self.steps is not None:
            _walk_steps(node[0], self.steps.get(node[1], ()), memo, found)
        else:
            _apply_nodes(self.path.evaluate([node], resource), self.table, memo, found)
        return _unique(found)


@dataclass(frozen=True, slots=True)
class _Composite:
    path: CompiledPath
    components: tuple[_Component, ...]

    def entries(self, resource: dict[str, Any], memo: Memo | None = None) -> Entries:
        memo = {} if memo is None else memo
        found: list[CompositeEntry] = []
        for node in self.path.select(resource):
            parts: list[tuple[IndexEntry, ...]] = []
            for component in self.components:
                part = component.part(node, resource, memo)
                if not part:
                    break
                parts.append(part)
            else:
                found.append(CompositeEntry(tuple(parts)))
        return tuple(found) if len(found) < 2 else tuple(dict.fromkeys(found))


Plan = _Key | _Direct | _Simple | _Composite


def compile_param(definition: SearchParamDef) -> Plan | None:
    """The extraction plan of a parameter, None when it has none (``special``, ``_id``,
    ``_text``...). Raises :class:`UnsupportedExpression` for an expression outside the
    supported FHIRPath subset: a registry accepting custom SearchParameters should call this
    first and turn the error into an InvalidRequest."""
    if definition.expression is None or definition.type == "special":
        return None
    path = compile_path(definition.expression, definition.resource_type)
    if definition.type != "composite":
        table = leaves(definition.type)
        if table is None:
            return None
        inline = "Resource" in path.output_types
        if definition.type == "reference" and definition.targets and inline:
            table = _inline_of(table, frozenset(definition.targets))
        if path.chains is not None:
            (chains,) = path.chains.values()  # one focus: the resource
            steps = _steps(chains, table)
            if len(steps) == 1 and len(steps[0][0]) == 1:
                return _Key(path, steps[0][0][0], steps[0][1])
            return _Direct(path, steps)
        return _Simple(path, table)
    components = []
    for component in definition.components:
        table = leaves(component.param.type)
        if table is None:
            raise UnsupportedExpression(
                f"composite {definition.code}: component {component.param.code} has type "
                f"{component.param.type}, which has no index entries"
            )
        relative = compile_path(component.expression, definition.resource_type, path.contexts)
        by_focus = relative.chains
        direct = None if by_focus is None else {c: _steps(ch, table) for c, ch in by_focus.items()}
        components.append(_Component(relative, table, direct))
    if not components:
        raise UnsupportedExpression(f"composite {definition.code} has no components")
    return _Composite(path, tuple(components))


def needs_of(plan: Plan) -> Needs | None:
    """What the resource must have for the plan to give entries (:mod:`fhirpath_needs`): a
    composite gives one only when every component does, so on the resource itself it needs
    what each component needs."""
    base = plan.path.needs
    if base is None or not isinstance(plan, _Composite):
        return base
    every = conjoin(component.path.needs for component in plan.components) or ()
    return tuple(alternative or every for alternative in base)


def _inline_of(table: Table, targets: frozenset[str]) -> Table:
    """An inline resource (``Bundle.composition`` is ``Bundle.entry[0].resource``) is a
    reference to itself only when its type is a target of the parameter: the first entry of a
    Bundle is its Composition only in a document."""
    resource = table["Resource"]

    def inline(value: Any) -> list[IndexEntry]:
        return [
            entry
            for entry in resource(value)
            if isinstance(entry, ReferenceEntry) and entry.target_type in targets
        ]

    return {**table, "Resource": inline}
