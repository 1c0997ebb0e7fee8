"""Closures for the steps of a compiled expression, where a tighter one than the general step
is known to give the same nodes (:mod:`fhirpath` chooses them at compile time).

Indexing evaluates every expression on every write: a child step over nodes of one static type
needs no lookup per node, and the ``where(...)`` criteria the R4 parameters use most
(``resolve() is Patient``, ``system = 'phone'``) are tested directly on the JSON instead of
through the general comparison closures. Each fast path states why it selects the same nodes.
"""

from __future__ import annotations

from typing import Any

from fhir_server.search.fhirpath_parse import Binary, Call, Child, Expr, Literal, This, TypeOp
from fhir_server.search.fhirpath_types import (
    BOOLEAN,
    Ctx,
    Fn,
    MultipleItems,
    Node,
    equal,
    fhir_type,
    is_a,
    keys,
    truth,
)
from fhir_server.search.fhirpath_types import target_type as reference_target


def child_of_one(base_fn: Fn, found: tuple[tuple[str, Ctx], ...]) -> Fn:
    """A child step over nodes that all have one static type: ``found`` holds the JSON keys of
    the element in that type (several for a choice ``value[x]``), each with its value's type."""
    if len(found) > 1:

        def choice(nodes: list[Node], root: Any) -> list[Node]:
            result: list[Node] = []
            for value, _ in base_fn(nodes, root):
                if isinstance(value, dict):
                    for key, child_ctx in found:
                        item = value.get(key)
                        if item is None:
                            continue
                        if isinstance(item, list):
                            result.extend([(v, child_ctx) for v in item if v is not None])
                        else:
                            result.append((item, child_ctx))
            return result

        return choice
    ((key, child_ctx),) = found

    def child(nodes: list[Node], root: Any) -> list[Node]:
        result: list[Node] = []
        for value, _ in base_fn(nodes, root):
            if isinstance(value, dict):
                item = value.get(key)
                if item is None:
                    continue
                if isinstance(item, list):
                    result.extend([(v, child_ctx) for v in item if v is not None])
                else:
                    result.append((item, child_ctx))
        return result

    return child


def where_resolves_to(base_fn: Fn, wanted: str) -> Fn:
    """``where(resolve() is T)``: the item is its own single ``resolve()`` input, so the test is
    whether the type it points to is a T."""

    def where(nodes: list[Node], root: Any) -> list[Node]:
        return [
            node
            for node in base_fn(nodes, root)
            if (kind := reference_target(node[0], root)) is not None and is_a(kind, wanted)
        ]

    return where


def where_equals(base_fn: Fn, key: str, literal: str, negate: bool) -> Fn:
    """``where(name = 'text')`` (``!=`` with ``negate``), ``name`` being one JSON key of the
    item. As in FHIRPath: no value selects nothing (the item is dropped); several values are
    not equal to one literal; a value equals a string literal only if it is that same string
    (a number, boolean or object never is, and ``==`` says so too)."""

    def where(nodes: list[Node], root: Any) -> list[Node]:
        result: list[Node] = []
        for node in base_fn(nodes, root):
            value = node[0]
            if not isinstance(value, dict):
                continue
            item = value.get(key)
            if item is None:
                continue
            if isinstance(item, list):
                present = [v for v in item if v is not None]
                if not present:
                    continue
                same = len(present) == 1 and present[0] == literal
            else:
                same = item == literal
            if same != negate:
                result.append(node)
        return result

    return where


def fast_where(base_fn: Fn, base_out: frozenset[Ctx], criteria: Expr) -> Fn | None:
    """The tighter closure (fhirpath_steps) of the common criteria, None for the others."""
    if (
        isinstance(criteria, TypeOp)
        and criteria.op == "is"
        and isinstance(criteria.base, Call)
        and criteria.base.name == "resolve"
        and isinstance(criteria.base.base, This)
    ):
        return where_resolves_to(base_fn, fhir_type(criteria.type_name))
    if (
        isinstance(criteria, Binary)
        and criteria.op in ("=", "!=")
        and isinstance(criteria.left, Child)
        and isinstance(criteria.left.base, This)
        and not criteria.left.name[:1].isupper()
        and isinstance(criteria.right, Literal)
        and isinstance(criteria.right.value, str)
        and len(base_out) == 1
    ):
        found = keys(next(iter(base_out)), criteria.left.name)
        if len(found) == 1:
            literal = criteria.right.value
            return where_equals(base_fn, found[0][0], literal, criteria.op == "!=")
    return None


def raise_multiple() -> list[Node]:
    raise MultipleItems


def exists(base_fn: Fn, wanted: bool) -> Fn:
    return lambda nodes, root: [(bool(base_fn(nodes, root)) == wanted, BOOLEAN)]


def negation(base_fn: Fn) -> Fn:
    def negate(nodes: list[Node], root: Any) -> list[Node]:
        value = truth(base_fn(nodes, root))
        return [] if value is None else [(not value, BOOLEAN)]

    return negate


def conjunction(left: Fn, right: Fn) -> Fn:
    """``left and right``, with FHIRPath's three-valued logic (empty is unknown)."""

    def both(nodes: list[Node], root: Any) -> list[Node]:
        a, b = truth(left(nodes, root)), truth(right(nodes, root))
        if a is False or b is False:
            return [(False, BOOLEAN)]
        return [(True, BOOLEAN)] if a and b else []

    return both


def comparison(left: Fn, right: Fn, negate: bool) -> Fn:
    """``left = right`` (``!=`` with ``negate``); empty when either side is."""

    def compare(nodes: list[Node], root: Any) -> list[Node]:
        same = equal(left(nodes, root), right(nodes, root))
        return [] if same is None else [(same != negate, BOOLEAN)]

    return compare
