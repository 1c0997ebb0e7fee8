"""Static check of a patch path against the R4 element tables, before it is evaluated.

Evaluation only meets the names of elements that are present, so a misspelt name after an
absent element (``Patient.contact.nickname`` on a Patient without contacts) would select
nothing, and a delete would silently do nothing. :func:`check_path` follows the possible types
of every step from the resource type instead and raises :class:`PathError` for a name that is
an element of none of them. Where the type is not known statically (an element of type
Resource, until ``ofType()`` names it) the names after it are left to evaluation.
"""

from __future__ import annotations

from decimal import Decimal

from fhir_server.interactions.fhirpath_locate import PathError, element_keys, type_code
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
from fhir_server.search.fhirpath_types import (
    ANY_RESOURCE,
    BOOLEAN,
    Ctx,
    is_a,
    literal_ctx,
    resource_ctx,
)

Types = frozenset[Ctx]
_DECIMAL = literal_ctx(Decimal(0))
_EXTENSION = Ctx("Extension", "Extension", "Extension")


def _of_type(types: Types, type_name: str) -> Types:
    wanted = type_code(type_name)
    if ANY_RESOURCE in types and wanted not in ("Resource", "DomainResource"):
        types = types | {resource_ctx(wanted)}
    return frozenset(t for t in types if is_a(t.type, wanted))


def _children(types: Types, name: str) -> Types:
    found: set[Ctx] = set()
    unknown: list[PathError] = []
    for ctx in types:
        if ctx == ANY_RESOURCE:
            found.add(ANY_RESOURCE)
            continue
        try:
            found.update(child for _, _, child in element_keys(ctx, name))
        except PathError as exc:
            unknown.append(exc)
    if unknown and not found:
        raise unknown[0]
    return frozenset(found)


class _Checker:
    def __init__(self, root: Ctx) -> None:
        self.root = root

    def types(self, expr: Expr, focus: Types) -> Types:
        if isinstance(expr, This):
            return focus
        if isinstance(expr, Root):
            return frozenset({self.root})
        if isinstance(expr, Literal):
            return frozenset({literal_ctx(expr.value)})
        if isinstance(expr, Name):
            if isinstance(expr.base, This) and expr.name[:1].isupper():
                return _of_type(focus, expr.name)
            return _children(self.types(expr.base, focus), expr.name)
        if isinstance(expr, Index):
            return self.types(expr.base, focus)
        if isinstance(expr, TypeOp):
            base = self.types(expr.base, focus)
            return frozenset({BOOLEAN}) if expr.op == "is" else _of_type(base, expr.type_name)
        if isinstance(expr, Call):
            return self.call(expr, focus)
        self.types(expr.left, focus)
        self.types(expr.right, focus)
        return frozenset({BOOLEAN})

    def call(self, call: Call, focus: Types) -> Types:
        base = self.types(call.base, focus)
        for arg in call.args:  # where / exists criteria see each item; extension(url) the focus
            self.types(arg, focus if call.name == "extension" else base)
        if call.name in ("ofType", "as"):
            return _of_type(base, call.type_name)
        if call.name == "is":
            type_code(call.type_name)
        if call.name in ("where", "first", "last", "single"):
            return base
        if call.name == "extension":
            return frozenset({_EXTENSION})
        return frozenset({_DECIMAL if call.name == "count" else BOOLEAN})


def check_path(expr: Expr, resource_type: str) -> None:
    """Raise :class:`PathError` if ``expr`` names an element that no resource of
    ``resource_type`` can have where it is named."""
    root = resource_ctx(resource_type)
    _Checker(root).types(expr, frozenset({root}))
