"""TerminologyService: the local terminology service over the conformance registry.

It answers from the registry's CodeSystems, ValueSets and ConceptMaps (R4 core, the project's
``terminology/`` and those stored on the server): expansion, ``$lookup``, ``$validate-code``,
``$translate`` (http://hl7.org/fhir/R4/terminology-service.html) and the membership check the
validator uses for bindings (:meth:`contains`). Expansions and code system indexes are cached
and dropped whenever the registry's generation changes (a CodeSystem or ValueSet was written).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir_server.core.errors import FhirError
from fhir_server.terminology import translate, validate
from fhir_server.terminology.codesystems import CodeSystemIndex, Concept
from fhir_server.terminology.errors import (
    ExpansionNotSupported,
    UnknownCodeSystem,
    UnknownValueSet,
)
from fhir_server.terminology.expand import DEFAULT_MAX_SIZE, Expander, Expansion, Key
from fhir_server.terminology.source import CanonicalSource


@dataclass(frozen=True, slots=True)
class Membership:
    """An expansion as sets: (system, code) pairs, and codes by themselves (a code given
    without its system)."""

    keys: frozenset[Key]
    codes: frozenset[str]


class TerminologyService:
    """Terminology over one registry; thread-safe (the validator may call from threads)."""

    def __init__(self, registry: CanonicalSource, max_expansion: int = DEFAULT_MAX_SIZE) -> None:
        self.registry = registry
        self.max_expansion = max_expansion
        self._lock = threading.Lock()
        self._generation = -1
        self._code_systems: dict[str, CodeSystemIndex | None] = {}
        self._expansions: dict[str, Expansion] = {}
        self._memberships: dict[str, Membership | None] = {}

    # --- caches ----------------------------------------------------------------------------

    def _fresh(self) -> None:
        generation = self.registry.current_generation()
        if generation != self._generation:
            with self._lock:
                self._code_systems.clear()
                self._expansions.clear()
                self._memberships.clear()
                self._generation = generation

    def code_system(self, reference: str) -> CodeSystemIndex | None:
        """The index of the CodeSystem ``url`` or ``url|version``; None when not held."""
        self._fresh()
        if reference not in self._code_systems:
            resource = self.registry.resolve("CodeSystem", reference)
            index = None
            if resource is not None and resource.get("content") != "supplement":
                index = CodeSystemIndex(resource)
            self._code_systems[reference] = index
        return self._code_systems[reference]

    def value_set(self, reference: str) -> dict[str, Any] | None:
        return self.registry.resolve("ValueSet", reference)

    # --- expansion ---------------------------------------------------------------------------

    def expand(self, value_set: str | dict[str, Any]) -> Expansion:
        """The expansion of a ValueSet given by canonical url (cached per url, version and
        registry generation) or as a resource. Raises UnknownValueSet, ExpansionNotSupported,
        TooCostly."""
        self._fresh()
        if isinstance(value_set, dict):
            return self._expander().expand(value_set)
        cached = self._expansions.get(value_set)
        if cached is not None:
            return cached
        resource = self.value_set(value_set)
        if resource is None:
            raise UnknownValueSet(value_set)
        expansion = self._expander().expand(resource)
        self._expansions[value_set] = expansion
        return expansion

    def _expander(self) -> Expander:
        return Expander(self.code_system, self.value_set, self.max_expansion)

    def codes(self, value_set_url: str) -> frozenset[Key]:
        """The (system, code) pairs of a value set, for the ``:in``/``:not-in`` search
        modifiers; raises like :meth:`expand`."""
        return self.expand(value_set_url).keys()

    def subsumption(self, system: str, code: str, direction: str) -> list[Key]:
        """For the ``:below``/``:above`` token modifiers: the code with every code it subsumes
        (``below``) or that subsumes it (``above``). Raises ExpansionNotSupported for a system
        the server does not hold, ResourceNotFound for a code that system lacks."""
        index = self.code_system(system)
        if index is None:
            raise ExpansionNotSupported(
                f"CodeSystem '{system}' is not held by this server: its hierarchy is unknown"
            )
        concept = index.get(code)
        if concept is None:
            raise validate.unknown_code(index, code)
        related = index.descendants(concept.code) if direction == "below" else None
        if related is None:
            related = index.ancestors(concept.code)
        return [(index.url, c) for c in (concept.code, *sorted(related))]

    def contains(self, value_set_url: str, system: str | None, code: str) -> bool | None:
        """Whether the code is in the value set: a set lookup after the first expansion. None
        when the server cannot tell (unknown value set, a code system it cannot expand)."""
        self._fresh()
        membership = self._memberships.get(value_set_url, _MISSING)
        if membership is _MISSING:
            try:
                keys = self.expand(value_set_url).keys()
            except FhirError:
                membership = None
            else:
                membership = Membership(keys, frozenset(c for _, c in keys))
            self._memberships[value_set_url] = membership
        if membership is None:
            return None
        assert isinstance(membership, Membership)
        if system is None:
            return code in membership.codes
        return (system, code) in membership.keys

    # --- $lookup -----------------------------------------------------------------------------

    def lookup(
        self,
        system: str | dict[str, Any],
        code: str,
        version: str | None = None,
        properties: Sequence[str] = (),
    ) -> dict[str, Any]:
        """$lookup (codesystem-operation-lookup) in the CodeSystem ``system`` (url, or the
        resource itself): a Parameters resource. Raises UnknownCodeSystem, or
        ResourceNotFound naming the code."""
        index = self._index(system, version, "system")
        concept = index.get(code)
        if concept is None:
            raise validate.unknown_code(index, code)
        return _lookup_parameters(index, concept, properties)

    # --- $validate-code ----------------------------------------------------------------------

    def validate_code(
        self,
        *,
        value_set: str | dict[str, Any] | None = None,
        code_system: str | dict[str, Any] | None = None,
        codings: Sequence[validate.Coding] = (),
        abstract: bool = True,
    ) -> dict[str, Any]:
        """$validate-code against a value set (url or resource) or a code system (url): every
        coding is checked; the result is true when any is valid (a CodeableConcept).
        Returns the Parameters (result, message, display)."""
        if value_set is not None:
            expansion = self.expand(value_set)
            return validate.in_value_set(self, expansion, codings, abstract)
        assert code_system is not None
        return validate.in_code_system(self._index(code_system, None, "url"), codings, abstract)

    def _index(
        self, code_system: str | dict[str, Any], version: str | None, parameter: str
    ) -> CodeSystemIndex:
        if isinstance(code_system, dict):
            return CodeSystemIndex(code_system)
        index = self.code_system(f"{code_system}|{version}" if version else code_system)
        if index is None:
            raise UnknownCodeSystem(code_system, (parameter,))
        return index

    # --- $translate --------------------------------------------------------------------------

    def translate(self, request: translate.TranslateRequest) -> dict[str, Any]:
        """$translate over the ConceptMaps (one by url, or every one matching source/target)."""
        return translate.translate(self.registry, request)


_MISSING: Any = object()


def _lookup_parameters(
    index: CodeSystemIndex, concept: Concept, properties: Sequence[str]
) -> dict[str, Any]:
    name = index.resource.get("title") or index.resource.get("name") or index.url
    parameter: list[dict[str, Any]] = [{"name": "name", "valueString": str(name)}]
    if index.version:
        parameter.append({"name": "version", "valueString": index.version})
    if concept.display:
        parameter.append({"name": "display", "valueString": concept.display})
    for designation in concept.designations:
        parts = [
            {"name": k, **{_DESIGNATION_TYPES[k]: designation[k]}}
            for k in ("language", "use", "value")
            if k in designation
        ]
        parameter.append({"name": "designation", "part": parts})
    wanted = set(properties)

    def asked(name: str) -> bool:
        return not wanted or name in wanted

    if concept.definition and asked("definition"):
        parameter.append(_property("definition", {"valueString": concept.definition}))
    for raw in concept.raw_properties:
        name = str(raw.get("code"))
        value = next(({k: v} for k, v in raw.items() if k.startswith("value")), None)
        if asked(name) and value is not None:
            parameter.append(_property(name, value))
    written = {(str(p.get("code")), p.get("valueCode")) for p in concept.raw_properties}
    for kind, codes in (("parent", concept.parents), ("child", concept.children)):
        if asked(kind):
            parameter.extend(
                _property(kind, {"valueCode": c}) for c in codes if (kind, c) not in written
            )
    if (
        concept.abstract
        and asked("notSelectable")
        and not any(n in ("notSelectable", "abstract") for n, _ in concept.properties)
    ):
        parameter.append(_property("notSelectable", {"valueBoolean": True}))
    return {"resourceType": "Parameters", "parameter": parameter}


_DESIGNATION_TYPES = {"language": "valueCode", "use": "valueCoding", "value": "valueString"}


def _property(code: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "property",
        "part": [{"name": "code", "valueCode": code}, {"name": "value", **value}],
    }
