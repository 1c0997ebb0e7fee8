"""The Indexer: a resource's :class:`ResourceIndex`, computed at write time.

Each search parameter's FHIRPath expression is compiled once per Indexer (lazily, on first use
for a resource type and code) into closures (:mod:`fhirpath`); the nodes it selects are turned
into entries by :mod:`normalize`. The index is stored with the resource version in the same unit
of work, so search never evaluates FHIRPath.

Compartments (http://hl7.org/fhir/R4/compartmentdefinition.html): a resource is in the
compartment ``(C, id)`` when one of the reference parameters the CompartmentDefinition of ``C``
lists for its type points to ``C/id``. A resource whose type is a compartment type is also in its
own compartment (``Patient/1`` is in ``("Patient", "1")``), whether or not the definition says
``{def}``: that is what ``GET Patient/1/*`` needs to include the patient itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.search.fhirpath import CompiledPath, UnsupportedExpression, compile_path
from fhir_server.search.model import (
    CompositeEntry,
    IndexEntry,
    ReferenceEntry,
    ResourceIndex,
    SearchParamDef,
)
from fhir_server.search.normalize import Normalizer, normalizer

DEF = "{def}"

Entries = tuple[IndexEntry | CompositeEntry, ...]


# Entries are deduplicated in first-seen order (``dict.fromkeys``): a union like ``a | a`` or a
# CodeableConcept repeating a coding must not count twice.


@dataclass(frozen=True, slots=True)
class _Simple:
    path: CompiledPath
    normalize: Normalizer

    def entries(self, resource: dict[str, Any]) -> Entries:
        nodes = self.path.select(resource)
        return tuple(dict.fromkeys(e for v, ctx in nodes for e in self.normalize(v, ctx.type)))


@dataclass(frozen=True, slots=True)
class _Composite:
    path: CompiledPath
    components: tuple[tuple[CompiledPath, Normalizer], ...]

    def entries(self, resource: dict[str, Any]) -> Entries:
        found: list[CompositeEntry] = []
        for node in self.path.select(resource):
            parts: list[tuple[IndexEntry, ...]] = []
            for component, normalize in self.components:
                nodes = component.evaluate([node], resource)
                part = tuple(dict.fromkeys(e for v, ctx in nodes for e in normalize(v, ctx.type)))
                if not part:
                    break
                parts.append(part)
            else:
                found.append(CompositeEntry(tuple(parts)))
        return tuple(dict.fromkeys(found))


_Plan = _Simple | _Composite | None


def compile_param(definition: SearchParamDef) -> _Plan:
    """The extraction plan of a parameter, None when it has none (``special``, ``_id``,
    ``_text``...). Raises :class:`UnsupportedExpression` for an expression outside the
    supported FHIRPath subset: a registry accepting custom SearchParameters should call this
    first and turn the error into an InvalidRequest."""
    if definition.expression is None or definition.type == "special":
        return None
    path = compile_path(definition.expression, definition.resource_type)
    if definition.type != "composite":
        normalize = normalizer(definition.type)
        if normalize is None:
            return None
        inline = "Resource" in path.output_types
        if definition.type == "reference" and definition.targets and inline:
            normalize = _inline_of(normalize, frozenset(definition.targets))
        return _Simple(path, normalize)
    components = []
    for component in definition.components:
        normalize = normalizer(component.param.type)
        if normalize is None:
            raise UnsupportedExpression(
                f"composite {definition.code}: component {component.param.code} has type "
                f"{component.param.type}, which has no index entries"
            )
        relative = compile_path(component.expression, definition.resource_type, path.contexts)
        components.append((relative, normalize))
    if not components:
        raise UnsupportedExpression(f"composite {definition.code} has no components")
    return _Composite(path, tuple(components))


def _inline_of(normalize: Normalizer, targets: frozenset[str]) -> Normalizer:
    """An inline resource (``Bundle.composition`` is ``Bundle.entry[0].resource``) is a
    reference to itself only when its type is a target of the parameter: the first entry of a
    Bundle is its Composition only in a document."""

    def inline(value: Any, fhir_type: str) -> Iterator[IndexEntry]:
        for entry in normalize(value, fhir_type):
            if fhir_type != "Resource" or (
                isinstance(entry, ReferenceEntry) and entry.target_type in targets
            ):
                yield entry

    return inline


class Indexer:
    """Computes the :class:`ResourceIndex` of resources, for one registry.

    ``params``: resource type -> code -> definition (with each type's own expression);
    ``compartments``: compartment type -> resource type -> codes of the reference parameters
    that put a resource of that type in the compartment. Compiled expressions are cached per
    (type, code) in the instance: build a new Indexer when the registry changes.
    """

    def __init__(
        self,
        params: Mapping[str, Mapping[str, SearchParamDef]],
        compartments: Mapping[str, Mapping[str, tuple[str, ...]]],
    ) -> None:
        self._params = params
        self._compartments = compartments
        self._plans: dict[tuple[str, str], _Plan] = {}

    def _plan(self, resource_type: str, code: str) -> _Plan:
        key = (resource_type, code)
        try:
            return self._plans[key]
        except KeyError:
            pass
        definition = self._params.get(resource_type, {}).get(code)
        plan = None if definition is None else compile_param(definition)
        self._plans[key] = plan
        return plan

    def index(self, resource: dict[str, Any]) -> ResourceIndex:
        """Every parameter's entries (parameters without any are absent) and the compartments
        the resource belongs to. Contained resources are not indexed."""
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            return ResourceIndex()
        entries: dict[str, Entries] = {}
        for code in self._params.get(resource_type, {}):
            plan = self._plan(resource_type, code)
            if plan is not None and (found := plan.entries(resource)):
                entries[code] = found
        return ResourceIndex(entries, self._compartments_of(resource, resource_type, entries))

    def entries(self, resource: dict[str, Any], code: str) -> Entries:
        """The entries of one parameter (empty for an unknown code or a parameter without)."""
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            return ()
        plan = self._plan(resource_type, code)
        return () if plan is None else plan.entries(resource)

    def _compartments_of(
        self, resource: dict[str, Any], resource_type: str, entries: Mapping[str, Entries]
    ) -> tuple[tuple[str, str], ...]:
        found: set[tuple[str, str]] = set()
        own_id = resource.get("id")
        for compartment, members in self._compartments.items():
            if compartment == resource_type and isinstance(own_id, str) and own_id:
                found.add((compartment, own_id))
            for code in members.get(resource_type, ()):
                if code == DEF:
                    continue  # the resource itself: added above when it is of that type
                for entry in entries.get(code, ()):
                    if (
                        isinstance(entry, ReferenceEntry)
                        and entry.target_type == compartment
                        and entry.target_id is not None
                    ):
                        found.add((compartment, entry.target_id))
        return tuple(sorted(found))
