"""Evaluate a FHIRPath Patch path on a resource: the selected elements and where each one sits.

Every node carries its FHIR type (a :class:`Ctx` from the R4 element tables, refined at run time
for contained resources) and its :class:`Location`, the JSON object and key (plus the index for an
item of a repeating element) that hold it, so that an operation can change it in place. Element
names follow FHIRPath: ``value`` selects whichever ``value[x]`` is present (``valueQuantity`` is
accepted too), ``ofType(T)`` / ``as T`` filter by type, and a primitive's ``id`` / ``extension``
are found in its ``_name`` sibling (FHIR JSON, http://hl7.org/fhir/R4/json.html#primitive).

A name that is not an element of the type being navigated raises :class:`PathError` (the patch
is wrong for any resource of this type); a FHIRPath error that depends on the data (several
values where one is needed) raises :class:`EvaluationError`. Neither quotes a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir_server.core import r4
from fhir_server.interactions.fhirpath_path import (
    Call,
    Expr,
    Index,
    Literal,
    Name,
    Root,
    This,
    TypeOp,
)
from fhir_server.interactions.jsonpatch import json_equal
from fhir_server.search.fhirpath_types import (
    BOOLEAN,
    Ctx,
    children,
    element_ctx,
    fhir_type,
    is_a,
    is_known_type,
    literal_ctx,
    resource_ctx,
)


class PathError(ValueError):
    """The path names an element or a type that does not exist where it is used."""


class EvaluationError(ValueError):
    """A FHIRPath error that depends on the data (e.g. several values in a boolean test)."""


@dataclass(frozen=True, slots=True)
class Location:
    """Where an element's value sits: ``container[key]``, or ``container[key][index]`` for an
    item of a repeating element; a primitive's id and extensions sit in ``container['_' + key]``.
    ``parent`` is where ``container`` itself sits (None: the resource); ``in_shadow`` says that
    ``container`` is the parent primitive's ``_name`` object rather than its value."""

    container: dict[str, Any]
    key: str
    index: int | None
    info: r4.ElementInfo
    parent: Location | None
    in_shadow: bool = False


@dataclass(frozen=True, slots=True)
class Node:
    """A value with its FHIR type; ``location`` is None for the resource itself and for values
    computed by the expression (literals, booleans)."""

    value: Any  # None for a primitive that only has an id or extensions
    ctx: Ctx
    location: Location | None


_ELEMENT = Ctx("Element", "Element", "Element")


def is_primitive(ctx: Ctx) -> bool:
    return not ctx.owner and ctx.type != "Resource"


def element_table(ctx: Ctx) -> dict[str, r4.ElementInfo]:
    """The child elements of a node of type ``ctx`` (a primitive has those of Element)."""
    return children(_ELEMENT if is_primitive(ctx) else ctx)


def capitalised(type_code: str) -> str:
    """The suffix a type gives a choice element's JSON name (``dateTime`` -> ``DateTime``)."""
    return type_code[:1].upper() + type_code[1:]


def find_element(table: dict[str, r4.ElementInfo], name: str) -> r4.ElementInfo | None:
    """The element called ``name``: ``given``, a choice as ``value`` or ``value[x]``, or one
    type of a choice as ``valueQuantity``."""
    info = table.get(name)
    if info is not None:
        return info
    info = table.get(name + "[x]")
    if info is not None:
        return info
    for candidate in table.values():
        stem = candidate.name[:-3]
        if (
            candidate.is_choice
            and name.startswith(stem)
            and name[len(stem) :] in {capitalised(fhir_type(t)) for t in candidate.types}
        ):
            return candidate
    return None


def element_keys(ctx: Ctx, name: str) -> list[tuple[str, r4.ElementInfo, Ctx]]:
    """The JSON keys that may hold element ``name`` of a ``ctx`` node, with their types."""
    if ctx.type == "Resource":  # a contained resource without a known resourceType
        return []
    info = find_element(element_table(ctx), name)
    if info is None:
        raise PathError(f"'{name}' is not an element of {ctx.path or ctx.type}")
    owner = info.path.split(".", 1)[0]
    if not info.is_choice:
        return [(info.name, info, element_ctx(owner, info, (info.types or ("",))[0]))]
    stem = info.name[:-3]
    found = []
    for type_code in info.types:
        key = stem + capitalised(fhir_type(type_code))
        if name in (stem, info.name, key):
            found.append((key, info, element_ctx(owner, info, type_code)))
    return found


def _typed(value: Any, ctx: Ctx) -> Ctx:
    """A contained resource's type is its resourceType."""
    if ctx.type == "Resource" and isinstance(value, dict):
        kind = value.get("resourceType")
        if isinstance(kind, str) and r4.is_resource_type(kind):
            return resource_ctx(kind)
    return ctx


def shadow_at(location: Location) -> Any:
    """The ``_name`` entry (id and extensions) of the primitive at ``location``, or None."""
    shadow = location.container.get("_" + location.key)
    if location.index is None:
        return shadow
    if isinstance(shadow, list) and location.index < len(shadow):
        return shadow[location.index]
    return None


def child_nodes(node: Node, name: str) -> Iterator[Node]:
    """The values of element ``name`` of ``node``, in document order. An unknown name is a
    PathError, except in a resource held by an element of type Resource (``contained``): its
    type is known only here, and another resource of the same list may have that element."""
    primitive = is_primitive(node.ctx)
    owner = shadow_at(node.location) if primitive and node.location else node.value
    try:
        keys = element_keys(node.ctx, name)
    except PathError:
        if node.location is not None and r4.is_resource_type(node.ctx.type):
            return
        raise
    if not isinstance(owner, dict):
        return
    for key, info, ctx in keys:
        value, shadow = owner.get(key), owner.get("_" + key)
        if isinstance(value, list) or isinstance(shadow, list):
            values = value if isinstance(value, list) else []
            shadows = shadow if isinstance(shadow, list) else []
            for index in range(max(len(values), len(shadows))):
                item = values[index] if index < len(values) else None
                if item is not None or (index < len(shadows) and shadows[index] is not None):
                    where = Location(owner, key, index, info, node.location, primitive)
                    yield Node(item, _typed(item, ctx), where)
        elif value is not None or shadow is not None:
            yield Node(
                value,
                _typed(value, ctx),
                Location(owner, key, None, info, node.location, primitive),
            )


# --- evaluation ------------------------------------------------------------------------------


def _truth(nodes: list[Node]) -> bool | None:
    """FHIRPath singleton evaluation in a boolean context; None for empty."""
    if not nodes:
        return None
    if len(nodes) > 1:
        raise EvaluationError("a boolean test got several values")
    value = nodes[0].value
    return value if isinstance(value, bool) else True


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | Decimal) and isinstance(right, int | Decimal):
        return Decimal(left) == Decimal(right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    if isinstance(left, dict | list) and isinstance(right, dict | list):
        return json_equal(left, right)
    return False


def _equal(left: list[Node], right: list[Node]) -> bool | None:
    lefts = [n.value for n in left if n.value is not None]
    rights = [n.value for n in right if n.value is not None]
    if not lefts or not rights:
        return None
    return len(lefts) == len(rights) and all(map(_same, lefts, rights))


def _logic(op: str, left: bool | None, right: bool | None) -> bool | None:
    """Three-valued ``and`` / ``or`` / ``xor`` / ``implies`` (FHIRPath § Boolean logic)."""
    if op == "and":
        if left is False or right is False:
            return False
        return True if left and right else None
    if op == "or":
        if left or right:
            return True
        return False if left is False and right is False else None
    if op == "xor":
        return None if left is None or right is None else left != right
    if left is False or right is True:  # implies
        return True
    return False if left is True and right is False else None


def _boolean(value: bool | None) -> list[Node]:
    return [] if value is None else [Node(value, BOOLEAN, None)]


def type_code(name: str) -> str:
    """The FHIR type code of a type name in a path (``String`` -> ``string``); PathError if none."""
    code = fhir_type(name)
    if not is_known_type(code):
        raise PathError(f"'{name}' is not a FHIR type")
    return code


class _Evaluator:
    def __init__(self, root: Node) -> None:
        self.root = root

    def eval(self, expr: Expr, focus: list[Node]) -> list[Node]:
        if isinstance(expr, This):
            return focus
        if isinstance(expr, Root):
            return [self.root]
        if isinstance(expr, Literal):
            return [Node(expr.value, literal_ctx(expr.value), None)]
        if isinstance(expr, Name):
            if isinstance(expr.base, This) and expr.name[:1].isupper():  # a type: Patient.name
                wanted = type_code(expr.name)
                return [n for n in focus if is_a(n.ctx.type, wanted)]
            items = self.eval(expr.base, focus)
            return [child for item in items for child in child_nodes(item, expr.name)]
        if isinstance(expr, Index):
            return self.eval(expr.base, focus)[expr.index : expr.index + 1]
        if isinstance(expr, TypeOp):
            return self.type_test(expr.op, self.eval(expr.base, focus), expr.type_name)
        if isinstance(expr, Call):
            return self.call(expr, focus)
        left, right = self.eval(expr.left, focus), self.eval(expr.right, focus)
        if expr.op in ("=", "!="):
            same = _equal(left, right)
            return _boolean(same if expr.op == "=" or same is None else not same)
        return _boolean(_logic(expr.op, _truth(left), _truth(right)))

    def type_test(self, op: str, items: list[Node], type_name: str) -> list[Node]:
        wanted = type_code(type_name)
        if op != "is":  # as, ofType
            return [n for n in items if is_a(n.ctx.type, wanted)]
        if len(items) > 1:
            raise EvaluationError("'is' got several values")
        return _boolean(is_a(items[0].ctx.type, wanted) if items else None)

    def call(self, call: Call, focus: list[Node]) -> list[Node]:
        items = self.eval(call.base, focus)
        name, args = call.name, call.args
        if name in ("ofType", "as", "is"):
            return self.type_test(name, items, call.type_name)
        if name == "where":
            return [n for n in items if _truth(self.eval(args[0], [n])) is True]
        if name == "exists":
            if args:
                return _boolean(any(_truth(self.eval(args[0], [n])) is True for n in items))
            return _boolean(bool(items))
        if name == "empty":
            return _boolean(not items)
        if name == "not":
            truth = _truth(items)
            return _boolean(None if truth is None else not truth)
        if name in ("first", "last"):
            return items[:1] if name == "first" else items[-1:]
        if name == "single":
            if len(items) > 1:
                raise EvaluationError("single() got several values")
            return items
        if name == "count":
            return [Node(Decimal(len(items)), literal_ctx(Decimal(0)), None)]
        if name == "hasValue":
            return _boolean(
                len(items) == 1 and is_primitive(items[0].ctx) and items[0].value is not None
            )
        url = [n.value for n in self.eval(args[0], focus)]  # extension(url)
        if len(url) != 1 or not isinstance(url[0], str):
            raise EvaluationError("extension() needs one url")
        found = [child for item in items for child in child_nodes(item, "extension")]
        return [n for n in found if isinstance(n.value, dict) and n.value.get("url") == url[0]]


def root_node(resource: dict[str, Any]) -> Node:
    kind = resource.get("resourceType")
    return Node(resource, resource_ctx(kind if isinstance(kind, str) else ""), None)


def evaluate(expr: Expr, resource: dict[str, Any]) -> list[Node]:
    """The nodes ``expr`` selects, the resource being the focus and ``%resource``."""
    root = root_node(resource)
    return _Evaluator(root).eval(expr, [root])
