"""Which JSON keys of its focus an expression needs to select anything.

Most of a resource type's search parameters read elements the resource does not have; the
indexer skips those without evaluating them when it knows, from the expression alone, that the
result would be empty. :func:`needs` gives that knowledge as a condition in disjunctive normal
form: a tuple of alternatives, each a tuple of key sets that must *all* meet the focus's keys
(an alternative with no key sets always holds). The expression can select something only if one
alternative holds; None means "no such condition is known" (``exists()``, ``%resource``, a
literal...). The condition is necessary, never sufficient: a superset of keys is always sound.

Examples: ``Patient.name.given | Patient.telecom`` needs ``(({"name", "telecom"},),)`` (one of
those keys); ``Observation.value as Quantity`` needs ``(({"valueQuantity"},),)``; the indexer
makes a composite on ``Observation`` need ``(({"code"}, {"valueQuantity"}),)`` (both keys).
"""

from __future__ import annotations

from collections.abc import Iterable

from fhir_server.search.fhirpath_parse import Call, Child, Expr, Index, This, TypeOp, Union
from fhir_server.search.fhirpath_types import ANY_RESOURCE, Ctx, fhir_type, is_a, keys

Conjunction = tuple[frozenset[str], ...]
Needs = tuple[Conjunction, ...]

#: The focus itself (or a subset of it): no key is needed.
FOCUS: Needs = ((),)

# Functions whose result is empty when their input is (they filter or pick from it).
_FILTERS = frozenset({"where", "first", "as", "ofType"})


def needs(expr: Expr, focus: Iterable[Ctx]) -> Needs | None:
    """The condition on the focus node's JSON keys for ``expr`` to select anything, for a
    focus of one of the static types ``focus``; None when unknown."""
    return _needs(expr, frozenset(focus))


def _needs(expr: Expr, focus: frozenset[Ctx]) -> Needs | None:
    if isinstance(expr, This):
        return FOCUS
    if isinstance(expr, Child):
        if isinstance(expr.base, This) and expr.name[:1].isupper():
            return FOCUS  # a type filter on the focus
        return _child(_needs(expr.base, focus), focus, expr.name)
    if isinstance(expr, TypeOp) and expr.op == "as":
        return _of_type(expr.base, focus, expr.type_name)
    if isinstance(expr, Index):
        return _needs(expr.base, focus)
    if isinstance(expr, Call):
        if expr.name in ("as", "ofType") and len(expr.args) == 1:
            wanted = _type_name(expr.args[0])
            if wanted is not None:
                return _of_type(expr.base, focus, wanted)
        if expr.name in _FILTERS:
            return _needs(expr.base, focus)
        if expr.name == "extension":
            return _child(_needs(expr.base, focus), focus, "extension")
        return None
    if isinstance(expr, Union):
        found: list[Conjunction] = []
        for term in expr.terms:
            term_needs = _needs(term, focus)
            if term_needs is None:
                return None
            found.extend(term_needs)
        if all(len(conjunction) == 1 for conjunction in found):  # one of these keys
            return ((frozenset(key for conjunction in found for key in conjunction[0]),),)
        return tuple(found)
    return None


def _type_name(arg: Expr) -> str | None:
    if isinstance(arg, Child) and isinstance(arg.base, This | Child):
        return arg.name
    return None


def _of_type(base: Expr, focus: frozenset[Ctx], type_name: str) -> Needs | None:
    """``base as T``: when ``base`` is an element of the focus, only its keys holding a T (a
    choice ``value[x]`` as Quantity needs ``valueQuantity``, ``valueAge``...)."""
    if isinstance(base, Child) and not (isinstance(base.base, This) and base.name[:1].isupper()):
        wanted = fhir_type(type_name)
        return _child(_needs(base.base, focus), focus, base.name, wanted)
    return _needs(base, focus)


def _child(
    base: Needs | None, focus: frozenset[Ctx], name: str, wanted: str | None = None
) -> Needs | None:
    """A child of what ``base`` selects: a child of the focus needs one of its keys (of type
    ``wanted`` when given); a child of anything deeper needs what that needed."""
    if base is None:
        return None
    own = frozenset(
        key
        for ctx in focus
        for key, child in keys(ctx, name)
        if wanted is None or child == ANY_RESOURCE or is_a(child.type, wanted)
    )
    return tuple(conjunction or (own,) for conjunction in base)


def conjoin(parts: Iterable[Needs | None]) -> Conjunction | None:
    """The single alternative meaning "every part holds", when each known part is a single
    alternative (unknown parts add nothing); None when some part has several alternatives."""
    found: list[frozenset[str]] = []
    for part in parts:
        if part is None:
            continue
        if len(part) != 1:
            return None
        found.extend(part[0])
    return tuple(found)
