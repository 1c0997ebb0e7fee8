"""JSON Patch (RFC 6902) for FHIR's PATCH interaction (http://hl7.org/fhir/R4/http.html#patch).

:func:`parse_patch` checks a patch document (RFC 6902 §3 and §4, pointers per RFC 6901) and raises
:class:`InvalidRequest` (HTTP 400) when it is malformed. :func:`apply_patch` applies the operations
in order to a deep copy of the resource, all or nothing (§5), and raises
:class:`UnprocessableResource` (HTTP 422) when one cannot be applied. Diagnostics name the
operation's index, its op and its pointers, never a value of the resource (it may be personal data).

FHIR's own rules stay with the caller: after :func:`apply_patch`, call :func:`check_identity`
(``resourceType`` and ``id`` must not change), then validate the result as for an update.
Values are inserted as given, so a :class:`~fhir_server.core.fhirjson.FhirDecimal` keeps its text.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fhir_server.core.errors import InvalidRequest, UnprocessableResource

OPS = ("add", "remove", "replace", "move", "copy", "test")
_NEEDS_VALUE = frozenset({"add", "replace", "test"})
_NEEDS_FROM = frozenset({"move", "copy"})
_BAD_ESCAPE = re.compile(r"~(?![01])")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")
_SHOWN = 200  # longest pointer text repeated in a diagnostic


@dataclass(frozen=True, slots=True)
class Pointer:
    """A JSON Pointer (RFC 6901): the text as sent and its unescaped reference tokens."""

    text: str
    tokens: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Operation:
    """One checked operation of a patch document (RFC 6902 §4); ``index`` is its position."""

    index: int
    op: str
    path: Pointer
    value: Any = None
    from_: Pointer | None = None


class _Failure(Exception):
    """An operation cannot be applied; the text says why, without any value of the document."""


# --- Parsing (RFC 6902 §3, §4; RFC 6901 §3, §4) -------------------------------------------------


def parse_pointer(text: str) -> Pointer:
    """Parse a JSON Pointer (RFC 6901 §3, §4); raise ValueError when it is not one."""
    if text and not text.startswith("/"):
        raise ValueError("it must be empty or start with '/'")
    if _BAD_ESCAPE.search(text):
        raise ValueError("'~' must be followed by '0' or '1'")
    tokens = text.split("/")[1:]
    return Pointer(text, tuple(t.replace("~1", "/").replace("~0", "~") for t in tokens))


def parse_patch(document: object) -> list[Operation]:
    """Check a JSON Patch document (RFC 6902 §3, §4) and return its operations in order."""
    if not isinstance(document, list):
        raise InvalidRequest("A JSON Patch document must be a JSON array of operations")
    return [_parse_operation(index, item) for index, item in enumerate(document)]


def _invalid(index: int, problem: str) -> InvalidRequest:
    return InvalidRequest(f"patch operation {index}: {problem}")


def _parse_operation(index: int, item: object) -> Operation:
    """One operation object (§4): unknown members are ignored, required ones checked."""
    if not isinstance(item, dict):
        raise _invalid(index, "an operation must be a JSON object")
    op = item.get("op")
    if "op" not in item:
        raise _invalid(index, "'op' is required")
    if not isinstance(op, str) or op not in OPS:
        raise _invalid(index, f"'op' must be one of {', '.join(OPS)}")
    path = _member_pointer(index, item, "path", op)
    from_ = _member_pointer(index, item, "from", op) if op in _NEEDS_FROM else None
    if op in _NEEDS_VALUE and "value" not in item:
        raise _invalid(index, f"'value' is required for '{op}'")
    return Operation(index, op, path, item.get("value"), from_)


def _member_pointer(index: int, item: dict[str, Any], member: str, op: str) -> Pointer:
    if member not in item:
        raise _invalid(index, f"'{member}' is required for '{op}'")
    text = item[member]
    if not isinstance(text, str):
        raise _invalid(index, f"'{member}' must be a string (a JSON Pointer)")
    try:
        return parse_pointer(text)
    except ValueError as exc:
        raise _invalid(index, f"'{member}' is not a valid JSON Pointer: {exc}") from None


# --- Navigation (RFC 6901 §4) -------------------------------------------------------------------


def _where(tokens: tuple[str, ...]) -> str:
    """The pointer text of ``tokens``, escaped again and shortened for a diagnostic."""
    text = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def _index(token: str, length: int, *, adding: bool) -> int:
    """An array index (RFC 6901 §4; '-' and index == length only when adding, RFC 6902 §4.1)."""
    if token == "-" and adding:
        return length
    if not _ARRAY_INDEX.fullmatch(token):
        raise _Failure("an array index must be '0' or a number without leading zeros")
    position = int(token)
    if position > length or (position == length and not adding):
        raise _Failure("the array index is out of range")
    return position


def _existing(container: Any, token: str, tokens: tuple[str, ...]) -> str | int:
    """The key or index of an existing member of ``container``."""
    if isinstance(container, dict):
        if token not in container:
            raise _Failure(f"'{_where(tokens)}' does not exist")
        return token
    if isinstance(container, list):
        return _index(token, len(container), adding=False)
    raise _Failure(f"'{_where(tokens[:-1])}' is neither an object nor an array")


def _get(document: Any, tokens: tuple[str, ...]) -> Any:
    """The value at ``tokens``; it must exist (RFC 6901 §4)."""
    node = document
    for depth, token in enumerate(tokens):
        node = node[_existing(node, token, tokens[: depth + 1])]
    return node


def _parent(document: Any, tokens: tuple[str, ...]) -> Any:
    """The container holding the target of a non-empty pointer; it must exist."""
    return _get(document, tokens[:-1])


# --- Operations (RFC 6902 §4.1-§4.6) -----------------------------------------------------------


def _add(document: Any, tokens: tuple[str, ...], value: Any) -> Any:
    """§4.1: the root is replaced, an object member set, an array element inserted."""
    if not tokens:
        return value
    parent, token = _parent(document, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(token, len(parent), adding=True), value)
    else:
        raise _Failure(f"'{_where(tokens[:-1])}' is neither an object nor an array")
    return document


def _remove(document: Any, tokens: tuple[str, ...]) -> Any:
    """§4.2: the target must exist; returns the removed value."""
    if not tokens:
        raise _Failure("the whole document cannot be removed")
    parent = _parent(document, tokens)
    key = _existing(parent, tokens[-1], tokens)
    return parent.pop(key)


def _remove_op(document: Any, op: Operation) -> Any:
    """§4.2 as an operation: the removed value is dropped."""
    _remove(document, op.path.tokens)
    return document


def _replace(document: Any, tokens: tuple[str, ...], value: Any) -> Any:
    """§4.3: the target must exist."""
    if not tokens:
        return value
    parent = _parent(document, tokens)
    key = _existing(parent, tokens[-1], tokens)
    parent[key] = value
    return document


def _source(op: Operation) -> tuple[str, ...]:
    if op.from_ is None:  # parse_patch never lets this happen
        raise _Failure("'from' is missing")
    return op.from_.tokens


def _move(document: Any, op: Operation) -> Any:
    """§4.4: remove at 'from' then add at 'path'; never into one of its own children."""
    source, target = _source(op), op.path.tokens
    if source == target:
        _get(document, source)
        return document
    if target[: len(source)] == source:
        raise _Failure("a location cannot be moved into one of its children")
    return _add(document, target, _remove(document, source))


def _copy(document: Any, op: Operation) -> Any:
    """§4.5: the value at 'from' is added at 'path'."""
    return _add(document, op.path.tokens, copy.deepcopy(_get(document, _source(op))))


def _test(document: Any, op: Operation) -> Any:
    """§4.6: the value at 'path' must equal 'value'."""
    if not json_equal(_get(document, op.path.tokens), op.value):
        raise _Failure("the value at the target location differs from the expected value")
    return document


def _number(value: object) -> Decimal | int | None:
    """A JSON number as an exact value; booleans are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    return Decimal(repr(value)) if isinstance(value, float) else value


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality of RFC 6902 §4.6: numbers by value, objects regardless of member order."""
    left_number, right_number = _number(left), _number(right)
    if left_number is not None or right_number is not None:
        return left_number is not None and right_number is not None and left_number == right_number
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    return type(left) is type(right) and bool(left == right)


_APPLY: dict[str, Callable[[Any, Operation], Any]] = {
    "add": lambda doc, op: _add(doc, op.path.tokens, copy.deepcopy(op.value)),
    "remove": _remove_op,
    "replace": lambda doc, op: _replace(doc, op.path.tokens, copy.deepcopy(op.value)),
    "move": _move,
    "copy": _copy,
    "test": _test,
}


def _describe(op: Operation) -> str:
    target = f"'{_where(op.path.tokens)}'"
    if op.from_ is not None:
        return f"'{op.op}' from '{_where(op.from_.tokens)}' to {target}"
    return f"'{op.op}' at {target}"


def apply_operations(document: Any, operations: Sequence[Operation]) -> Any:
    """Apply operations in order to a deep copy of any JSON document (RFC 6902 §3, §5)."""
    result = copy.deepcopy(document)
    for op in operations:
        try:
            result = _APPLY[op.op](result, op)
        except _Failure as exc:
            raise UnprocessableResource(
                f"patch operation {op.index} ({_describe(op)}): {exc}"
            ) from None
    return result


def apply_patch(resource: dict[str, Any], operations: Sequence[Operation]) -> dict[str, Any]:
    """Patch a resource (RFC 6902 §5: all or nothing); ``resource`` itself is never changed.

    The caller must then run :func:`check_identity` and validate the result.
    """
    result = apply_operations(resource, operations)
    if not isinstance(result, dict):
        raise UnprocessableResource("The patched document is not a JSON object")
    return result


def check_identity(original: Mapping[str, Any], patched: Mapping[str, Any]) -> None:
    """FHIR guard rail: a patch must not change the resource's ``resourceType`` or ``id``."""
    for member in ("resourceType", "id"):
        if not json_equal(patched.get(member), original.get(member)):
            raise UnprocessableResource(f"A patch must not change or remove '{member}'")
