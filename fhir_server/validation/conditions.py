"""A compiled fast path for the simple FHIRPath conditions of a rule set (rules.py).

A rule set's ``where`` conditions are evaluated on every write of their resource type; with
fhirpathpy each costs about 0.1-0.2 ms. The conditions rule sets are written with are almost
always one of two shapes, which this module compiles into plain dictionary walks:

- ``a.b.c.exists()`` and ``a.b.where(c = 'literal').exists()``: member steps of plain names
  (no choice elements), optionally one ``where`` comparing a string-typed child with a string
  literal;
- ``extension('url').exists()``: an extension of the resource with that url.

The compiled form answers exactly what fhirpathpy answers (tests/unit/validation/
test_conditions.py compares both on the shipped rule set and on tricky resources); whenever the
data is not of the plain shape the walk understands (a primitive's ``_name`` sibling, a
contained resource on the path, a value of an unexpected JSON type, a choice element) it gives
up and fhirpathpy decides: :data:`UNDECIDED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from fhir_server.validation.invariants_fhirpath import R4_MODEL

#: What a compiled condition returns when fhirpathpy must decide.
UNDECIDED: Final = None

#: A compiled condition: True/False, or UNDECIDED.
Compiled = Callable[[dict[str, Any]], bool | None]

_NAME = r"[a-z][A-Za-z0-9]*"
_PATH_SHAPE = re.compile(
    rf"(?P<path>{_NAME}(?:\.{_NAME})*)"
    rf"(?:\.where\(\s*(?P<field>{_NAME})\s*=\s*'(?P<literal>[^'\\]*)'\s*\))?"
    r"\.exists\(\)"
)
_EXTENSION_SHAPE = re.compile(r"extension\('(?P<url>[^'\\]*)'\)\.exists\(\)")

#: FHIRPath keywords that look like names but are not member steps.
_KEYWORDS = frozenset(
    {"and", "as", "contains", "div", "false", "implies", "in", "is", "mod", "or", "true", "xor"}
)
#: The types whose values fhirpathpy compares with a string literal as plain strings.
_STRING_TYPES = frozenset(
    {"string", "uri", "url", "canonical", "code", "id", "oid", "uuid", "markdown"}
)
_ELSEWHERE: dict[str, str] = R4_MODEL["pathsDefinedElsewhere"]
_CHOICES: dict[str, Any] = R4_MODEL["choiceTypePaths"]
_TYPES: dict[str, str] = R4_MODEL["path2Type"]


class _GiveUp(Exception):
    """The data is not of the plain shape: fhirpathpy decides."""


def compile_condition(expression: str) -> Compiled | None:
    """The compiled condition, or None if the expression is not of a shape compiled here."""
    text = expression.strip()
    found = _EXTENSION_SHAPE.fullmatch(text)
    if found is not None:
        return _extension_exists(found["url"])
    found = _PATH_SHAPE.fullmatch(text)
    if found is None:
        return None
    steps = tuple(found["path"].split("."))
    field = found["field"]
    if any(step in _KEYWORDS for step in steps) or field in _KEYWORDS:
        return None
    return _PathExists(steps, field, found["literal"])


def _extension_exists(url: str) -> Compiled:
    def holds(resource: dict[str, Any]) -> bool | None:
        extensions = resource.get("extension", [])
        if type(extensions) is not list:
            return UNDECIDED
        found = False
        for extension in extensions:
            if type(extension) is not dict or "url" not in extension:
                return UNDECIDED  # fhirpathpy fails on it (None: the rule applies)
            if extension["url"] == url:
                found = True
        return found

    return holds


def _child_type(parent: str, key: str) -> str | None:
    """The type path fhirpathpy gives to ``key`` below a node of type path ``parent`` (its
    member invocation with the R4 model); None for a choice element."""
    path = f"{parent}.{key}"
    path = _ELSEWHERE.get(path, path)
    if _CHOICES.get(path):
        return None
    return _TYPES.get(path, path)


class _PathExists:
    """``steps.exists()`` or ``steps.where(field = 'literal').exists()``."""

    __slots__ = ("_field", "_literal", "_paths", "_steps")

    def __init__(self, steps: tuple[str, ...], field: str | None, literal: str | None) -> None:
        self._steps = steps
        self._field = field
        self._literal = literal
        self._paths: dict[str, bool] = {}  # resource type -> all steps plain (no choice)

    def __call__(self, resource: dict[str, Any]) -> bool | None:
        kind = resource.get("resourceType")
        if type(kind) is not str or not self._plain(kind):
            return UNDECIDED
        try:
            nodes: list[Any] = [resource]
            last = len(self._steps) - 1
            for position, step in enumerate(self._steps):
                nodes = _members(nodes, step, final=position == last and self._field is None)
            if self._field is None:
                return bool(nodes)
            return any(_equals(node, self._field, self._literal) for node in nodes)
        except _GiveUp:
            return UNDECIDED

    def _plain(self, kind: str) -> bool:
        plain = self._paths.get(kind)
        if plain is None:
            plain = self._paths[kind] = self._check_types(kind)
        return plain

    def _check_types(self, kind: str) -> bool:
        path: str | None = kind
        for step in self._steps:
            assert path is not None
            path = _child_type(path, step)
            if path is None:
                return False
        if self._field is not None:
            assert path is not None
            return _child_type(path, self._field) in _STRING_TYPES
        return True


def _members(nodes: list[Any], key: str, *, final: bool) -> list[Any]:
    """The values of ``key`` in every node (arrays flattened); only objects go further."""
    out: list[Any] = []
    for node in nodes:
        if type(node) is not dict or "_" + key in node:
            raise _GiveUp
        value = node.get(key)
        if value is None:
            continue
        items = value if type(value) is list else [value]
        for item in items:
            if type(item) is dict:
                if "resourceType" in item:
                    raise _GiveUp  # a nested resource: its own type paths
                out.append(item)
            elif final and type(item) in (str, bool, int, float):
                out.append(item)
            else:
                raise _GiveUp
    return out


def _equals(node: Any, field: str, literal: str | None) -> bool:
    if type(node) is not dict or "_" + field in node:
        raise _GiveUp
    value = node.get(field)
    if value is None:
        return False
    if type(value) is not str:
        raise _GiveUp
    return value == literal
