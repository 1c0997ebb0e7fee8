"""Compile search-parameter FHIRPath into plain Python closures over the resource's JSON.

Indexing runs on every write, so an expression is parsed and type-checked once
(:func:`compile_path`) and then evaluated as a chain of small closures over dicts and lists.
Every node carries its FHIR type (:class:`Ctx`), known statically from the R4 element tables
(``fhir_server.core.r4``) and, for choice elements, from the JSON key (``valueQuantity``): the
indexer needs it to normalise a token from a CodeableConcept differently from an Identifier.

Supported (what R4 search parameters use; see fhirpath_parse for the grammar): paths, ``|``,
``is``/``as``/``as()``/``ofType()``, ``where(...)`` with ``=``/``!=``/``and``/``resolve() is T``/
``hasExtension()``, ``[n]``, ``first()``, ``exists()``, ``empty()``, ``not()``,
``extension(url)``, ``%resource``. Contained resources are not entered. Anything else raises
:class:`UnsupportedExpression` at compile time; so does an expression that can select nothing on
the type (a misspelt element, ``value.as(Reference)`` where no such choice exists).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir_server.core import r4
from fhir_server.search.fhirpath_chains import Chain, chains_by_focus
from fhir_server.search.fhirpath_needs import Needs, needs
from fhir_server.search.fhirpath_parse import (
    Binary,
    Call,
    Child,
    Expr,
    Index,
    Literal,
    This,
    TypeOp,
    Union,
    UnsupportedExpression,
    Variable,
    parse,
    split_union,
)
from fhir_server.search.fhirpath_steps import (
    child_of_one,
    comparison,
    conjunction,
    exists,
    fast_where,
    negation,
    raise_multiple,
)
from fhir_server.search.fhirpath_types import (
    ANY_RESOURCE,
    BOOLEAN,
    Ctx,
    Fn,
    MultipleItems,
    Node,
    fhir_type,
    is_a,
    is_known_type,
    keys,
    literal_ctx,
    resource_ctx,
    target_type,
    truth,
)

__all__ = ["CompiledPath", "Ctx", "Node", "UnsupportedExpression", "compile_path", "split_union"]


class CompiledPath:
    """A compiled expression: call it on a resource for ``(value, fhir_type)`` pairs, or use
    :meth:`select` / :meth:`evaluate` for typed nodes (composite components need those)."""

    __slots__ = ("_fn", "_root", "chains", "contexts", "expression", "needs", "resource_type")

    def __init__(
        self,
        fn: Fn,
        contexts: frozenset[Ctx],
        expression: str,
        resource_type: str,
        needs: Needs | None = None,
        chains: Mapping[Ctx, tuple[Chain, ...]] | None = None,
    ):
        self._fn = fn
        self._root = resource_ctx(resource_type)
        self.contexts = contexts
        self.expression = expression
        self.resource_type = resource_type
        #: The JSON keys the focus must have for the expression to select anything
        #: (:mod:`fhirpath_needs`); None when unknown.
        self.needs = needs
        #: Per focus type, the expression as plain key paths (:mod:`fhirpath_chains`); None
        #: when it is not one.
        self.chains = chains

    @property
    def output_types(self) -> frozenset[str]:
        """Every FHIR type the expression can yield (``Resource`` for an inline resource)."""
        return frozenset(c.type for c in self.contexts)

    def select(self, resource: dict[str, Any]) -> list[Node]:
        """The nodes the expression selects on ``resource``."""
        try:
            return self._fn([(resource, self._root)], resource)
        except MultipleItems:
            return []

    def evaluate(self, focus: list[Node], resource: dict[str, Any]) -> list[Node]:
        """Evaluate relative to ``focus`` (for a path compiled with :func:`compile_path`'s
        ``focus`` argument), ``resource`` being the root for ``%resource``. An operator given
        several items where FHIRPath wants one (an error in FHIRPath) selects nothing."""
        try:
            return self._fn(focus, resource)
        except MultipleItems:
            return []

    def __call__(self, resource: dict[str, Any]) -> list[tuple[Any, str]]:
        return [(value, ctx.type) for value, ctx in self.select(resource)]

    def __repr__(self) -> str:
        return f"CompiledPath({self.expression!r} on {self.resource_type})"


def compile_path(
    expression: str, resource_type: str, focus: Iterable[Ctx] | None = None
) -> CompiledPath:
    """Compile ``expression`` for resources of ``resource_type``.

    Without ``focus`` the expression is evaluated on the resource (``Patient.name``, or a
    relative ``name``); with it, relative to nodes of those static types (the components of a
    composite parameter, relative to what the composite's own expression selects). Terms rooted
    at another resource type select nothing, as in FHIRPath; an expression that can select
    nothing at all raises UnsupportedExpression.
    """
    if not r4.is_resource_type(resource_type):
        raise UnsupportedExpression(f"{_short(resource_type)} is not an R4 resource type")
    contexts = frozenset(focus) if focus is not None else frozenset({resource_ctx(resource_type)})
    compiler = _Compiler(resource_type)
    ast = parse(expression)
    fn, out = compiler.compile(ast, contexts)
    if not out:
        raise UnsupportedExpression(f"the expression selects nothing on {resource_type}")
    direct = chains_by_focus(ast, contexts)
    return CompiledPath(fn, out, expression, resource_type, needs(ast, contexts), direct)


# --- the compiler ----------------------------------------------------------------------------


def _identity(nodes: list[Node], root: Any) -> list[Node]:
    return nodes


def _nothing(nodes: list[Node], root: Any) -> list[Node]:
    return []


def _short(name: str) -> str:
    """A name from the expression for an error message, never a long user text."""
    return name if len(name) <= 64 else name[:61] + "..."


def _type_argument(call: Call) -> str:
    """The type named by the single argument of ``as(T)``/``ofType(T)``/``is(T)``."""
    if len(call.args) == 1:
        arg = call.args[0]
        if isinstance(arg, Child) and isinstance(arg.base, This):
            return arg.name
        if isinstance(arg, Child) and isinstance(arg.base, Child):  # FHIR.Quantity
            return arg.name
    raise UnsupportedExpression(f"{call.name}() takes one type name")


def _string_argument(call: Call) -> str:
    if len(call.args) == 1 and isinstance(call.args[0], Literal):
        value = call.args[0].value
        if isinstance(value, str):
            return value
    raise UnsupportedExpression(f"{call.name}() takes one string literal")


Compiled = tuple[Fn, frozenset[Ctx]]


class _Compiler:
    """Turns an AST into a closure, tracking the static types each sub-expression can yield."""

    def __init__(self, resource_type: str) -> None:
        self.resource_type = resource_type

    def compile(self, expr: Expr, ctxs: frozenset[Ctx]) -> Compiled:
        if isinstance(expr, This):
            return _identity, ctxs
        if isinstance(expr, Variable):
            return self._variable(expr.name)
        if isinstance(expr, Literal):
            node: Node = (expr.value, literal_ctx(expr.value))
            return (lambda nodes, root: [node]), frozenset({node[1]})
        if isinstance(expr, Child):
            if isinstance(expr.base, This) and expr.name[:1].isupper():
                return self._of_type(_identity, ctxs, expr.name)
            return self._child(*self.compile(expr.base, ctxs), expr.name)
        if isinstance(expr, Index):
            base_fn, base_out = self.compile(expr.base, ctxs)
            i = expr.index
            return (lambda nodes, root: base_fn(nodes, root)[i : i + 1]), base_out
        if isinstance(expr, TypeOp):
            if expr.op == "as":
                return self._of_type(*self.compile(expr.base, ctxs), expr.type_name)
            return self._is(expr.base, ctxs, expr.type_name)
        if isinstance(expr, Call):
            return self._call(expr, ctxs)
        if isinstance(expr, Union):
            return self._union(expr, ctxs)
        return self._binary(expr, ctxs)

    def _variable(self, name: str) -> Compiled:
        if name not in ("resource", "rootResource"):
            raise UnsupportedExpression(f"variable %{_short(name)} is not supported")
        ctx = resource_ctx(self.resource_type)
        return (lambda nodes, root: [(root, ctx)]), frozenset({ctx})

    def _child(self, base_fn: Fn, base_out: frozenset[Ctx], name: str) -> Compiled:
        if not base_out:
            return _nothing, frozenset()
        if ANY_RESOURCE in base_out:
            raise UnsupportedExpression(
                f"cannot navigate to '{_short(name)}' in an inline resource of unknown type"
            )
        table = {ctx: found for ctx in base_out if (found := keys(ctx, name))}
        if not table:
            types = ", ".join(sorted({c.path or c.type for c in base_out}))
            raise UnsupportedExpression(f"'{_short(name)}' is not an element of {types}")
        out = frozenset(child for found in table.values() for _, child in found)
        if len(base_out) == 1:  # every node has the one static type: no lookup per node
            return child_of_one(base_fn, next(iter(table.values()))), out

        def child(nodes: list[Node], root: Any) -> list[Node]:
            result: list[Node] = []
            for value, ctx in base_fn(nodes, root):
                found = table.get(ctx)
                if found is None or not isinstance(value, dict):
                    continue
                for key, child_ctx in found:
                    item = value.get(key)
                    if item is None:
                        continue
                    if isinstance(item, list):
                        result.extend((v, child_ctx) for v in item if v is not None)
                    else:
                        result.append((item, child_ctx))
            return result

        return child, out

    def _of_type(self, base_fn: Fn, base_out: frozenset[Ctx], type_name: str) -> Compiled:
        """``as T`` / ``ofType(T)`` / a path's leading type name: the nodes of type T (or a
        type specialising it: ``as Quantity`` keeps an Age)."""
        wanted = fhir_type(type_name)
        if not is_known_type(wanted):
            raise UnsupportedExpression(f"unknown type '{_short(wanted)}'")
        kept = frozenset(c for c in base_out if c != ANY_RESOURCE and is_a(c.type, wanted))
        dynamic = ANY_RESOURCE in base_out and (
            r4.is_resource_type(wanted) or wanted in ("Resource", "DomainResource")
        )
        if not dynamic and kept == base_out:
            return base_fn, base_out  # keeps every node: nothing to filter
        out = set(kept)
        if dynamic:
            out.add(resource_ctx(wanted) if r4.is_resource_type(wanted) else ANY_RESOURCE)

        def of_type(nodes: list[Node], root: Any) -> list[Node]:
            result: list[Node] = []
            for value, ctx in base_fn(nodes, root):
                if ctx in kept:
                    result.append((value, ctx))
                elif dynamic and ctx == ANY_RESOURCE and isinstance(value, dict):
                    kind = value.get("resourceType")
                    if isinstance(kind, str) and r4.is_resource_type(kind) and is_a(kind, wanted):
                        specific = r4.is_resource_type(wanted)
                        result.append((value, resource_ctx(kind) if specific else ANY_RESOURCE))
            return result

        return of_type, frozenset(out)

    def _is(self, base: Expr, ctxs: frozenset[Ctx], type_name: str) -> Compiled:
        wanted = fhir_type(type_name)
        if not is_known_type(wanted):
            raise UnsupportedExpression(f"unknown type '{_short(wanted)}'")
        if isinstance(base, Call) and base.name == "resolve":
            if base.args:
                raise UnsupportedExpression("resolve() takes no argument")
            ref_fn, _ = self.compile(base.base, ctxs)

            def resolves_to(nodes: list[Node], root: Any) -> list[Node]:
                found = ref_fn(nodes, root)
                if len(found) != 1:
                    return [] if not found else raise_multiple()
                kind = target_type(found[0][0], root)
                return [(kind is not None and is_a(kind, wanted), BOOLEAN)]

            return resolves_to, frozenset({BOOLEAN})
        base_fn, _ = self.compile(base, ctxs)

        def is_type(nodes: list[Node], root: Any) -> list[Node]:
            found = base_fn(nodes, root)
            if len(found) != 1:
                return [] if not found else raise_multiple()
            value, ctx = found[0]
            kind = ctx.type
            if ctx == ANY_RESOURCE and isinstance(value, dict):
                kind = str(value.get("resourceType", ""))
            return [(is_a(kind, wanted), BOOLEAN)]

        return is_type, frozenset({BOOLEAN})

    def _call(self, call: Call, ctxs: frozenset[Ctx]) -> Compiled:
        name = call.name
        if name == "resolve":
            raise UnsupportedExpression("resolve() is supported only as 'resolve() is Type'")
        base_fn, base_out = self.compile(call.base, ctxs)
        if name in ("as", "ofType"):
            return self._of_type(base_fn, base_out, _type_argument(call))
        if name == "is":
            return self._is(call.base, ctxs, _type_argument(call))
        if name == "where" and len(call.args) == 1:
            return self._where(base_fn, base_out, call.args[0])
        if name == "extension":
            return self._extension(base_fn, base_out, _string_argument(call))
        if name == "hasExtension":
            ext_fn, _ = self._extension(base_fn, base_out, _string_argument(call))
            return (lambda nodes, root: [(bool(ext_fn(nodes, root)), BOOLEAN)]), frozenset(
                {BOOLEAN}
            )
        if call.args and not (name == "exists" and len(call.args) == 1):
            raise UnsupportedExpression(f"{_short(name)}() with arguments is not supported")
        if name == "exists":
            if call.args:
                base_fn, base_out = self._where(base_fn, base_out, call.args[0])
            return exists(base_fn, True), frozenset({BOOLEAN})
        if name == "empty":
            return exists(base_fn, False), frozenset({BOOLEAN})
        if name == "first":
            return (lambda nodes, root: base_fn(nodes, root)[:1]), base_out
        if name == "not":
            return negation(base_fn), frozenset({BOOLEAN})
        raise UnsupportedExpression(f"function {_short(name)}() is not supported")

    def _where(self, base_fn: Fn, base_out: frozenset[Ctx], criteria: Expr) -> Compiled:
        test, _ = self.compile(criteria, base_out)
        fast = fast_where(base_fn, base_out, criteria)
        if fast is not None:
            return fast, base_out

        def where(nodes: list[Node], root: Any) -> list[Node]:
            result: list[Node] = []
            for node in base_fn(nodes, root):
                try:
                    keep = truth(test([node], root))
                except MultipleItems:
                    keep = False
                if keep:
                    result.append(node)
            return result

        return where, base_out

    def _extension(self, base_fn: Fn, base_out: frozenset[Ctx], url: str) -> Compiled:
        ext_fn, ext_out = self._child(base_fn, base_out, "extension")

        def extension(nodes: list[Node], root: Any) -> list[Node]:
            return [
                n for n in ext_fn(nodes, root) if isinstance(n[0], dict) and n[0].get("url") == url
            ]

        return extension, ext_out

    def _union(self, union: Union, ctxs: frozenset[Ctx]) -> Compiled:
        parts = [self.compile(term, ctxs) for term in union.terms]
        fns = [fn for fn, out in parts if out]
        out = frozenset(c for _, term_out in parts for c in term_out)

        def union_fn(nodes: list[Node], root: Any) -> list[Node]:
            result: list[Node] = []
            for fn in fns:
                result.extend(fn(nodes, root))
            return result

        return union_fn, out

    def _binary(self, expr: Binary, ctxs: frozenset[Ctx]) -> Compiled:
        left, _ = self.compile(expr.left, ctxs)
        right, _ = self.compile(expr.right, ctxs)
        if expr.op == "and":
            return conjunction(left, right), frozenset({BOOLEAN})
        return comparison(left, right, expr.op == "!="), frozenset({BOOLEAN})
