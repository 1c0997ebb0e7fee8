"""The ``value`` of a FHIRPath Patch operation, and its FHIR JSON at the element it goes to.

A value is a ``value[x]`` of the Parameters resource (``valueDate``, ``valueHumanName``...; a
primitive's ``_valueDate`` sibling, its id and extensions, comes along), a ``resource`` (for
``contained``), or, for anonymous types (BackboneElements such as ``Patient.contact``, or
``Timing.repeat``), a set of ``part`` named after the child elements, each holding a value the
same way (http://hl7.org/fhir/R4/fhirpatch.html). Primitives keep their JSON type as sent
(``valueBoolean`` true, ``valueInteger`` 3, ``valueDecimal`` a FhirDecimal with its exact text).

:func:`parse_value` checks the shape (:class:`InvalidRequest`, naming the part); :func:`to_element`
checks the type against the element of the R4 tables that will hold it and builds the JSON
(:class:`ValueMismatch`, naming the part). Messages name types and paths, never values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions.fhirpath_edit import list_insert, list_length, put
from fhir_server.interactions.fhirpath_locate import (
    capitalised,
    element_table,
    find_element,
    is_primitive,
)
from fhir_server.search.fhirpath_types import element_ctx, fhir_type, is_a


class ValueMismatch(ValueError):
    """The value cannot be the content of the element; ``expression`` names the part."""

    def __init__(self, message: str, expression: str) -> None:
        super().__init__(message)
        self.expression = expression


@dataclass(frozen=True, slots=True)
class PatchValue:
    """A parsed value: ``type`` is the FHIR type code of a ``value[x]`` (``date``,
    ``HumanName``), ``Resource`` for a resource, None for a set of parts."""

    type: str | None
    json: Any
    shadow: dict[str, Any] | None
    parts: tuple[NamedValue, ...]
    expression: str


@dataclass(frozen=True, slots=True)
class NamedValue:
    """One part of an anonymous value: the child element's name and its value."""

    name: str
    value: PatchValue


@cache
def value_types() -> dict[str, str]:
    """``value[x]`` suffix -> type code, for every type a Parameters value may have."""
    info = r4.children("Parameters", "Parameters.parameter")["value[x]"]
    return {capitalised(t): t for t in info.types}


def _invalid(problem: str, expression: str) -> InvalidRequest:
    return InvalidRequest(problem, expression=[expression])


def parse_value(part: dict[str, Any], expression: str) -> PatchValue:
    """The value held by a ``value`` part (or a nested part) at ``expression``."""
    suffixes = {key.lstrip("_")[5:] for key in part if key.lstrip("_").startswith("value")}
    kinds = len(suffixes) + ("resource" in part) + ("part" in part)
    if kinds != 1:
        raise _invalid("a value needs exactly one of value[x], resource or part", expression)
    if "resource" in part:
        resource = part["resource"]
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise _invalid("'resource' must be a resource", expression + ".resource")
        return PatchValue("Resource", resource, None, (), expression)
    if "part" in part:
        return PatchValue(None, None, None, _parse_parts(part["part"], expression), expression)
    (suffix,) = suffixes
    type_code = value_types().get(suffix)
    if type_code is None:
        shown = f"'value{suffix}'" if suffix.isalnum() and len(suffix) <= 40 else "value[x]"
        raise _invalid(f"{shown} is not a type a Parameters value can have", expression)
    json, shadow = part.get("value" + suffix), part.get("_value" + suffix)
    if type_code in r4.primitive_types():
        if isinstance(json, dict | list) or not isinstance(shadow, dict | None):
            raise _invalid(f"'value{suffix}' must be a JSON primitive", expression)
    elif not isinstance(json, dict) or shadow is not None:
        raise _invalid(f"'value{suffix}' must be a JSON object", expression)
    return PatchValue(type_code, json, shadow, (), expression)


def _parse_parts(parts: object, expression: str) -> tuple[NamedValue, ...]:
    if not isinstance(parts, list) or not parts:
        raise _invalid("'part' must be a non-empty array", expression)
    found = []
    for index, part in enumerate(parts):
        where = f"{expression}.part[{index}]"
        if not isinstance(part, dict) or not isinstance(part.get("name"), str):
            raise _invalid("each part must be an object with a 'name'", where)
        value_part = {k: v for k, v in part.items() if k != "name"}
        found.append(NamedValue(part["name"], parse_value(value_part, where)))
    return tuple(found)


def _describe(value: PatchValue) -> str:
    return "a set of parts" if value.type is None else f"a {value.type}"


def to_element(
    value: PatchValue, info: r4.ElementInfo, requested: str | None
) -> tuple[str, Any, dict[str, Any] | None]:
    """The JSON key, value and ``_key`` sibling that put ``value`` in element ``info``.

    ``requested`` is the name the patch used (``value``, ``value[x]``, ``valueString``); None
    lets a choice take whichever type the value has (replace).
    """
    key, json, shadow = _convert(value, info, requested)
    return key, copy.deepcopy(json), copy.deepcopy(shadow)


def _convert(
    value: PatchValue, info: r4.ElementInfo, requested: str | None
) -> tuple[str, Any, dict[str, Any] | None]:
    owner = info.path.split(".", 1)[0]
    if info.is_choice:
        stem = info.name[:-3]
        allowed = [fhir_type(t) for t in info.types]
        if value.type not in allowed:
            raise ValueMismatch(f"{info.path} cannot hold {_describe(value)}", value.expression)
        key = stem + capitalised(value.type or "")
        if requested not in (None, stem, info.name, key):
            raise ValueMismatch(
                f"'{requested}' does not match {_describe(value)}", value.expression
            )
        return key, value.json, value.shadow
    type_code = (info.types or ("",))[0]
    expected = "BackboneElement" if info.content_reference else fhir_type(type_code)
    mismatch = ValueMismatch(
        f"{info.path} ({expected}) cannot hold {_describe(value)}", value.expression
    )
    if value.type is None:
        ctx = element_ctx(owner, info, type_code)
        if is_primitive(ctx) or ctx.type == "Resource":
            raise mismatch
        return info.name, _build(value.parts, element_table(ctx)), None
    if value.type == "Resource" or expected == "Resource":
        if value.type != expected:
            raise mismatch
        return info.name, value.json, None
    if value.type in r4.primitive_types():
        if expected not in r4.primitive_types():  # the primitive's lexical form is validated later
            raise mismatch
        return info.name, value.json, value.shadow
    if not (is_a(value.type, expected) or is_a(expected, value.type)):
        raise mismatch
    return info.name, value.json, None


def _build(parts: tuple[NamedValue, ...], table: dict[str, r4.ElementInfo]) -> dict[str, Any]:
    """The JSON object of an anonymous type from its parts (repeated names make a list)."""
    built: dict[str, Any] = {}
    for part in parts:
        info = find_element(table, part.name)
        if info is None:
            raise ValueMismatch(f"'{part.name}' is not an element here", part.value.expression)
        key, json, shadow = _convert(part.value, info, part.name)
        if info.is_array:
            list_insert(built, key, list_length(built, key), json, shadow)
        elif key in built or "_" + key in built:
            raise ValueMismatch(f"'{part.name}' is given twice", part.value.expression)
        else:
            put(built, key, json, shadow)
    return built
