"""Expressions that are plain key paths, for the indexer's direct walk over the JSON.

Most search parameter expressions are a path (``Patient.address.city``), a choice read as one
type (``Observation.value as Quantity``) or a union of such (``Observation.code |
Observation.component.code``). :func:`chains` turns those into *chains*: the JSON keys to follow
from the focus and the static type of what they reach, in the order the general evaluation
(:mod:`fhirpath`) yields nodes. The indexer walks them with dict lookups and resolves each
chain's normaliser once, at compile time.

Order: a union yields its terms in turn; a child step yields, per input node, the values of
each of its keys in turn. So a choice (``value[x]``: several keys) can become one chain per key
only on the focus itself, which is a single node; a choice deeper down interleaves the keys per
node, and such an expression is not a chain (None: the general evaluation is used).
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_server.search.fhirpath_parse import Call, Child, Expr, This, TypeOp, Union
from fhir_server.search.fhirpath_types import ANY_RESOURCE, Ctx, fhir_type, is_a, keys

Chain = tuple[tuple[str, ...], Ctx]


def chains_by_focus(expr: Expr, focus: Iterable[Ctx]) -> dict[Ctx, tuple[Chain, ...]] | None:
    """:func:`chains` for each static type the focus can have; None unless all are chains."""
    found: dict[Ctx, tuple[Chain, ...]] = {}
    for ctx in focus:
        ctx_chains = chains(expr, ctx)
        if ctx_chains is None:
            return None
        found[ctx] = ctx_chains
    return found


def chains(expr: Expr, focus: Ctx) -> tuple[Chain, ...] | None:
    """``expr`` as chains from a focus node of static type ``focus``, None when it is not a
    union of plain paths (``where``, ``first()``, a deep choice, an inline resource...)."""
    if isinstance(expr, Union):
        found: list[Chain] = []
        for term in expr.terms:
            term_chains = _path(term, focus)
            if term_chains is None:
                return None
            found.extend(term_chains)
        return tuple(found)
    return _path(expr, focus)


def _path(expr: Expr, focus: Ctx) -> tuple[Chain, ...] | None:
    if focus == ANY_RESOURCE:
        return None
    if isinstance(expr, This):
        return (((), focus),)
    if isinstance(expr, Child):
        if isinstance(expr.base, This) and expr.name[:1].isupper():
            return _of_type((((), focus),), expr.name)  # a type filter on the focus
        base = _path(expr.base, focus)
        return None if base is None else _child(base, expr.name)
    if isinstance(expr, TypeOp) and expr.op == "as":
        base = _path(expr.base, focus)
        return None if base is None else _of_type(base, expr.type_name)
    if isinstance(expr, Call) and expr.name in ("as", "ofType") and len(expr.args) == 1:
        arg = expr.args[0]
        if isinstance(arg, Child) and isinstance(arg.base, This | Child):
            base = _path(expr.base, focus)
            return None if base is None else _of_type(base, arg.name)
    return None


def _child(base: tuple[Chain, ...], name: str) -> tuple[Chain, ...] | None:
    found: list[Chain] = []
    for path, ctx in base:
        if ctx == ANY_RESOURCE:
            return None
        children = keys(ctx, name)
        if len(children) > 1 and path:
            return None  # a choice below the focus: its keys interleave per node
        found.extend(((*path, key), child) for key, child in children)
    return tuple(found)


def _of_type(base: tuple[Chain, ...], type_name: str) -> tuple[Chain, ...] | None:
    """``as T``: the chains whose type is a T (``as Quantity`` keeps an Age)."""
    wanted = fhir_type(type_name)
    if any(ctx == ANY_RESOURCE for _, ctx in base):
        return None
    return tuple((path, ctx) for path, ctx in base if is_a(ctx.type, wanted))
