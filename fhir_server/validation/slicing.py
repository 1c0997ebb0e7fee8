"""Assign the items of a sliced element to its slices (http://hl7.org/fhir/R4/profiling.html#slicing).

A slice's discriminators name a path inside each item and what the slice requires there: for
``value`` and ``pattern``, the ``fixed[x]``/``pattern[x]`` (or a required binding) the slice sets at
that path; for ``exists``, whether the slice requires the element (min > 0) or forbids it
(max = 0); for ``type``, the slice's allowed types. ``url`` on an extension slice is the url of the
extension's definition when the slice does not spell out ``Extension.url``. An item belongs to the
first slice all of whose discriminators it meets; ``profile`` discriminators cannot be decided
without validating the item against each profile and are treated as met.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fhir_server.validation import profile_values as pv
from fhir_server.validation.profile_model import CompiledDefinition, Discriminator, ElementRule

if TYPE_CHECKING:
    from fhir_server.validation.profile_check import Terminology

Item = tuple[str, int | None, Any]
Expected = tuple[str, Any]  # ("fixed" | "pattern" | "binding" | "exists" | "type", what)


def assign_slices(
    items: list[Item],
    rule: ElementRule,
    definitions: Callable[[str], CompiledDefinition | None],
    terminology: Terminology | None,
) -> tuple[dict[str, list[Item]], list[Item]]:
    """(items by slice name, items in no slice)."""
    discriminators = rule.slicing.discriminators if rule.slicing is not None else ()
    wanted = [(s, [(d, _expected(s, d, definitions)) for d in discriminators]) for s in rule.slices]
    assigned: dict[str, list[Item]] = {}
    unmatched: list[Item] = []
    for item in items:
        for slice_rule, tests in wanted:
            if tests and all(_meets(item, d, e, terminology) for d, e in tests):
                assigned.setdefault(slice_rule.slice_name or "", []).append(item)
                break
        else:
            unmatched.append(item)
    return assigned, unmatched


def _expected(
    slice_rule: ElementRule,
    discriminator: Discriminator,
    definitions: Callable[[str], CompiledDefinition | None],
) -> Expected | None:
    target: ElementRule | None = slice_rule
    steps = [s for s in discriminator.path.split(".") if s and s != "$this"]
    for step in steps:
        assert target is not None
        if step == "url" and "url" not in target.children and _is_extension(target):
            profiles = [p for t in target.types for p in t.profiles]
            return ("fixed", profiles[0]) if profiles else None
        child = target.children.get(step) or _from_type_profile(target, step, definitions)
        if child is None:
            return None
        target = child
    assert target is not None
    kind = discriminator.type
    if kind == "exists":
        return "exists", target.min > 0
    if kind == "type":
        return "type", target.type_codes()
    if kind == "profile":
        return "profile", None
    if target.fixed is not None:
        return "fixed", target.fixed[1]
    if target.pattern is not None:
        return "pattern", target.pattern[1]
    if target.binding is not None and target.binding.strength == "required":
        return "binding", target.binding.value_set
    return None


def _is_extension(rule: ElementRule) -> bool:
    return any(t.code == "Extension" for t in rule.types)


def _from_type_profile(
    rule: ElementRule, step: str, definitions: Callable[[str], CompiledDefinition | None]
) -> ElementRule | None:
    for type_rule in rule.types:
        for profile in type_rule.profiles:
            compiled = definitions(profile)
            if compiled is not None and step in compiled.root.children:
                return compiled.root.children[step]
    return None


def _meets(
    item: Item,
    discriminator: Discriminator,
    expected: Expected | None,
    terminology: Terminology | None,
) -> bool:
    if expected is None:
        return False
    kind, what = expected
    if kind == "profile":
        return True
    key, _, value = item
    if kind == "type":
        return _is_of_type(key, value, what)
    found = list(pv.navigate(value, discriminator.path))
    if kind == "exists":
        return bool(found) is what
    if kind == "fixed":
        return any(pv.meets_fixed(v, what) for v in found)
    if kind == "pattern":
        return any(pv.meets_pattern(v, what) for v in found)
    if kind == "binding" and terminology is not None:
        return any(_in_value_set(v, what, terminology) for v in found)
    return False


def _is_of_type(key: str, value: Any, codes: tuple[str, ...]) -> bool:
    """A resource by its resourceType, a choice item by its JSON name (``valueQuantity``)."""
    if isinstance(value, dict) and isinstance(value.get("resourceType"), str):
        return value["resourceType"] in codes
    return any(key.endswith(code[:1].upper() + code[1:]) for code in codes)


def _in_value_set(value: Any, value_set: str, terminology: Terminology) -> bool:
    if isinstance(value, str):
        return terminology.contains(value_set, None, value) is True
    if isinstance(value, dict):
        codings = value.get("coding") if "coding" in value else [value]
        for coding in codings or []:
            code = coding.get("code") if isinstance(coding, dict) else None
            if isinstance(code, str) and terminology.contains(
                value_set, coding.get("system"), code
            ):
                return True
    return False
