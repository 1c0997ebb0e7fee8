"""FHIRPath Patch (http://hl7.org/fhir/R4/fhirpatch.html) for FHIR's PATCH interaction.

A patch is a Parameters resource with one ``operation`` parameter per change, whose parts are
``type`` (add | insert | delete | replace | move), ``path`` (FHIRPath), and as the type needs
``name``, ``value``, ``index``, ``source``, ``destination``. :func:`parse_fhirpath_patch` checks
it and raises :class:`InvalidRequest` (HTTP 400) naming the part (``Parameters.parameter[2]``,
``Parameters.parameter[2].part[1]``). :func:`apply_fhirpath_patch` applies the operations in
order to a deep copy of the resource, all or nothing, and raises
:class:`UnprocessableResource` (HTTP 422) naming the operation and its path when one cannot be
applied: the path must select exactly one element, except for delete (none: nothing to do).

The caller then runs :func:`~fhir_server.interactions.jsonpatch.check_identity` and validates the
result as for an update. Diagnostics quote the path, never a value of the resource or the patch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_server.core.errors import InvalidRequest, UnprocessableResource
from fhir_server.interactions.fhirpath_check import check_path
from fhir_server.interactions.fhirpath_edit import (
    EditError,
    children_object,
    list_insert,
    list_length,
    list_move,
    put,
    remove_at,
    replace_at,
)
from fhir_server.interactions.fhirpath_locate import (
    EvaluationError,
    Location,
    Node,
    PathError,
    element_keys,
    element_table,
    evaluate,
    find_element,
)
from fhir_server.interactions.fhirpath_patch_values import (
    PatchValue,
    ValueMismatch,
    parse_value,
    to_element,
)
from fhir_server.interactions.fhirpath_path import Expr, Name, PathSyntaxError, parse_path

OPERATION_TYPES = ("add", "insert", "delete", "replace", "move")
_NEEDS: Mapping[str, tuple[str, ...]] = {
    "add": ("path", "name", "value"),
    "insert": ("path", "value", "index"),
    "delete": ("path",),
    "replace": ("path", "value"),
    "move": ("path", "source", "destination"),
}
_PART_NAMES = ("type", "path", "name", "value", "index", "source", "destination")
_INTEGER_VALUES = ("valueInteger", "valueUnsignedInt", "valuePositiveInt")
_SHOWN = 200  # longest path text repeated in a diagnostic


@dataclass(frozen=True, slots=True)
class Operation:
    """One checked operation; ``parameter`` is its position in ``Parameters.parameter`` and
    ``parts`` maps each part name to its FHIRPath in the Parameters (for diagnostics)."""

    parameter: int
    type: str
    path: str
    expr: Expr
    parts: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    value: PatchValue | None = None
    index: int = 0
    source: int = 0
    destination: int = 0

    @property
    def where(self) -> str:
        return f"Parameters.parameter[{self.parameter}]"

    def describe(self) -> str:
        path = self.path if len(self.path) <= _SHOWN else self.path[:_SHOWN] + "..."
        return f"operation {self.parameter} ({self.type} at '{path}')"


class _Failure(Exception):
    """The operation cannot be applied to this resource; the text says why, without values."""


# --- parsing ---------------------------------------------------------------------------------


def parse_fhirpath_patch(document: object) -> tuple[Operation, ...]:
    """Check a FHIRPath Patch (a Parameters resource) and return its operations in order."""
    if not isinstance(document, dict) or document.get("resourceType") != "Parameters":
        raise InvalidRequest(
            "A FHIRPath Patch must be a Parameters resource (http://hl7.org/fhir/R4/fhirpatch.html)"
        )
    parameters = document.get("parameter", [])
    if not isinstance(parameters, list):
        raise InvalidRequest("'parameter' must be an array", expression=["Parameters.parameter"])
    return tuple(_parse_operation(i, parameter) for i, parameter in enumerate(parameters))


def _parse_operation(position: int, parameter: object) -> Operation:
    where = f"Parameters.parameter[{position}]"
    if not isinstance(parameter, dict):
        raise InvalidRequest("a parameter must be an object", expression=[where])
    if parameter.get("name") != "operation":
        raise InvalidRequest(
            "each parameter must be named 'operation'", expression=[where + ".name"]
        )
    parts = parameter.get("part")
    if not isinstance(parts, list) or not parts:
        raise InvalidRequest("an operation needs its parts (type, path...)", expression=[where])
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for index, part in enumerate(parts):
        at = f"{where}.part[{index}]"
        name = part.get("name") if isinstance(part, dict) else None
        if not isinstance(part, dict) or name not in _PART_NAMES:
            raise InvalidRequest(
                f"a part must be named one of {', '.join(_PART_NAMES)}", expression=[at]
            )
        if name in found:
            raise InvalidRequest(f"the part '{name}' is given twice", expression=[at])
        found[name] = (at, part)
    if "type" not in found:
        raise InvalidRequest("the part 'type' is required", expression=[where])
    at, part = found["type"]
    type_ = part.get("valueCode", part.get("valueString"))
    if type_ not in OPERATION_TYPES:
        raise InvalidRequest(f"'type' must be one of {', '.join(OPERATION_TYPES)}", expression=[at])
    for name in _NEEDS[type_]:
        if name not in found:
            raise InvalidRequest(f"the part '{name}' is required for '{type_}'", expression=[where])
    for name, (at, _) in found.items():
        if name != "type" and name not in _NEEDS[type_]:
            raise InvalidRequest(f"the part '{name}' does not apply to '{type_}'", expression=[at])
    path, expr = _path(*found["path"], type_)
    values: dict[str, Any] = {}
    if "name" in found:
        values["name"] = _string(*found["name"], "name")
    if "value" in found:
        at, part = found["value"]
        values["value"] = parse_value({k: v for k, v in part.items() if k != "name"}, at)
    for name in ("index", "source", "destination"):
        if name in found:
            values[name] = _integer(*found[name], name)
    expressions = {name: at for name, (at, _) in found.items()}
    return Operation(position, type_, path, expr, expressions, **values)


def _string(at: str, part: dict[str, Any], name: str) -> str:
    text = part.get("valueString")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(f"'{name}' must be a non-empty valueString", expression=[at])
    return text


def _path(at: str, part: dict[str, Any], type_: str) -> tuple[str, Expr]:
    text = _string(at, part, "path")
    try:
        expr = parse_path(text)
    except PathSyntaxError as exc:
        raise InvalidRequest(
            f"'path' is not a supported FHIRPath: {exc}", expression=[at]
        ) from None
    if type_ in ("insert", "move") and not isinstance(expr, Name):
        raise InvalidRequest(
            f"the path of '{type_}' must end with the name of the list element", expression=[at]
        )
    return text, expr


def _integer(at: str, part: dict[str, Any], name: str) -> int:
    values = [part[key] for key in _INTEGER_VALUES if key in part]
    number = values[0] if len(values) == 1 else None
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise InvalidRequest(f"'{name}' must be a valueInteger of 0 or more", expression=[at])
    return number


# --- applying --------------------------------------------------------------------------------


def _single(nodes: list[Node]) -> Node:
    if not nodes:
        raise _Failure("the path matches no element")
    if len(nodes) > 1:
        raise _Failure(f"the path matches {len(nodes)} elements; it must match exactly one")
    return nodes[0]


def _located(node: Node, resource: dict[str, Any]) -> Location:
    if node.value is resource:
        raise _Failure("the path selects the resource itself, not one of its elements")
    if node.location is None:
        raise _Failure("the path does not select an element that a patch can change")
    return node.location


def _value(op: Operation) -> PatchValue:
    if op.value is None:  # parse_fhirpath_patch never lets this happen
        raise _Failure("the value is missing")
    return op.value


def _add(resource: dict[str, Any], op: Operation) -> None:
    """Append element ``name`` to the element at ``path`` (a list if it repeats); a single
    element must not exist yet."""
    target = _single(evaluate(op.expr, resource))
    if target.location is None and target.value is not resource:
        raise _Failure("the path does not select an element that a patch can change")
    info = find_element(element_table(target.ctx), op.name)
    if info is None:
        problem = f"'{op.name}' is not an element of {target.ctx.path or target.ctx.type}"
        raise InvalidRequest(problem, expression=[op.parts["name"]])
    key, json, shadow = to_element(_value(op), info, op.name)
    container = children_object(target)
    if info.is_array:
        list_insert(container, key, list_length(container, key), json, shadow)
        return
    stems = [k for k, _, _ in element_keys(target.ctx, info.name.removesuffix("[x]"))]
    if any(k in container or "_" + k in container for k in stems):
        raise _Failure(f"'{op.name}' already has a value; use replace")
    put(container, key, json, shadow)


def _list(resource: dict[str, Any], op: Operation) -> tuple[Node, dict[str, Any], str]:
    """The element holding the list that ``path`` names, the JSON object and the list's key."""
    expr = op.expr
    assert isinstance(expr, Name)  # parse_fhirpath_patch checks it
    owner = _single(evaluate(expr.base, resource))
    if owner.location is None and owner.value is not resource:
        raise _Failure("the path does not select an element that a patch can change")
    info = find_element(element_table(owner.ctx), expr.name)
    if info is None:
        raise PathError(f"'{expr.name}' is not an element of {owner.ctx.path or owner.ctx.type}")
    if not info.is_array:
        raise _Failure(f"'{expr.name}' is not a list ({info.path} does not repeat)")
    return owner, children_object(owner), info.name


def _insert(resource: dict[str, Any], op: Operation) -> None:
    owner, container, key = _list(resource, op)
    length = list_length(container, key)
    if op.index > length:
        raise _Failure(f"index {op.index} is out of range: the list has {length} item(s)")
    info = element_table(owner.ctx)[key]
    _, json, shadow = to_element(_value(op), info, key)
    list_insert(container, key, op.index, json, shadow)


def _move(resource: dict[str, Any], op: Operation) -> None:
    _, container, key = _list(resource, op)
    length = list_length(container, key)
    for name, position in (("source", op.source), ("destination", op.destination)):
        if position >= length:
            raise _Failure(f"{name} {position} is out of range: the list has {length} item(s)")
    list_move(container, key, op.source, op.destination)


def _delete(resource: dict[str, Any], op: Operation) -> None:
    nodes = evaluate(op.expr, resource)
    if nodes:
        remove_at(_located(_single(nodes), resource))


def _replace(resource: dict[str, Any], op: Operation) -> None:
    location = _located(_single(evaluate(op.expr, resource)), resource)
    key, json, shadow = to_element(_value(op), location.info, None)
    replace_at(location, key, json, shadow)


_APPLY: Mapping[str, Callable[[dict[str, Any], Operation], None]] = {
    "add": _add,
    "insert": _insert,
    "delete": _delete,
    "replace": _replace,
    "move": _move,
}


def apply_fhirpath_patch(
    resource: dict[str, Any], operations: Sequence[Operation]
) -> dict[str, Any]:
    """Patch a resource, all or nothing; ``resource`` itself is never changed."""
    result = copy.deepcopy(resource)
    resource_type = str(result.get("resourceType", ""))
    for op in operations:
        try:
            check_path(op.expr, resource_type)
            _APPLY[op.type](result, op)
        except PathError as exc:
            raise InvalidRequest(f"{op.describe()}: {exc}", expression=[op.parts["path"]]) from None
        except ValueMismatch as exc:
            raise UnprocessableResource(
                f"{op.describe()}: {exc}", expression=[op.where, exc.expression]
            ) from None
        except (_Failure, EvaluationError, EditError) as exc:
            raise UnprocessableResource(f"{op.describe()}: {exc}", expression=[op.where]) from None
    return result
