"""Check a resource against a compiled StructureDefinition (profile_model.py).

The walk goes down the rule tree and the JSON together. At each element instance it checks, in
this order: the allowed types of a choice, ``fixed[x]``/``pattern[x]``, the terminology binding,
the target types of a reference (profiles only), the invariants (``constraint``), then the
children: those the snapshot lists, else the children of the element's data type (its own
StructureDefinition, compiled once), else, for an extension, the extension's definition found by
its ``url``; contained and entry resources are checked against their type's definition.
Slicing (value, pattern, exists and type discriminators) assigns the items of a sliced element to
their slices before each is checked against its slice's rules.

Every problem becomes an OperationOutcome issue whose expression is the FHIRPath of the element
instance (``ServiceRequest.identifier[0].system``). Diagnostics name elements, types, value sets
and constraint keys, never a submitted value (RO-1.4).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from fhir_server.core.errors import Issue
from fhir_server.validation import profile_values as pv
from fhir_server.validation.bindings import check_binding, reference_target_problem
from fhir_server.validation.lean import LeanPlans, may_need
from fhir_server.validation.profile_model import UNBOUNDED, CompiledDefinition, ElementRule
from fhir_server.validation.slicing import assign_slices

CORE = "http://hl7.org/fhir/StructureDefinition/"
_RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})


class Terminology(Protocol):
    """What the walk asks of a terminology service (fhir_server.terminology implements it)."""

    def contains(self, value_set_url: str, system: str | None, code: str) -> bool | None:
        """Whether the code is in the value set; None when that cannot be told."""
        ...


class Invariant(Protocol):
    def holds(
        self, node: Any, base: str, resource: dict[str, Any], root: dict[str, Any] | None = None
    ) -> bool | None: ...


#: Compiles one ElementDefinition.constraint (with the url of its definition) for evaluation.
InvariantCompiler = Callable[[dict[str, Any], str], Invariant]
#: A compiled definition by canonical url (None when unknown).
Definitions = Callable[[str], CompiledDefinition | None]


@dataclass(slots=True)
class Walk:
    """One check of one resource (and what it contains) against one definition."""

    definitions: Definitions
    terminology: Terminology | None
    invariants: InvariantCompiler | None
    source: str
    profile: bool
    issues: list[Issue] = field(default_factory=list)
    resource: dict[str, Any] = field(default_factory=dict)
    root: dict[str, Any] = field(default_factory=dict)
    #: The children a walk without profile rules or invariants visits (lean.py), and whether
    #: the resource has no extension anywhere (then the plans skip more).
    plans: LeanPlans | None = None
    plain: bool = False

    # -- entry points ------------------------------------------------------------------------

    def check_resource(self, data: dict[str, Any], compiled: CompiledDefinition, loc: str) -> None:
        outer_resource, outer_source = self.resource, self.source
        self.resource, self.source = data, compiled.url
        if not self.root:
            self.root = data
        try:
            root = compiled.root
            if self.invariants is not None and root.constraints:
                self.constraints(data, root, loc, root.path, compiled.type)
            self.children(data, root, loc)
        finally:
            self.resource, self.source = outer_resource, outer_source

    # -- one element instance ----------------------------------------------------------------

    def element(
        self, value: Any, rule: ElementRule, loc: str, base: str, type_code: str | None
    ) -> None:
        if value is None:  # a primitive with only extensions: nothing to compare
            return
        if type_code is None and len(rule.types) == 1:
            type_code = rule.types[0].code
        if rule.fixed is not None and not pv.meets_fixed(value, rule.fixed[1]):
            self.report("error", "value", loc, f"must be the fixed value of {rule.id}")
        if rule.pattern is not None and not pv.meets_pattern(value, rule.pattern[1]):
            self.report("error", "value", loc, f"does not match the pattern of {rule.id}")
        if rule.binding is not None and self.terminology is not None:
            self.binding(value, rule, loc, type_code)
        if self.profile and type_code == "Reference" and isinstance(value, dict):
            self.reference(value, rule, loc)
        if self.invariants is not None and rule.constraints:
            self.constraints(value, rule, loc, base, type_code)
        if isinstance(value, dict):
            self.descend(value, rule, loc, type_code)

    def descend(self, value: dict[str, Any], rule: ElementRule, loc: str, code: str | None) -> None:
        if code in _RESOURCE_TYPES or (code is None and "resourceType" in value):
            self.nested_resource(value, loc)
            return
        if rule.children:
            self.children(value, rule, loc)
        elif rule.content_reference is not None:
            target = self._content_reference(rule.content_reference)
            if target is not None:
                self.children(value, target, loc)
        elif code is not None:
            typedef = (
                self.definitions(CORE + code) if self.plans is None else self.plans.typedef(code)
            )
            if typedef is not None:
                if self.invariants is not None and typedef.root.constraints:
                    self.constraints(value, typedef.root, loc, code, code)
                self.children(value, typedef.root, loc)
        if code == "Extension" and not rule.children:
            self.extension(value, loc)
        for profile in self._type_profiles(rule, code):
            compiled = self.definitions(profile)
            if compiled is not None and compiled.root.children:
                self.children(value, compiled.root, loc)

    def nested_resource(self, value: dict[str, Any], loc: str) -> None:
        kind = value.get("resourceType")
        compiled = self.definitions(CORE + kind) if isinstance(kind, str) else None
        if compiled is not None:
            saved = self.profile
            self.profile = False  # a contained resource meets its type's definition
            try:
                self.check_resource(value, compiled, loc)
            finally:
                self.profile = saved

    def extension(self, value: dict[str, Any], loc: str) -> None:
        url = value.get("url")
        compiled = self.definitions(url) if isinstance(url, str) else None
        if compiled is not None and compiled.type == "Extension":
            saved = self.profile
            self.profile = True
            try:
                self.children(value, compiled.root, loc)
            finally:
                self.profile = saved

    # -- the children of an object -----------------------------------------------------------

    def children(self, data: dict[str, Any], parent: ElementRule, loc: str) -> None:
        """Check the properties of ``data`` against the child rules of ``parent``: only the
        properties present, plus the children a profile constrains when absent."""
        seen: set[str] = set()
        if self.plans is not None and not self.profile and self.invariants is None:
            plan = self.plans.plan(parent, self.plain)
            for json_name in data:
                found = plan.get(json_name)
                if found is not None and found.name not in seen:
                    seen.add(found.name)
                    self._lean_child(data, found, loc)
            return
        for json_name in data:
            name = json_name[1:] if json_name.startswith("_") else json_name
            rule = parent.by_json_name.get(name)
            if rule is None or rule.name in seen:
                continue
            seen.add(rule.name)
            lean = not (self.profile or self.invariants is not None or rule.has_value_checks)
            if lean and not may_need(rule):
                continue
            self.child(data, rule, loc)
        if self.profile:
            for rule in parent.constrained:
                if rule.name not in seen:
                    self.child(data, rule, loc)

    def child(self, data: dict[str, Any], rule: ElementRule, loc: str) -> None:
        items = list(_items(data, rule))
        where = f"{loc}.{rule.name}"
        self.cardinality(len(items), rule, where, rule.id)
        if rule.is_choice and self.profile:
            self.choice_types(items, rule, loc)
        if rule.slices and items:
            self.sliced(items, rule, loc)
            return
        if rule.slices and self.profile:
            for slice_rule in rule.slices:
                self._slice_cardinality(0, slice_rule, where)
        for key, index, value in items:
            here = f"{loc}.{key}" + (f"[{index}]" if index is not None else "")
            self.element(value, rule, here, rule.path, _choice_type(rule, key))

    def _lean_child(self, data: dict[str, Any], rule: ElementRule, loc: str) -> None:
        """:meth:`child` without profile rules (nothing to count), for the plain case of an
        element that is neither a choice, nor sliced, nor an array here."""
        name = rule.name
        value = data.get(name)
        if (
            rule.slices
            or rule.is_choice
            or type(value) is list
            or type(data.get("_" + name)) is list
        ):
            self.child(data, rule, loc)
        elif value is not None:
            self.element(value, rule, f"{loc}.{name}", rule.path, None)

    def cardinality(self, count: int, rule: ElementRule, where: str, label: str) -> None:
        if self.profile and rule.tighter_min and count < rule.min:
            self.report(
                "error",
                "required",
                where,
                f"minimum cardinality of {label} is {rule.min}, found {count}",
            )
        if self.profile and rule.tighter_max and count > rule.max:
            self.report(
                "error",
                "structure",
                where,
                f"maximum cardinality of {label} is {rule.max}, found {count}",
            )

    def choice_types(
        self, items: list[tuple[str, int | None, Any]], rule: ElementRule, loc: str
    ) -> None:
        allowed = {t.upper() for t in rule.type_codes()} | {"*"}
        for key, _, _ in items:
            suffix = key[len(rule.stem) :]
            if suffix.upper() not in allowed and "*" not in rule.type_codes():
                types = ", ".join(rule.type_codes())
                self.report(
                    "error",
                    "structure",
                    f"{loc}.{key}",
                    f"type not allowed by {rule.id} (allowed: {types})",
                )

    def sliced(self, items: list[tuple[str, int | None, Any]], rule: ElementRule, loc: str) -> None:
        assigned, unmatched = assign_slices(items, rule, self.definitions, self.terminology)
        stem = f"{loc}.{rule.stem}" if not rule.is_choice else f"{loc}.{rule.name}"
        for slice_rule in rule.slices:
            members = assigned.get(slice_rule.slice_name or "", [])
            self._slice_cardinality(len(members), slice_rule, stem)
            for key, index, value in members:
                here = f"{loc}.{key}" + (f"[{index}]" if index is not None else "")
                self.element(value, slice_rule, here, rule.path, _choice_type(rule, key))
        closed = rule.slicing is not None and rule.slicing.rules == "closed"
        for key, index, value in unmatched:
            here = f"{loc}.{key}" + (f"[{index}]" if index is not None else "")
            if closed:
                self.report(
                    "error", "structure", here, f"matches no slice of {rule.id} (closed slicing)"
                )
            self.element(value, rule, here, rule.path, _choice_type(rule, key))

    def _slice_cardinality(self, count: int, rule: ElementRule, where: str) -> None:
        label = f"slice '{rule.slice_name}' ({rule.id})"
        if count < rule.min:
            self.report(
                "error",
                "required",
                where,
                f"minimum cardinality of {label} is {rule.min}, found {count}",
            )
        if rule.max != UNBOUNDED and count > rule.max:
            self.report(
                "error",
                "structure",
                where,
                f"maximum cardinality of {label} is {rule.max}, found {count}",
            )

    # -- checks ------------------------------------------------------------------------------

    def binding(self, value: Any, rule: ElementRule, loc: str, type_code: str | None) -> None:
        assert rule.binding is not None and self.terminology is not None
        found = check_binding(value, rule.binding, type_code, self.terminology)
        if found is not None:
            severity, detail = found
            self.report(severity, "code-invalid", loc, detail)

    def reference(self, value: dict[str, Any], rule: ElementRule, loc: str) -> None:
        problem = reference_target_problem(value, rule, self.resource, self.definitions)
        if problem is not None:
            self.report("error", "structure", loc, problem)

    def constraints(
        self, value: Any, rule: ElementRule, loc: str, base: str, type_code: str | None
    ) -> None:
        assert self.invariants is not None
        for constraint in rule.constraints:
            key = str(constraint.get("key", ""))
            source = str(constraint.get("source") or self.source)
            invariant = self.invariants(constraint, source)
            outcome = invariant.holds(value, base, self.resource, self.root)
            if outcome is False:
                severity = "warning" if constraint.get("severity") == "warning" else "error"
                human = constraint.get("human", "")
                self.report(severity, "invariant", loc, f"constraint {key} failed: {human}", key)
            elif outcome is None:
                detail = f"constraint {key} could not be evaluated"
                self.report("warning", "invariant", loc, detail, key)

    def report(
        self, severity: str, code: str, loc: str, detail: str, key: str | None = None
    ) -> None:
        self.issues.append(Issue(severity, code, f"{loc}: {detail}", (loc,), key))

    # -- helpers -----------------------------------------------------------------------------

    def _content_reference(self, reference: str) -> ElementRule | None:
        """``#Questionnaire.item`` -> that element of the resource's core definition."""
        path = reference.rpartition("#")[2]
        compiled = self.definitions(CORE + path.split(".", 1)[0])
        if compiled is None:
            return None
        rule: ElementRule | None = compiled.root
        for name in path.split(".")[1:]:
            rule = rule.children.get(name) if rule is not None else None
        return rule

    def _type_profiles(self, rule: ElementRule, code: str | None) -> Iterator[str]:
        if not self.profile:
            return
        for type_rule in rule.types:
            if type_rule.code == code and code != "Extension":
                yield from type_rule.profiles


def _items(data: dict[str, Any], rule: ElementRule) -> Iterator[tuple[str, int | None, Any]]:
    """(JSON key, index in its array or None, value) of every instance of the element. A
    primitive that has only its ``_name`` extension object counts, with the value None."""
    if rule.is_choice:
        stem = rule.stem
        names = {k.lstrip("_") for k in data if k.lstrip("_").startswith(stem)}
        keys = sorted(k for k in names if len(k) > len(stem) and k[len(stem)].isupper())
    else:
        keys = [rule.name] if rule.name in data or ("_" + rule.name) in data else []
    for key in keys:
        value, extra = data.get(key), data.get("_" + key)
        if isinstance(value, list) or isinstance(extra, list):
            values = value if isinstance(value, list) else []
            extras = extra if isinstance(extra, list) else []
            for index in range(max(len(values), len(extras))):
                item = values[index] if index < len(values) else None
                if item is not None or (index < len(extras) and extras[index] is not None):
                    yield key, index, item
        else:
            yield key, None, value


#: The R4 primitive types, whose JSON names in a choice start with a capital (valueDateTime).
PRIMITIVE_TYPES = frozenset(
    {
        "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
        "instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt",
        "uri", "url", "uuid", "xhtml",
    }
)  # fmt: skip
_BY_SUFFIX = {t[0].upper() + t[1:]: t for t in PRIMITIVE_TYPES}


def _choice_type(rule: ElementRule, key: str) -> str | None:
    """The type of a choice element's instance, from its JSON name (``valueDateTime``)."""
    if not rule.is_choice:
        return None
    suffix = key[len(rule.stem) :]
    return _BY_SUFFIX.get(suffix, suffix)
