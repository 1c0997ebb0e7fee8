"""The validator: structure first, then the StructureDefinitions that apply to the resource.

Which definitions apply (http://hl7.org/fhir/R4/validation.html#profile):

- always the core definition of the resource's type: its terminology bindings (so
  ``Patient.gender`` must be a code of administrative-gender), and its invariants when
  ``core_invariants`` is on (they cost ~50-100 µs each with fhirpathpy, so a plain write skips
  them unless the deployment asks for them);
- every profile the resource claims in ``meta.profile`` that the server knows (an unknown one is
  reported as a warning and not checked: clients routinely claim profiles of other guides);
- the profiles the server's rule set requires for the resource's type (``required``);
- the profiles a ``$validate`` caller names.

A profile is checked completely: cardinality, types, fixed and pattern values, bindings, slicing,
reference targets and invariants. StructureDefinitions are compiled once and kept until the
registry changes (a profile or a value set stored on the server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from fhir_server.conformance import Conformance, canonical_key
from fhir_server.core.errors import Issue, UnprocessableResource
from fhir_server.validation.conditions import UNDECIDED, Compiled, compile_condition
from fhir_server.validation.lean import LeanPlans, is_plain
from fhir_server.validation.profile_check import (
    CORE,
    Invariant,
    InvariantCompiler,
    Terminology,
    Walk,
)
from fhir_server.validation.profile_model import CompiledDefinition, compile_definition
from fhir_server.validation.rules import RuleSet
from fhir_server.validation.structure import validate_structure


def fhirpath_invariants() -> InvariantCompiler:
    """Invariants evaluated with fhirpathpy (validation/invariants.py)."""
    from fhir_server.validation.invariants import Constraint, compile_invariant

    def compile_(constraint: dict[str, Any], source: str) -> Invariant:
        return compile_invariant(
            Constraint(
                key=str(constraint.get("key", "")),
                severity=str(constraint.get("severity", "error")),
                human=str(constraint.get("human", "")),
                expression=str(constraint.get("expression", "")),
                source=source,
            )
        )

    return compile_


class ProfileValidator:
    """Validates resources; callable as the write pipeline's validator (raises on errors)."""

    def __init__(
        self,
        registry: Conformance,
        terminology: Terminology | None = None,
        *,
        invariants: InvariantCompiler | None = None,
        core_invariants: bool = False,
        rules: RuleSet | None = None,
    ) -> None:
        self._registry = registry
        self._terminology = terminology
        self._invariants = invariants if invariants is not None else fhirpath_invariants()
        self._core_invariants = core_invariants
        self._rules = rules or RuleSet()
        self._compiled: dict[str, CompiledDefinition | None] = {}
        self._conditions: dict[str, Compiled | None] = {}
        self._plans = LeanPlans(self.definition)
        self._generation = -1
        self._lock = threading.Lock()

    # -- definitions -------------------------------------------------------------------------

    def definition(self, url: str) -> CompiledDefinition | None:
        """The compiled StructureDefinition of a canonical url (None when unknown)."""
        generation = self._registry.current_generation()
        if generation != self._generation:
            with self._lock:
                self._compiled = {}
                self._plans = LeanPlans(self.definition)
                self._generation = generation
        try:
            return self._compiled[url]
        except KeyError:
            pass
        sd = self._registry.structure_definition(url)
        compiled = compile_definition(sd) if sd is not None and sd.get("snapshot") else None
        self._compiled[url] = compiled
        return compiled

    def check_configuration(self) -> None:
        """Every profile the rule set requires must be known, and be a profile of its type
        (ValueError at start-up rather than a surprise on the first write)."""
        for resource_type, url in self._rules.required_profiles():
            compiled = self.definition(url)
            where = f"validation rules {self._rules.source}"
            if compiled is None:
                raise ValueError(f"{where}: profile {url} for {resource_type} is not known")
            if compiled.type != resource_type:
                raise ValueError(f"{where}: {url} is a profile of {compiled.type}")

    def _condition(self, expression: str, resource: dict[str, Any]) -> bool | None:
        """A rule's ``where`` on a resource: compiled when it is of a simple shape
        (conditions.py), else, or when the data is not plain, by fhirpathpy."""
        try:
            compiled = self._conditions[expression]
        except KeyError:
            compiled = self._conditions[expression] = compile_condition(expression)
        if compiled is not None:
            answer = compiled(resource)
            if answer is not UNDECIDED:
                return answer
        return self._fhirpath_condition(expression, resource)

    def _fhirpath_condition(self, expression: str, resource: dict[str, Any]) -> bool | None:
        rule = {"key": "rule", "severity": "error", "human": "", "expression": expression}
        return self._invariants(rule, self._rules.source).holds(
            resource, str(resource.get("resourceType")), resource, resource
        )

    # -- validating --------------------------------------------------------------------------

    def validate(
        self,
        resource: dict[str, Any],
        profiles: Iterable[str] = (),
        *,
        claimed: bool = True,
        full: bool = False,
    ) -> list[Issue]:
        """Every issue of the resource: structure, the core definition of its type, the profiles
        given, claimed (``claimed``) and required. ``full``: core invariants too ($validate)."""
        issues = validate_structure(resource)
        if any(i.severity in ("error", "fatal") for i in issues):
            return issues
        kind = str(resource["resourceType"])
        core = self.definition(CORE + kind)
        if core is None:
            return issues
        invariants = self._invariants if (full or self._core_invariants) else None
        issues += self._run(resource, core, invariants, plain=is_plain(resource))
        asked = list(dict.fromkeys(profiles))
        required = self._rules.profiles_for(resource, self._condition)
        wanted = asked + [p for p in required if p not in asked]
        if claimed:
            wanted += [p for p in _claimed(resource) if p not in wanted]
        for url in wanted:
            issues += self._profile(resource, kind, url, explicit=url in asked or url in required)
        return _unique(issues)

    def __call__(self, resource: dict[str, Any]) -> None:
        """The pipeline's validator: raise UnprocessableResource (422) listing every error."""
        issues = self.validate(resource)
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        if errors:
            count = f"{len(errors)} error{'s' if len(errors) > 1 else ''}"
            diagnostics = f"The resource is not valid ({count}); first: {errors[0].diagnostics}"
            raise UnprocessableResource(diagnostics, issues=issues)

    def _profile(
        self, resource: dict[str, Any], kind: str, url: str, explicit: bool
    ) -> list[Issue]:
        compiled = self.definition(url)
        name = canonical_key(url)[0]
        if compiled is None:
            if explicit:
                return [
                    Issue("error", "not-supported", f"{kind}: profile {name} is not known", (kind,))
                ]
            detail = f"{kind}: the claimed profile {name} is not known to this server; not checked"
            return [Issue("warning", "not-supported", detail, (kind,))]
        if compiled.type != kind:
            detail = f"{kind}: profile {name} is a profile of {compiled.type}, not {kind}"
            return [Issue("error", "structure", detail, (kind,))]
        return self._run(resource, compiled, self._invariants)

    def _run(
        self,
        resource: dict[str, Any],
        compiled: CompiledDefinition,
        invariants: InvariantCompiler | None,
        *,
        plain: bool = False,
    ) -> list[Issue]:
        walk = Walk(
            self.definition, self._terminology, invariants, compiled.url, compiled.is_profile
        )
        walk.plans, walk.plain = self._plans, plain
        walk.check_resource(resource, compiled, compiled.type)
        return walk.issues


def _claimed(resource: dict[str, Any]) -> list[str]:
    meta = resource.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    return [p for p in profiles or [] if isinstance(p, str)]


def _unique(issues: list[Issue]) -> list[Issue]:
    return list(dict.fromkeys(issues))
