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

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from fhir_server.search.extract_plans import Entries, Memo, Plan, compile_param, needs_of
from fhir_server.search.fhirpath_needs import Needs
from fhir_server.search.model import ReferenceEntry, ResourceIndex, SearchParamDef

DEF = "{def}"

__all__ = ["Entries", "Indexer", "compile_param"]


_Gate = int | tuple[tuple[int, ...], ...] | None
_MAX_RUNS = 512  # per resource type


@dataclass(frozen=True, slots=True)
class _TypePlan:
    """Everything :meth:`Indexer.index` needs for one resource type, computed once.

    ``bits`` gives each top-level JSON key some parameter needs a bit; ``steps`` lists, in
    definition order, each parameter that has a plan with its gate over those bits: None (always
    evaluated), a mask (evaluated when the resource has one of its keys) or, for the general
    condition of :mod:`fhirpath_needs`, alternatives of masks that must all be met.
    ``compartments``: per compartment, the reference parameters putting the type in it.
    """

    bits: dict[str, int]
    steps: tuple[tuple[str, Plan, _Gate], ...]
    compartments: tuple[tuple[str, tuple[str, ...]], ...]
    own_compartment: bool
    runs: dict[int, tuple[tuple[str, Plan], ...]]

    def run(self, present: int) -> tuple[tuple[str, Plan], ...]:
        """The parameters to evaluate on a resource having the keys ``present``: remembered
        per set of keys (resources of a type tend to have the same few), up to a bound."""
        found = self.runs.get(present)
        if found is None:
            found = tuple((code, plan) for code, plan, gate in self.steps if _open(gate, present))
            if len(self.runs) < _MAX_RUNS:
                self.runs[present] = found
        return found


def _gate(needs: Needs | None, bits: dict[str, int]) -> _Gate:
    if needs is None or () in needs:
        return None
    masks = tuple(
        tuple(sum(bits.setdefault(k, 1 << len(bits)) for k in keys) for keys in alternative)
        for alternative in needs
    )
    return masks[0][0] if len(masks) == 1 and len(masks[0]) == 1 else masks


def _open(gate: _Gate, present: int) -> bool:
    if gate is None:
        return True
    if isinstance(gate, int):
        return gate & present != 0
    return any(all(mask & present for mask in alternative) for alternative in gate)


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
        self._plans: dict[tuple[str, str], Plan | None] = {}
        self._types: dict[str, _TypePlan] = {}

    def _plan(self, resource_type: str, code: str) -> Plan | None:
        key = (resource_type, code)
        try:
            return self._plans[key]
        except KeyError:
            pass
        definition = self._params.get(resource_type, {}).get(code)
        plan = None if definition is None else compile_param(definition)
        self._plans[key] = plan
        return plan

    def _type_plan(self, resource_type: str) -> _TypePlan:
        try:
            return self._types[resource_type]
        except KeyError:
            pass
        bits: dict[str, int] = {}
        steps = tuple(
            (code, plan, _gate(needs_of(plan), bits))
            for code in self._params.get(resource_type, {})
            if (plan := self._plan(resource_type, code)) is not None
        )
        compartments = tuple(
            (compartment, codes)
            for compartment, members in self._compartments.items()
            if (codes := tuple(c for c in members.get(resource_type, ()) if c != DEF))
        )
        own = resource_type in self._compartments
        self._types[resource_type] = found = _TypePlan(bits, steps, compartments, own, {})
        return found

    def index(self, resource: dict[str, Any]) -> ResourceIndex:
        """Every parameter's entries (parameters without any are absent) and the compartments
        the resource belongs to. Contained resources are not indexed."""
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            return ResourceIndex()
        plan = self._type_plan(resource_type)
        present = sum(map(plan.bits.get, resource, repeat(0)))  # distinct bits: a sum is an or
        entries: dict[str, Entries] = {}
        memo: Memo = {}
        for code, step in plan.run(present):
            if found := step.entries(resource, memo):
                entries[code] = found
        return ResourceIndex(entries, _compartments_of(resource, plan, entries))

    def entries(self, resource: dict[str, Any], code: str) -> Entries:
        """The entries of one parameter (empty for an unknown code or a parameter without)."""
        resource_type = resource.get("resourceType")
        if not isinstance(resource_type, str):
            return ()
        plan = self._plan(resource_type, code)
        return () if plan is None else plan.entries(resource)


def _compartments_of(
    resource: dict[str, Any], plan: _TypePlan, entries: Mapping[str, Entries]
) -> tuple[tuple[str, str], ...]:
    """The compartments ``(type, id)``: its own (a Patient is in its own compartment, whether or
    not the definition says ``{def}``) and those its compartment references point to."""
    found: set[tuple[str, str]] = set()
    if plan.own_compartment:
        own_id = resource.get("id")
        if isinstance(own_id, str) and own_id:
            found.add((resource["resourceType"], own_id))
    for compartment, codes in plan.compartments:
        for code in codes:
            for entry in entries.get(code, ()):
                if (
                    isinstance(entry, ReferenceEntry)
                    and entry.target_type == compartment
                    and entry.target_id is not None
                ):
                    found.add((compartment, entry.target_id))
    return tuple(sorted(found)) if len(found) > 1 else tuple(found)
