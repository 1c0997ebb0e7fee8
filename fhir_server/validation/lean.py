"""Which children a lean profile walk visits: the core definition of a resource's type, checked
without profile rules or invariants (every write does this for the terminology bindings).

Such a walk can only report at an element with a value check (fixed, pattern, a required or
extensible binding), in slicing, in a nested resource, or in an extension (checked against its
definition). profile_check.py visits a child when it has a value check below it in the snapshot,
or when its children come from elsewhere (a data type not unrolled in the snapshot). This module
answers that per parent once (:meth:`LeanPlans.plan`: JSON name -> child rule), and for a
resource without any extension (``plain``) goes further: a child whose data types reach no value
check, slicing or resource at all — CodeableConcept, Coding, Period... — is not visited, since
nothing below it can report. The issues are the same, found with fewer visits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import orjson

from fhir_server.core import r4
from fhir_server.validation.profile_model import CompiledDefinition, ElementRule

CORE: Final = "http://hl7.org/fhir/StructureDefinition/"
_RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})

#: JSON name (``_name`` siblings included) -> the child rule a lean walk visits for it.
Plan = dict[str, ElementRule]


def is_plain(resource: object) -> bool:
    """True when the resource holds no ``extension`` or ``modifierExtension`` anywhere, told by
    its JSON form (a name is written there between plain quotes; a string value that merely
    looks like one only makes the walk less lean)."""
    try:
        return b'xtension"' not in orjson.dumps(resource)
    except TypeError:
        return False


def may_need(rule: ElementRule) -> bool:
    """Without profile rules or invariants, a subtree needs a visit only for its value checks;
    an element whose children come from its data type (not unrolled in the snapshot) or from a
    contained resource or an extension's definition may have them there."""
    return not rule.children and any(t.code[:1].isupper() for t in rule.types)


class LeanPlans:
    """The plans of one generation of compiled definitions (``definitions`` looks them up)."""

    def __init__(self, definitions: Callable[[str], CompiledDefinition | None]) -> None:
        self._definitions = definitions
        self._plans: dict[tuple[int, bool], tuple[ElementRule, Plan]] = {}
        self._reaches: dict[str, bool] = {}
        self._typedefs: dict[str, CompiledDefinition | None] = {}

    def typedef(self, code: str) -> CompiledDefinition | None:
        """The core definition of data type ``code`` (looked up once per generation)."""
        try:
            return self._typedefs[code]
        except KeyError:
            found = self._typedefs[code] = self._definitions(CORE + code)
            return found

    def plan(self, parent: ElementRule, plain: bool) -> Plan:
        key = (id(parent), plain)
        found = self._plans.get(key)
        if found is None or found[0] is not parent:
            found = self._plans[key] = (parent, self._build(parent, plain))
        return found[1]

    def _build(self, parent: ElementRule, plain: bool) -> Plan:
        plan: Plan = {}
        for json_name, rule in parent.by_json_name.items():
            if rule.has_value_checks or (may_need(rule) and not (plain and self._inert(rule))):
                plan[json_name] = rule
                plan["_" + json_name] = rule
        return plan

    def _inert(self, rule: ElementRule) -> bool:
        """True when nothing below an instance of ``rule`` can be reported in plain data."""
        if rule.slices or rule.slicing is not None or rule.content_reference is not None:
            return False
        if len(rule.types) != 1 and not rule.is_choice:
            return False  # its type is read from the data (a nested resource?)
        return not any(self._reaches_check(t.code) for t in rule.types)

    def _reaches_check(self, code: str) -> bool:
        """Whether an instance of data type ``code`` may reach a value check, slicing or a
        nested resource through any of its elements and their data types (extensions aside)."""
        found = self._reaches.get(code)
        if found is None:
            found = self._reaches[code] = self._search(code)
        return found

    def _search(self, start: str) -> bool:
        seen = {start}
        todo = [start]
        while todo:
            code = todo.pop()
            if code in _RESOURCE_TYPES or r4.is_resource_type(code):
                return True
            if not code[:1].isupper() or code == "Extension":
                continue  # a primitive; no extension in plain data
            compiled = self._definitions(CORE + code)
            if compiled is None:
                continue  # the walk finds no definition either
            rules = [compiled.root]
            while rules:
                rule = rules.pop()
                if rule.types and all(t.code == "Extension" for t in rule.types):
                    continue  # extension, modifierExtension: no instance in plain data
                if rule.has_value_checks or rule.slices or rule.slicing is not None:
                    return True
                if rule.content_reference is not None:
                    return True
                if len(rule.types) > 1 and not rule.is_choice:
                    return True
                rules.extend(rule.children.values())
                for type_rule in rule.types:
                    if type_rule.code not in seen:
                        seen.add(type_rule.code)
                        todo.append(type_rule.code)
        return False
