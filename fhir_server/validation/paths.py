"""JSON locations to FHIRPath expressions (http://hl7.org/fhirpath/N1/).

A location is the tuple of JSON keys and array indexes from the resource root, as pydantic and
the walk report it. It becomes ``Patient.name[0].given[1]``; a choice element becomes
``Observation.value.ofType(Quantity)``; a primitive's ``_name`` sibling designates the primitive
itself (``_birthDate.extension[0]`` -> ``Patient.birthDate.extension[0]``); a nested resource is
followed by its own ``resourceType`` (``Bundle.entry[3].resource.status``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fhir_server.validation import schema
from fhir_server.validation.schema import Element, Node

Loc = tuple[str | int, ...]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def safe_name(key: str) -> str:
    """A JSON property name fit for diagnostics: element-like names only, never free text."""
    return key if _NAME.fullmatch(key) else "(invalid name)"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a location designates: its expression, element, the node owning it, its key."""

    expression: str
    element: Element | None
    parent: Node | None
    key: str | None
    node: Node | None  # kind of the JSON object at the location, if it is one


def _nested(value: object, engine: schema.Engine) -> Node | None:
    kind = value.get("resourceType") if isinstance(value, dict) else None
    return schema.resource_node(kind, engine) if isinstance(kind, str) else None


def _lookup(node: Node | None, key: str) -> tuple[Element | None, bool]:
    if node is None:
        return None, False
    els = node.elements
    found = els.get(key)
    if found is None and key.startswith("_"):
        base = els.get(key[1:])
        if base is not None and base.extensible:
            return base, True
    return found, False


def _segment(element: Element) -> str:
    if element.choice:
        return f".{element.name}.ofType({element.type_code})"
    return f".{element.name}"


def resolve(root: Node, data: object, loc: Loc) -> Resolved:
    """Follow ``loc`` from the resource ``data`` of kind ``root``."""
    parts = [root.model]
    node: Node | None = root
    value = data
    element: Element | None = None
    parent: Node | None = None
    key: str | None = None
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
            ok = isinstance(value, list) and 0 <= item < len(value)
            value = value[item] if ok else None  # type: ignore[index]
            continue
        if node is None and element is not None and element.is_resource:
            node = _nested(value, root.engine)
        parent, key = node, item
        element, is_extension = _lookup(node, item)
        value = value.get(item) if isinstance(value, dict) else None
        if element is None:
            parts.append(f".{safe_name(item)}")
            node = None
            continue
        parts.append(_segment(element))
        node = schema.primitive_extension(root.engine) if is_extension else element.node
    if node is None and element is not None and element.is_resource:
        node = _nested(value, root.engine)
    return Resolved("".join(parts), element, parent, key, node)
