"""FHIRPath invariants (ElementDefinition.constraint) of StructureDefinitions, compiled once.

Usage by the validator, for each element instance it walks::

    invariant = compile_invariant(Constraint(key, severity, human, expression, sd_url))
    verdict = invariant.holds(node, "Patient.contact", resource, root)

- ``node``: the JSON value of the instance: a dict for a complex element, backbone element or
  resource; for a primitive, :class:`Primitive` (its value and its ``_name`` object; a bare
  JSON value is accepted as a primitive without ``_name``).
- ``base``: the element's path in the snapshot that holds the constraint (``Patient.contact``, or
  a datatype's own path such as ``Quantity`` or ``Narrative.div``). For a choice element put
  the concrete type in place of ``[x]``, as the JSON property name: ``Observation.valueQuantity``.
- ``resource`` is ``%resource``, the resource holding the element (a contained resource or a
  Bundle entry's resource for their own elements); ``root`` is ``%rootResource``: for a
  contained resource the resource whose ``contained`` holds it, otherwise ``resource`` itself
  (the default). A Bundle entry's resource is its own root: ref-1 looks up ``#id`` references
  in ``%rootResource.contained``.
- The verdict: True/False, or None when the expression cannot be evaluated (an error in
  fhirpathpy, an unknown function, memberOf() without a callback): report that as a warning.

How each constraint runs is decided once, by :data:`OVERRIDES` (keyed by key and expression
text, so a profile reusing a key with another expression is not caught by it): a native
Python function (:mod:`invariants_native`), a corrected expression, or skipped; anything
else runs on fhirpathpy (:mod:`invariants_fhirpath`), parsed once per distinct text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from fhir_server.validation import invariants_fhirpath as fp
from fhir_server.validation.invariants_fhirpath import MemberOf
from fhir_server.validation.invariants_native import NATIVES, Native, Primitive

__all__ = [
    "OVERRIDES",
    "Constraint",
    "Invariant",
    "MemberOf",
    "Override",
    "Primitive",
    "compile_invariant",
]


@dataclass(frozen=True, slots=True)
class Constraint:
    """One ElementDefinition.constraint; ``source`` is the url of the StructureDefinition."""

    key: str
    severity: str
    human: str
    expression: str
    source: str


@dataclass(frozen=True, slots=True)
class Override:
    """How a known constraint runs instead of its expression as written, and why."""

    action: Literal["native", "replace", "skip"]
    reason: str
    replacement: str = ""


ELE_1 = "hasValue() or (children().count() > id.count())"
DOM_3 = (
    "contained.where((('#'+id in (%resource.descendants().reference | "
    "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | "
    "%resource.descendants().as(url))) or descendants().where(reference = '#').exists() or "
    "descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = "
    "'#').exists()).not()).trace('unmatched', id).empty()"
)
_HOT = "native: runs on every {}, fhirpathpy costs 50-150 µs an evaluation against ~1 µs"

#: (key, expression as in the R4 4.0.1 snapshots) -> how it runs instead, with the reason.
OVERRIDES: dict[tuple[str, str], Override] = {
    ("ele-1", ELE_1): Override("native", "fhirpathpy has no hasValue(); runs on every element"),
    ("ext-1", "extension.exists() != value.exists()"): Override("native", _HOT.format("extension")),
    ("dom-2", "contained.contained.empty()"): Override("native", _HOT.format("resource")),
    ("dom-3", DOM_3): Override(
        "native",
        "fhirpathpy 2.2.4 raises on %resource.descendants().as(canonical): its as() demands a "
        "singleton where R4 uses it as a filter over a collection, so fhirpathpy cannot "
        "evaluate dom-3 on any resource with contained resources (all 136 R4 examples that "
        "have some); it is also the slowest R4 invariant (descendants() four times per "
        "contained resource) and runs on every resource",
    ),
    (
        "dom-4",
        "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
    ): Override("native", _HOT.format("resource")),
    ("dom-5", "contained.meta.security.empty()"): Override("native", _HOT.format("resource")),
    ("dom-6", "text.`div`.exists()"): Override("native", _HOT.format("resource")),
    ("txt-1", "htmlChecks()"): Override(
        "native",
        "fhirpathpy has no htmlChecks(); the allowed elements and attributes of txt-1's "
        "XPath (R4 Narrative StructureDefinition)",
    ),
    ("txt-2", "htmlChecks()"): Override(
        "native",
        "fhirpathpy has no htmlChecks(); txt-2's XPath: some non-whitespace text or an "
        "img with a src",
    ),
    ("que-7", "operator = 'exists' implies (answer is Boolean)"): Override(
        "replace",
        "R4 4.0.1 tests the FHIRPath System type Boolean; answer[x] holds the FHIR type boolean, "
        "which is not System.Boolean, so the expression is false on every valid 'exists' "
        "enableWhen (the R4 example Questionnaire-bb fails it). Corrected to the FHIR type name.",
        "operator = 'exists' implies (answer is boolean)",
    ),
    ("rng-2", "low.empty() or high.empty() or (low <= high)"): Override(
        "replace",
        "fhirpathpy 2.2.4 cannot compare two Quantity elements (it compares the JSON objects and "
        "raises); with the same system and code the values are compared, as the expression "
        "means; with different units fhirpathpy still raises and the verdict is None (the R4 "
        "example SpecimenDefinition-2364 has Cel..Cel ranges)",
        "low.empty() or high.empty() or iif(low.system = high.system and low.code = high.code, "
        "low.value <= high.value, low <= high)",
    ),
}


class Invariant:
    """A constraint compiled once; :meth:`holds` evaluates it on one element instance."""

    __slots__ = ("_native", "_tree", "constraint", "error", "how", "skipped")

    def __init__(self, constraint: Constraint) -> None:
        self.constraint = constraint
        override = OVERRIDES.get((constraint.key, constraint.expression))
        #: "native", "fhirpath" or "skip".
        self.how: str = "fhirpath"
        #: Why it is skipped (holds() is then always True), or None.
        self.skipped: str | None = None
        #: Why it cannot be evaluated (holds() is then always None), or None.
        self.error: str | None = None
        self._native: Native | None = None
        self._tree: dict[str, Any] | None = None
        expression = constraint.expression
        if override is not None and override.action == "native":
            self.how, self._native = "native", NATIVES[constraint.key]
            return
        if override is not None and override.action == "skip":
            self.how, self.skipped = "skip", override.reason
            return
        if override is not None:
            expression = override.replacement
        self._compile(expression)

    def _compile(self, expression: str) -> None:
        try:
            tree = fp.parse_expression(expression)
        except Exception as exc:  # antlr raises its own types
            self.error = f"the expression does not parse: {exc}"
            return
        unknown = fp.functions_used(tree) - fp.KNOWN_FUNCTIONS
        if unknown:
            self.error = f"unsupported FHIRPath function(s): {', '.join(sorted(unknown))}"
            return
        self._tree = tree

    def holds(
        self,
        node: Any,
        base: str,
        resource: dict[str, Any],
        root: dict[str, Any] | None = None,
        *,
        member_of: MemberOf | None = None,
    ) -> bool | None:
        """True when the invariant holds on ``node``, False when it does not, None when it
        cannot be evaluated (see the module docstring for the arguments)."""
        if self._native is not None:
            return self._native(node)
        if self.skipped is not None:
            return True
        if self._tree is None:
            return None
        try:
            result = fp.evaluate(self._tree, node, base, resource, root or resource, member_of)
            return fp.truth(result)
        except Exception:  # fhirpathpy raises bare Exceptions on type errors and the like
            return None

    def __repr__(self) -> str:
        return f"Invariant({self.constraint.key!r}, how={self.how!r})"


@functools.lru_cache(maxsize=8192)
def compile_invariant(constraint: Constraint) -> Invariant:
    """The compiled invariant, once per distinct constraint (the parse per expression text)."""
    return Invariant(constraint)
