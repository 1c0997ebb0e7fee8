"""Compile search :class:`~fhir_server.search.model.Criteria` to SQLite conditions.

Every test compiles to two things (:class:`CompiledTest`): a **condition** on a row of
``resource`` (a correlated ``EXISTS`` over an index table, answered through its
``(rid, pid, grp)`` index), and, for tests only resources with matching index rows can pass, the
**candidates**: a ``SELECT rid`` running as index range scans. sql_plan.py lets the most selective
candidates drive a query and checks the other tests per row, so neither a rare value (no table
scan) nor a common one (no huge intermediate set) is slow. Parameters are resolved to ``pid``
keys per resource type at compile time: a test on two types looks at both types' keys, a search
across all types at every key of that code. Semantics: docs/search.md.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from fhir_server.search.comparisons import (
    check_searchable,
    composite_value,
    id_comparison,
    missing_wanted,
)
from fhir_server.search.model import (
    ID_PARAM,
    ChainTest,
    CompartmentTest,
    CompositeValue,
    Criteria,
    HasTest,
    ParamTest,
    SearchParamDef,
    Test,
)
from fhir_server.storage.sqlite import search_joins
from fhir_server.storage.sqlite.index_tables import TABLE_OF_TYPE, component_code
from fhir_server.storage.sqlite.search_templates import (
    Shape,
    Template,
    Templates,
    shape_of,
    values_of,
    with_placeholders,
)
from fhir_server.storage.sqlite.search_values import value_terms, values_terms
from fhir_server.storage.sqlite.sql_fragments import (
    NO_ROWS,
    CompiledTest,
    Sql,
    all_of,
    any_of,
    in_list,
    negate,
    union,
)

#: (resource types, code) -> the pids of that code for those types (all types when empty).
PidLookup = Callable[[tuple[str, ...], str], list[int]]


@dataclass(frozen=True, slots=True)
class CompiledCriteria:
    """``base``: current resources of the wanted types; ``tests``: one per criteria test."""

    base: Sql
    tests: tuple[CompiledTest, ...]

    def where(self, without: CompiledTest | None = None) -> Sql:
        """Every condition, except that of the test driving the query (already satisfied)."""
        return all_of([self.base, *(t.condition for t in self.tests if t is not without)])


def _bare(name: str) -> str:
    return name


class SearchCompiler:
    """One compilation (one query): numbers table aliases and resolves parameter keys.

    ``now`` (microseconds since the epoch) anchors the ``ap`` prefix on dates.
    """

    def __init__(self, pids: PidLookup, now: int, templates: Templates | None = None) -> None:
        """``templates``: compilations of plain token searches to reuse (search_templates.py)."""
        self._pids = pids
        self._now = now
        self._aliases = itertools.count(1)
        self._numbered = 0
        self._templates = templates

    def alias(self, stem: str) -> str:
        self._numbered += 1
        return f"{stem}{next(self._aliases)}"

    def pids(self, types: tuple[str, ...], code: str) -> list[int]:
        return self._pids(types, code)

    def compile(self, criteria: Criteria, alias: str = "r") -> CompiledCriteria:
        """Current, non-deleted resources of ``criteria.types`` satisfying every test."""
        if self._templates is not None and alias == "r" and self._numbered == 0:
            shape = shape_of(criteria, self.pids)
            if shape is not None:
                return self._from_template(shape, criteria)
        return self._compile(criteria, alias)

    def _from_template(self, shape: Shape, criteria: Criteria) -> CompiledCriteria:
        assert self._templates is not None
        template = self._templates.get(shape)
        if template is None:
            fresh = SearchCompiler(self._pids, self._now)
            compiled = fresh._compile(with_placeholders(criteria), "r")
            template = Template(compiled.base, compiled.tests, fresh._numbered)
            self._templates.keep(shape, template)
        for _ in range(template.aliases):  # later aliases of this query stay distinct
            self.alias("i")
        base, tests = template.fill(values_of(criteria))
        return CompiledCriteria(base, tests)

    def _compile(self, criteria: Criteria, alias: str) -> CompiledCriteria:
        base = [Sql(f"{alias}.deleted = 0")]
        if criteria.types:
            base.append(in_list(f"{alias}.type", criteria.types))
        tests = tuple(self.test(test, alias, criteria.types) for test in criteria.tests)
        return CompiledCriteria(all_of(base), tests)

    def test(self, test: Test, alias: str, types: tuple[str, ...]) -> CompiledTest:
        match test:
            case ParamTest():
                return self._param(test, alias, types)
            case ChainTest():
                return search_joins.chain(self, test, alias, types)
            case HasTest():
                return search_joins.has(self, test, alias)
            case CompartmentTest():
                return search_joins.compartment(self, test, alias)

    # --- parameters ------------------------------------------------------------------------

    def _param(self, test: ParamTest, alias: str, types: tuple[str, ...]) -> CompiledTest:
        if test.param.code == ID_PARAM:
            return _id_test(test, alias, types)
        check_searchable(test)
        if test.modifier == "missing" or test.missing is not None:
            return self._missing(test, alias, types)
        if test.param.type == "composite":
            exists, candidates = self._composite(test, alias, types)
        else:
            exists, candidates = self._rows(test, alias, types)
        if test.modifier == "not":
            return CompiledTest(negate(exists))
        return CompiledTest(exists, candidates)

    def _rows(self, test: ParamTest, alias: str, types: tuple[str, ...]) -> tuple[Sql, Sql]:
        """EXISTS a matching index row of ``alias``; ``SELECT rid`` of all matching rows."""
        table = TABLE_OF_TYPE[test.param.type]
        pids = self.pids(types, test.param.code)
        row = self.alias("i")
        correlated = values_terms(
            test.param.type, test.modifier, test.values, lambda name: f"{row}.{name}", self._now
        )
        if not pids or not correlated:
            return Sql("0"), NO_ROWS
        where = all_of([Sql(f"{row}.rid = {alias}.rid"), in_list(f"{row}.pid", pids)])
        where = all_of([where, any_of(correlated)])
        exists = Sql(
            f"EXISTS (SELECT 1 FROM {table} {row} INDEXED BY {table}_rid WHERE {where.text})",
            where.params,
        )
        scans = [  # one index range scan per alternative
            all_of([in_list("pid", pids), term])
            for term in values_terms(test.param.type, test.modifier, test.values, _bare, self._now)
        ]
        return exists, union(
            [Sql(f"SELECT rid FROM {table} WHERE {s.text}", s.params) for s in scans]
        )

    def _missing(self, test: ParamTest, alias: str, types: tuple[str, ...]) -> CompiledTest:
        """``:missing``: whether the resource has any index row of the parameter."""
        missing = missing_wanted(test)
        param = test.param
        if param.type == "composite":
            keys = [
                (TABLE_OF_TYPE[c.param.type], component_code(param.code, i))
                for i, c in enumerate(param.components)
            ]
        else:
            keys = [(TABLE_OF_TYPE[param.type], param.code)]
        exists: list[Sql] = []
        selects: list[Sql] = []
        for table, code in keys:
            pids = self.pids(types, code)
            if not pids:
                continue
            row = self.alias("i")
            exists.append(
                Sql(
                    f"EXISTS (SELECT 1 FROM {table} {row} INDEXED BY {table}_rid "
                    f"WHERE {row}.rid = {alias}.rid "
                    f"AND {in_list(f'{row}.pid', pids).text})",
                    tuple(pids),
                )
            )
            selects.append(
                Sql(f"SELECT rid FROM {table} WHERE {in_list('pid', pids).text}", tuple(pids))
            )
        present = any_of(exists)
        if missing:
            return CompiledTest(negate(present))
        return CompiledTest(present, union(selects))

    def _composite(self, test: ParamTest, alias: str, types: tuple[str, ...]) -> tuple[Sql, Sql]:
        """One composite element (same rid and grp) matching every part of some value."""
        exists: list[Sql] = []
        selects: list[Sql] = []
        for given in test.values:
            value = composite_value(test, given)
            joined = self._composite_join(test.param, value, types, correlated=False)
            if joined is None:
                continue
            first, source = joined
            selects.append(Sql(f"SELECT {first}.rid AS rid {source.text}", source.params))
            first, source = (
                self._composite_join(test.param, value, types, correlated=True) or joined
            )
            exists.append(
                Sql(f"EXISTS (SELECT 1 {source.text} AND {first}.rid = {alias}.rid)", source.params)
            )
        return any_of(exists), union(selects)

    def _composite_join(
        self,
        param: SearchParamDef,
        value: CompositeValue,
        types: tuple[str, ...],
        *,
        correlated: bool,
    ) -> tuple[str, Sql] | None:
        """``FROM ... WHERE ...`` joining the component rows of one element, and the alias of
        the first component; None when a component was never indexed (nothing can match).
        ``correlated``: the first component is looked up by resource, not by value."""
        joins: list[str] = []
        join_params: list[object] = []
        conditions: list[Sql] = []
        first = ""
        for i, (component, part) in enumerate(zip(param.components, value.parts, strict=True)):
            pids = self.pids(types, component_code(param.code, i))
            if not pids:
                return None
            row = self.alias("c")
            table = TABLE_OF_TYPE[component.param.type]
            in_pids = in_list(f"{row}.pid", pids)
            if not first:
                first = row
                joins.append(f"{table} {row}" + (f" INDEXED BY {table}_rid" if correlated else ""))
                conditions.append(in_pids)
            else:
                joins.append(
                    f"JOIN {table} {row} INDEXED BY {table}_rid ON {row}.rid = {first}.rid "
                    f"AND {row}.grp = {first}.grp AND {in_pids.text}"
                )
                join_params.extend(in_pids.params)

            def col(name: str, row: str = row) -> str:
                return f"{row}.{name}"

            conditions.append(any_of(value_terms(component.param.type, None, part, col, self._now)))
        where = all_of(conditions)
        return first, Sql(
            f"FROM {' '.join(joins)} WHERE {where.text}", (*join_params, *where.params)
        )


def _id_test(test: ParamTest, alias: str, types: tuple[str, ...]) -> CompiledTest:
    """``_id`` compares the resource id itself (every resource has one)."""
    wanted = id_comparison(test)
    if wanted.constant is not None:
        return CompiledTest(Sql("1" if wanted.constant else "0"))
    found = in_list(f"{alias}.id", wanted.ids)
    if wanted.negated:
        return CompiledTest(negate(found))
    if not types:  # ids alone are not indexed: let the other tests (or a scan) drive
        return CompiledTest(found)
    lookup = all_of([in_list("type", types), in_list("id", wanted.ids)])
    return CompiledTest(found, Sql(f"SELECT rid FROM resource WHERE {lookup.text}", lookup.params))
