"""Static types of FHIRPath nodes and the runtime helpers the compiled closures share.

A node is ``(json value, Ctx)``; :class:`Ctx` says which FHIR type the value has and where the
R4 tables (``fhir_server.core.r4``) define its children, so that a path can be resolved to JSON
keys once, at compile time (``Observation.value`` -> ``valueQuantity``, ``valueString``...).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import Any

from fhir_server.core import r4
from fhir_server.search.values import split_reference


@dataclass(frozen=True, slots=True)
class Ctx:
    """The static type of a node: its FHIR type, and where its children are defined.

    ``owner``/``path`` locate the element in the R4 tables: a resource type and an element path
    (``Patient``, ``Patient.contact``), or a complex data type and a path in it (``Timing``,
    ``Timing.repeat``); both empty for a primitive.
    """

    type: str
    owner: str = ""
    path: str = ""


Node = tuple[Any, Ctx]
Fn = Callable[[list[Node], Any], list[Node]]  # (focus nodes, root resource) -> nodes

#: A node of type Resource (``Bundle.entry.resource``): its real type is known only at run time.
ANY_RESOURCE = Ctx("Resource")
BOOLEAN = Ctx("boolean")
_SYSTEM_TYPES = MappingProxyType(
    {
        "String": "string",
        "Boolean": "boolean",
        "Integer": "integer",
        "Decimal": "decimal",
        "Date": "date",
        "DateTime": "dateTime",
        "Time": "time",
    }
)
_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
_NON_DOMAIN = frozenset({"Bundle", "Binary", "Parameters"})


# --- types -----------------------------------------------------------------------------------


def resource_ctx(resource_type: str) -> Ctx:
    """The static type of a resource of that type (the root of its element table)."""
    return Ctx(resource_type, resource_type, resource_type)


def fhir_type(name: str) -> str:
    """A type name as written in an expression or a table, as a FHIR type code."""
    if name.startswith(_SYSTEM_PREFIX):
        name = name[len(_SYSTEM_PREFIX) :]
    return _SYSTEM_TYPES.get(name, name)


@cache
def _ancestors(type_name: str) -> frozenset[str]:
    """The type and every type it specialises (``Age``: Age, Quantity, Element)."""
    if r4.is_resource_type(type_name):
        bases = {"Resource"} if type_name in _NON_DOMAIN else {"Resource", "DomainResource"}
        return frozenset({type_name, *bases})
    found = {type_name}
    base = r4.base_type(type_name)
    while base is not None and base not in found:
        found.add(base)
        base = r4.base_type(base)
    return frozenset(found)


def is_a(actual: str, wanted: str) -> bool:
    return wanted in _ancestors(actual)


def is_known_type(name: str) -> bool:
    return (
        r4.is_resource_type(name)
        or name in ("Resource", "DomainResource")
        or name in r4.primitive_types()
        or name in r4.complex_types()
    )


def children(ctx: Ctx) -> dict[str, r4.ElementInfo]:
    if not ctx.owner:
        return {}
    if r4.is_resource_type(ctx.owner):
        return r4.children(ctx.owner, ctx.path)
    return r4.datatype_children(ctx.owner, ctx.path)


def element_ctx(owner: str, info: r4.ElementInfo, type_code: str) -> Ctx:
    """The static type of an element's value of ``type_code``."""
    reference = info.content_reference
    if reference is not None:
        return Ctx("BackboneElement", owner, reference.split("#")[-1])
    type_name = fhir_type(type_code)
    if type_name in ("BackboneElement", "Element"):
        return Ctx(type_name, owner, info.path)
    if type_name == "Resource":
        return ANY_RESOURCE
    if type_name in r4.complex_types():
        return Ctx(type_name, type_name, type_name)
    return Ctx(type_name)


def keys(ctx: Ctx, name: str) -> tuple[tuple[str, Ctx], ...]:
    """The JSON keys holding element ``name`` of a ``ctx`` node, each with its value's type."""
    found = children(ctx)
    info = found.get(name)
    if info is not None:
        return tuple((name, element_ctx(ctx.owner, info, t)) for t in info.types[:1] or ("",))
    info = found.get(name + "[x]")
    if info is not None:
        return tuple(
            (name + t[0].upper() + t[1:], element_ctx(ctx.owner, info, t)) for t in info.types
        )
    return ()


# --- runtime helpers -------------------------------------------------------------------------


def items(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for v in value if v is not None]
    return [] if value is None else [value]


def target_type(value: Any, root: Any) -> str | None:
    """The resource type a Reference (or a canonical/uri string) points to, as ``resolve()``
    would find it: from ``reference`` (relative, absolute, ``#contained``) or else ``type``."""
    text = value.get("reference") if isinstance(value, dict) else value
    if isinstance(text, str):
        if text.startswith("#"):
            for contained in items(root.get("contained") if isinstance(root, dict) else None):
                if isinstance(contained, dict) and contained.get("id") == text[1:]:
                    kind = contained.get("resourceType")
                    return kind if isinstance(kind, str) else None
            return None
        parts = split_reference(text.split("|", 1)[0])
        if parts is not None:
            return parts[0]
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) and r4.is_resource_type(kind) else None


def truth(nodes: Sequence[Node]) -> bool | None:
    """FHIRPath singleton evaluation in a boolean context: None for empty."""
    if not nodes:
        return None
    if len(nodes) == 1:
        value = nodes[0][0]
        return value if isinstance(value, bool) else True
    raise MultipleItems


class MultipleItems(Exception):
    """A boolean context got several items; the spec makes that an error, the where() item
    is then not kept (never raised out of an extractor)."""


def equal(left: Sequence[Node], right: Sequence[Node]) -> bool | None:
    if not left or not right:
        return None
    if len(left) != len(right):
        return False
    return all(same(a[0], b[0]) for a, b in zip(left, right, strict=True))


def same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float | Decimal) and isinstance(b, int | float | Decimal):
        return Decimal(str(a)) == Decimal(str(b))
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def literal_ctx(value: str | bool | Decimal) -> Ctx:
    if isinstance(value, bool):
        return BOOLEAN
    return Ctx("string") if isinstance(value, str) else Ctx("decimal")
