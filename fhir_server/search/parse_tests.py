"""One filtering parameter (name and value, as sent) -> one :data:`Test` of the query AST.

The name carries the structure (search.html#modifiers, #chaining, #has):
``code``, ``code:modifier``, ``ref[:Type].rest`` (a chain, where ``rest`` is again a name, on the
reference's target types) and ``_has:Type:ref:rest`` (a reverse chain). The value carries the
alternatives, split on unescaped commas (OR).

:class:`Ignorable` errors are the ones lenient handling may drop (an unknown or unsupported
parameter or modifier); every other error is the client's mistake on a known parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import (
    ChainTest,
    HasTest,
    ParamTest,
    SearchParamDef,
    SearchValue,
    Test,
)
from fhir_server.search.parse_terminology import (
    SUBSUMPTION_MODIFIERS,
    VALUE_SET_MODIFIERS,
    SearchTerminology,
    terminology_test,
)
from fhir_server.search.parse_values import (
    SHOWN,
    bad_value,
    parse_missing,
    parse_value,
    shown,
    split_escaped,
)
from fhir_server.search.registry import SearchRegistry

#: Parameters of search.html this server does not offer (yet): refused by name.
UNSUPPORTED = frozenset(
    ("_text", "_content", "_query", "_filter", "_list", "_contained", "_containedType")
)
#: How many reference hops a chain (``a.b.c.d``) or nested ``_has`` may make.
MAX_DEPTH = 3

# (parameter type, modifier) accepted (search.html#modifiers, R4); ``missing`` is everywhere,
# reference parameters also take a resource type.
_MODIFIERS = frozenset(
    (
        ("string", "exact"),
        ("string", "contains"),
        ("token", "text"),
        ("token", "not"),
        ("token", "of-type"),
        ("reference", "identifier"),
        ("uri", "above"),
        ("uri", "below"),
    )
)
# Token modifiers that need a terminology service (parse_terminology.py): refused without one.
_NEEDS_TERMINOLOGY = VALUE_SET_MODIFIERS | SUBSUMPTION_MODIFIERS


class Ignorable(InvalidRequest):
    """An unknown or unsupported parameter or modifier: dropped under lenient handling."""


@dataclass(frozen=True, slots=True)
class Resolver:
    """Resolves parameter names against the registry, for a search over ``types``."""

    registry: SearchRegistry
    types: tuple[str, ...]
    base_url: str | None = None
    terminology: SearchTerminology | None = None

    def test(self, name: str, raw: str) -> Test | None:
        """The test of one parameter occurrence; None when its value is empty (ignored)."""
        return self._resolve(name, name, raw, self.types, top=True, depth=0)[0]

    def param(self, name: str, code: str) -> SearchParamDef:
        """The definition of ``code`` on the searched types (for ``_sort``)."""
        return self._defs(name, code, self.types, top=True)[0][0]

    # --- names -------------------------------------------------------------------------------

    def _defs(
        self, name: str, code: str, types: tuple[str, ...], *, top: bool
    ) -> tuple[list[SearchParamDef], tuple[str, ...]]:
        """The definitions of ``code`` on ``types`` and the types that have it. A search over
        all types (or several, at the top) knows only the parameters every type has."""
        within = f" (in {shown(name)})" if name != code else ""
        if code in UNSUPPORTED:
            raise _unsupported(name, code, within)
        if top and len(types) != 1:
            common = self.registry.common().get(code)
            found, having = ([common], types) if common is not None else ([], ())
        else:
            pairs = [(t, self.registry.for_type(t).get(code)) for t in types]
            found = [d for _, d in pairs if d is not None]
            having = tuple(t for t, d in pairs if d is not None)
        if not found:
            where = " or ".join(types[:3]) + (" …" if len(types) > 3 else "")
            scope = f" on {where}" if types and where else " for a search over all types"
            raise Ignorable(
                f"Unknown search parameter {shown(code)}{scope}{within}",
                expression=[name[:SHOWN]],
            )
        if len({d.type for d in found}) > 1:
            raise bad_value(
                name, f"{code} has different types on {', '.join(having[:5])}; name one type"
            )
        first = found[0]
        if first.type == "special" or (first.expression is None and first.code != "_id"):
            raise _unsupported(name, code, within)
        return found, having

    def _resolve(
        self, name: str, key: str, raw: str, types: tuple[str, ...], *, top: bool, depth: int
    ) -> tuple[Test | None, tuple[str, ...]]:
        """The test for ``key`` (the part of ``name`` still to read) over ``types``, and the
        types the test can apply to."""
        if depth > MAX_DEPTH:
            raise bad_value(name, f"chains and _has may nest {MAX_DEPTH} levels deep at most")
        if key.startswith("_has:") or key == "_has":
            return self._has(name, key, raw, types, depth)
        head, dot, rest = key.partition(".")
        code, _, modifier_text = head.partition(":")
        modifier = modifier_text or None
        defs, having = self._defs(name, code, types, top=top)
        param = defs[0]
        if dot:
            return self._chain(name, param, defs, modifier, rest, raw, depth), having
        return self._leaf(name, param, modifier, raw), having

    def _chain(
        self,
        name: str,
        param: SearchParamDef,
        defs: list[SearchParamDef],
        modifier: str | None,
        rest: str,
        raw: str,
        depth: int,
    ) -> Test | None:
        if param.type != "reference":
            raise bad_value(
                name, f"{param.code} is a {param.type} parameter: only references chain"
            )
        if not rest:
            raise bad_value(name, "a chain needs a parameter after the '.'")
        if modifier is not None:
            self._check_target(name, param, modifier)
            targets: tuple[str, ...] = (modifier,)
        else:
            union = {t for d in defs for t in d.targets}
            targets = tuple(sorted(union or r4.resource_types()))
        test, used = self._resolve(name, rest, raw, targets, top=False, depth=depth + 1)
        if test is None:
            return None
        return ChainTest(param, used, test)

    def _has(
        self, name: str, key: str, raw: str, types: tuple[str, ...], depth: int
    ) -> tuple[Test | None, tuple[str, ...]]:
        """``_has:Source:ref:rest``: ``ref`` of Source must be able to point at ``types``."""
        parts = key.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise bad_value(name, "_has takes _has:Type:parameter:parameter")
        _, source_type, code, rest = parts
        if not types:
            raise bad_value(name, "_has needs a resource type to search (not a system search)")
        if not r4.is_resource_type(source_type):
            raise bad_value(name, f"{shown(source_type)} is not a resource type")
        param = self.registry.for_type(source_type).get(code)
        if param is None or param.type != "reference":
            raise bad_value(name, f"{shown(code)} is not a reference parameter of {source_type}")
        pointed = tuple(t for t in types if not param.targets or t in param.targets)
        if not pointed:
            raise bad_value(name, f"{source_type}.{code} cannot refer to {' or '.join(types[:3])}")
        test, _ = self._resolve(name, rest, raw, (source_type,), top=False, depth=depth + 1)
        if test is None:
            return None, pointed
        return HasTest(source_type, param, test), pointed

    def _check_target(self, name: str, param: SearchParamDef, type_name: str) -> None:
        if not r4.is_resource_type(type_name):
            raise bad_value(
                name, f"{shown(type_name)} is not a modifier of {param.code} nor a resource type"
            )
        if param.targets and type_name not in param.targets:
            raise bad_value(name, f"{type_name} is not a target of {param.code}")

    # --- the parameter itself ----------------------------------------------------------------

    def _leaf(
        self, name: str, param: SearchParamDef, modifier: str | None, raw: str
    ) -> ParamTest | None:
        if modifier == "missing":
            if param.code == "_id":
                raise bad_value(name, "_id takes no :missing (every resource has an id)")
            return ParamTest(param, "missing", (), missing=parse_missing(raw, name))
        self._check_modifier(name, param, modifier)
        pieces = [p for p in split_escaped(raw, ",") if p]
        if not pieces:
            return None  # an empty value: the parameter is ignored
        if param.type == "token" and modifier in _NEEDS_TERMINOLOGY:
            assert self.terminology is not None
            return terminology_test(self.terminology, name, param, modifier, pieces)
        values: list[SearchValue] = []
        for piece in pieces:
            value = parse_value(param, modifier, piece, name, self.base_url)
            if value not in values:
                values.append(value)
        return ParamTest(param, modifier, tuple(values))

    def _check_modifier(self, name: str, param: SearchParamDef, modifier: str | None) -> None:
        if modifier is None:
            return
        if param.code == "_id":
            if modifier != "not":
                raise bad_value(name, f"_id takes no :{shown(modifier)} modifier (only :not)")
            return
        if param.type == "token" and modifier in _NEEDS_TERMINOLOGY:
            if self.terminology is not None:
                return
            raise Ignorable(
                f"Search parameter {shown(name)}: the :{modifier} modifier needs terminology "
                "services and is not supported yet",
                expression=[name[:SHOWN]],
            )
        if (param.type, modifier) in _MODIFIERS:
            return
        if param.type == "reference":
            self._check_target(name, param, modifier)
            return
        allowed = sorted({m for t, m in _MODIFIERS if t == param.type} | {"missing"})
        raise bad_value(
            name,
            f"{param.type} parameter {param.code} takes no :{shown(modifier)} modifier "
            f"(allowed: {', '.join(':' + m for m in allowed)})",
        )


def _unsupported(name: str, code: str, within: str) -> Ignorable:
    return Ignorable(
        f"Search parameter {shown(code)} is not supported by this server{within}",
        expression=[name[:SHOWN]],
    )
