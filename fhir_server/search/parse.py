"""Request parameters -> the query AST (:mod:`fhir_server.search.model`) and the result options.

Rules of http://hl7.org/fhir/R4/search.html: a comma inside one value is OR, repeating a
parameter is AND; the result parameters (``_sort``, ``_count``, ``_include``...) shape the answer
rather than filter it. Choices where R4 leaves room:

* a parameter with an empty value (``name=``) is ignored, and left out of ``applied``;
* ``_count`` above :data:`MAX_COUNT` is lowered to it (``applied`` shows the value used);
* ``_cursor`` (this server's paging token) is passed through and is not in ``applied``: the
  paging links add their own;
* ``_format`` and ``_pretty`` belong to the HTTP layer and are skipped if they get here;
* lenient handling (``Prefer: handling=lenient``) drops unknown and unsupported parameters and
  modifiers (named in ``ignored``); a malformed value of a known parameter is an error anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import Criteria, SearchParamDef, SortKey, Test
from fhir_server.search.parse_terminology import SearchTerminology
from fhir_server.search.parse_tests import Ignorable, Resolver
from fhir_server.search.parse_values import SHOWN, bad_value, shown
from fhir_server.search.registry import SearchRegistry

MAX_COUNT = 1000
_TOTALS = frozenset(("none", "estimate", "accurate"))
_SUMMARIES = frozenset(("true", "text", "data", "count", "false"))
_SINGLE = ("_sort", "_count", "_total", "_summary", "_elements", "_cursor")
_INCLUDES = ("_include", "_revinclude")
_INCLUDE_MODIFIERS = frozenset(("iterate", "recurse"))  # recurse: the STU3 name of iterate
_HTTP_LAYER = frozenset(("_format", "_pretty"))
#: Parameters that shape the result rather than select resources: refused in conditional
#: interactions (and ``_type``, which selects types).
RESULT_PARAMETERS = frozenset((*_SINGLE, *_INCLUDES, "_contained", "_containedType", "_type"))


@dataclass(frozen=True, slots=True)
class Include:
    """``_include`` / ``_revinclude``: follow ``param`` (None: every reference parameter,
    ``*``) of ``source_type`` resources, to ``target_type`` ones only if set. ``source_type`` is
    ``*`` (any type) only for ``_include=*`` in a search over several types."""

    source_type: str
    param: SearchParamDef | None
    target_type: str | None = None
    iterate: bool = False


@dataclass(frozen=True, slots=True)
class ParsedSearch:
    """Everything a search request asks for. ``applied`` holds the parameters used, as
    received (``_count`` as used), for the self link; ``ignored`` the names lenient handling
    dropped."""

    criteria: Criteria
    sort: tuple[SortKey, ...] = ()
    count: int | None = None
    cursor: str | None = None
    total: str = "none"
    summary: str | None = None
    elements: str | None = None
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    applied: tuple[tuple[str, str], ...] = ()
    ignored: tuple[str, ...] = ()


def parse_search(
    registry: SearchRegistry,
    resource_types: tuple[str, ...],
    params: Sequence[tuple[str, str]],
    *,
    lenient: bool = False,
    base_url: str | None = None,
    terminology: SearchTerminology | None = None,
) -> ParsedSearch:
    """Parse a search over ``resource_types`` (one type; several for a compartment ``*``
    search; none for a system search, where only the parameters every type has are known).

    ``base_url``: references to this server given as absolute URLs become ``Type/id``.
    ``terminology``: answers the token modifiers ``:in``, ``:not-in``, ``:above`` and ``:below``
    (without it they are refused as unsupported). Raises InvalidRequest naming the parameter
    for anything it cannot honour.
    """
    return _Parser(registry, resource_types, lenient, base_url, terminology).parse(params)


def parse_conditional(
    registry: SearchRegistry, resource_type: str, query_string: str, base_url: str | None
) -> Criteria:
    """The criteria of a conditional create/update/delete (``If-None-Exist: identifier=x`` or
    ``PUT Patient?identifier=x``), as a search of ``resource_type``. Result parameters
    (``_sort``, ``_count``, ``_include``...) make no sense there and are refused."""
    params = parse_qsl(query_string, keep_blank_values=True)
    for name, _ in params:
        if name.partition(":")[0] in RESULT_PARAMETERS:
            raise InvalidRequest(
                f"Search parameter {shown(name)} shapes search results and cannot be used in "
                "a conditional create, update or delete",
                expression=[name[:SHOWN]],
            )
    return parse_search(registry, (resource_type,), params, base_url=base_url).criteria


class _Parser:
    """One parse: accumulates tests, result options, applied and ignored parameters."""

    def __init__(
        self,
        registry: SearchRegistry,
        types: tuple[str, ...],
        lenient: bool,
        base_url: str | None,
        terminology: SearchTerminology | None = None,
    ) -> None:
        self.registry = registry
        self.types = types
        self.lenient = lenient
        self.resolver = Resolver(registry, types, base_url, terminology)
        self.tests: list[Test] = []
        self.applied: list[tuple[str, str]] = []
        self.ignored: list[str] = []
        self.single: dict[str, str] = {}
        self.includes: list[Include] = []
        self.revincludes: list[Include] = []
        self.selected_types: tuple[str, ...] | None = None

    def parse(self, params: Sequence[tuple[str, str]]) -> ParsedSearch:
        for name, value in params:
            try:
                self._one(name, value)
            except Ignorable:
                if not self.lenient:
                    raise
                self.ignored.append(name[:SHOWN])
        single = self.single
        count = _count(single["_count"]) if "_count" in single else None
        if count is not None:
            self.applied = [(n, str(count) if n == "_count" else v) for n, v in self.applied]
        criteria = Criteria(
            self.selected_types if self.selected_types is not None else self.types,
            tuple(self.tests),
        )
        return ParsedSearch(
            criteria=criteria,
            sort=self._sort(single["_sort"]) if "_sort" in single else (),
            count=count,
            cursor=single.get("_cursor") or None,
            total=_choice("_total", single.get("_total"), _TOTALS) or "none",
            summary=_choice("_summary", single.get("_summary"), _SUMMARIES),
            elements=single.get("_elements") or None,
            includes=tuple(self.includes),
            revincludes=tuple(self.revincludes),
            applied=tuple(self.applied),
            ignored=tuple(self.ignored),
        )

    def _one(self, name: str, value: str) -> None:
        base = name.partition(":")[0].partition(".")[0]
        if base in _HTTP_LAYER:
            return
        if base in _SINGLE:
            if name != base:
                raise bad_value(name, f"{base} takes no modifier")
            if not value:
                return  # empty: ignored
            if base in self.single:
                raise bad_value(name, "may appear only once")
            self.single[base] = value
            if base != "_cursor":
                self.applied.append((name, value))
            return
        if base in _INCLUDES:
            self._include(name, base, value)
            return
        if base == "_type":
            self._type(name, value)
            return
        test = self.resolver.test(name, value)
        if test is not None:
            self.tests.append(test)
            self.applied.append((name, value))

    # --- result parameters ---------------------------------------------------------------------

    def _type(self, name: str, value: str) -> None:
        if name != "_type":
            raise bad_value(name, "_type takes no modifier")
        types = [t for t in value.split(",") if t]
        if not types:
            return
        for t in types:
            if not r4.is_resource_type(t):
                raise bad_value(name, f"{shown(t)} is not a resource type")
        chosen = tuple(dict.fromkeys(types))
        if self.selected_types is not None:  # repeated: AND, so both must allow the type
            chosen = tuple(t for t in chosen if t in self.selected_types)
            if not chosen:
                raise bad_value(name, "the _type parameters have no type in common")
        self.selected_types = chosen
        self.applied.append((name, value))

    def _sort(self, value: str) -> tuple[SortKey, ...]:
        keys: list[SortKey] = []
        for piece in value.split(","):
            if not piece:
                continue
            descending = piece.startswith("-")
            code = piece[1:] if descending else piece
            try:
                param = self.resolver.param("_sort", code)
            except Ignorable:
                raise bad_value(
                    "_sort", f"cannot sort by {shown(code)}: no such parameter"
                ) from None
            if param.type == "composite":
                raise bad_value("_sort", f"cannot sort by the composite parameter {param.code}")
            keys.append(SortKey(param, descending))
        return tuple(keys)

    def _include(self, name: str, base: str, value: str) -> None:
        modifier = name[len(base) + 1 :] if name != base else None
        if modifier is not None and modifier not in _INCLUDE_MODIFIERS:
            raise bad_value(name, f"{base} takes :iterate (or :recurse), not {shown(modifier)}")
        if not value:
            return
        include = self._include_value(name, base, value, iterate=modifier is not None)
        target = self.includes if base == "_include" else self.revincludes
        if include not in target:
            target.append(include)
        self.applied.append((name, value))

    def _include_value(self, name: str, base: str, value: str, *, iterate: bool) -> Include:
        """``*``, ``Type:param``, ``Type:*`` or ``Type:param:TargetType``."""
        if value == "*":
            if base == "_revinclude":
                raise bad_value(name, "name the source type: _revinclude=Type:parameter")
            source = self.types[0] if len(self.types) == 1 else "*"
            return Include(source, None, None, iterate)
        parts = value.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise bad_value(name, "expected Type:parameter or Type:parameter:TargetType")
        source_type, code = parts[0], parts[1]
        if not r4.is_resource_type(source_type):
            raise bad_value(name, f"{shown(source_type)} is not a resource type")
        param = None
        if code != "*":
            param = self.registry.for_type(source_type).get(code)
            if param is None or param.type != "reference":
                raise bad_value(
                    name, f"{shown(code)} is not a reference parameter of {source_type}"
                )
        target_type = parts[2] if len(parts) == 3 else None
        if target_type is not None:
            if not r4.is_resource_type(target_type):
                raise bad_value(name, f"{shown(target_type)} is not a resource type")
            if param is not None and param.targets and target_type not in param.targets:
                raise bad_value(name, f"{target_type} is not a target of {source_type}:{code}")
        return Include(source_type, param, target_type, iterate)


def _count(value: str) -> int:
    if not value.isdigit() or not value.isascii():
        raise bad_value("_count", "expected a whole number of 0 or more")
    return min(int(value), MAX_COUNT)


def _choice(name: str, value: str | None, allowed: frozenset[str]) -> str | None:
    if not value:
        return None
    if value not in allowed:
        raise bad_value(name, f"expected one of {', '.join(sorted(allowed))}")
    return value
