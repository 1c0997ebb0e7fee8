"""Sorted, keyset-paged search results of the SQLite backend.

A page is read in two steps: the ``rid`` keys and sort values of ``count + 1`` rows after (or,
for a previous page, before) the cursor's row, then the versions of those rows. Positions are
compared on the full ordering tuple ``(value missing?, value, ...) + rid`` so a page is never
shifted by rows created or deleted meanwhile, and OFFSET is never used. Each sort value is a
correlated aggregate over the parameter's index rows: the lowest value ascending, the highest
descending; a resource without one sorts last either way (docs/search.md).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fhir_server.core.errors import FeatureNotSupported
from fhir_server.search.model import ID_PARAM, Criteria, SortKey
from fhir_server.storage.cursors import KeysetPosition, SortValue, assemble_page, page_start
from fhir_server.storage.port import Page, ResourceVersion, SearchQuery
from fhir_server.storage.sqlite.rows import version_from_row
from fhir_server.storage.sqlite.search_sql import SearchCompiler
from fhir_server.storage.sqlite.sql_fragments import Sql
from fhir_server.storage.sqlite.sql_plan import plan

#: Per parameter type: index table, value sorted ascending (lowest first), descending (highest).
_SORT_VALUES: dict[str, tuple[str, str, str]] = {
    "date": ("idx_date", "low", "high"),
    "number": ("idx_number", "value", "value"),
    "quantity": ("idx_quantity", "low", "high"),
    "string": ("idx_string", "normalized", "normalized"),
    "token": ("idx_token", "code", "code"),
    "reference": (
        "idx_reference",
        "target_type || '/' || target_id",
        "target_type || '/' || target_id",
    ),
    "uri": ("idx_uri", "uri", "uri"),
}

_VERSION_COLUMNS = "r.rid, r.type, r.id, h.version, h.last_updated, h.method, h.body"


@dataclass(frozen=True, slots=True)
class _Column:
    """One component of the ordering: an SQL expression and its direction."""

    expr: str
    descending: bool


def sort_value(compiler: SearchCompiler, key: SortKey, types: tuple[str, ...]) -> Sql:
    """The per-resource value ``key`` sorts on, as an expression over ``resource r``."""
    if key.param.code == ID_PARAM:
        return Sql("r.id")
    spec = _SORT_VALUES.get(key.param.type)
    if spec is None:
        raise FeatureNotSupported(
            f"Sorting by the {key.param.type} parameter '{key.param.code}' is not supported",
            expression=[f"_sort={key.param.code}"],
        )
    table, lowest, highest = spec
    pids = compiler.pids(types, key.param.code)
    if not pids:
        return Sql("NULL")
    aggregate = f"max({highest})" if key.descending else f"min({lowest})"
    marks = ", ".join("?" * len(pids))
    return Sql(
        f"(SELECT {aggregate} FROM {table} INDEXED BY {table}_rid "
        f"WHERE rid = r.rid AND pid IN ({marks}))",
        tuple(pids),
    )


class _PageReader:
    """Reads the rows of one query, sorted, around keyset positions.

    With a sort, the matching rows and their sort values are computed once per statement
    (a materialized CTE); without, rows come straight from the plan in ``rid`` order.
    """

    def __init__(self, conn: sqlite3.Connection, compiler: SearchCompiler, query: SearchQuery):
        self._conn = conn
        values = [sort_value(compiler, key, query.criteria.types) for key in query.sort]
        source = plan(conn, compiler.compile(query.criteria), first_rows=not values)
        self._width = len(values)
        self._columns: list[_Column] = []
        if values:
            selected = "".join(f", {v.text} AS s{i}" for i, v in enumerate(values))
            self._with = Sql(
                f"WITH m AS MATERIALIZED (SELECT r.rid AS rid{selected} {source.text}) ",
                (*(p for v in values for p in v.params), *source.params),
            )
            self._output, self._from = "*", Sql("FROM m WHERE")
            for i, key in enumerate(query.sort):
                self._columns += [
                    _Column(f"(s{i} IS NULL)", False),
                    _Column(f"s{i}", key.descending),
                ]
            self._columns.append(_Column("rid", False))
        else:
            self._with, self._output = Sql(""), "r.rid"
            self._from = Sql(f"{source.text} AND", source.params)
            self._columns = [_Column("r.rid", False)]

    def _beyond(self, position: KeysetPosition | None, backward: bool) -> Sql:
        """``FROM ... WHERE`` the rows after ``position`` in the reading order."""
        keyset = _after(self._columns, position, backward)
        return Sql(f"{self._from.text} {keyset.text}", (*self._from.params, *keyset.params))

    def rows(
        self,
        position: KeysetPosition | None,
        backward: bool,
        limit: int,
        probe: KeysetPosition | None = None,
    ) -> tuple[list[tuple[Any, ...]], bool]:
        """Up to ``limit`` (rid, sort values...) rows after ``position`` in reading order, and
        whether any row lies beyond ``probe`` (in its own direction), in the same statement."""
        rows_from = self._beyond(position, backward)
        order = ", ".join(
            f"{c.expr} {'DESC' if c.descending != backward else 'ASC'}" for c in self._columns
        )
        check = Sql(", 0")
        if probe is not None:
            other = self._beyond(probe, probe.backward)
            check = Sql(f", EXISTS (SELECT 1 {other.text})", other.params)
        sql = (
            f"{self._with.text}SELECT {self._output}{check.text} {rows_from.text} "
            f"ORDER BY {order} LIMIT ?"
        )
        params = (*self._with.params, *check.params, *rows_from.params, limit)
        rows = [tuple(row) for row in self._conn.execute(sql, params).fetchall()]
        if rows or probe is None:
            return [row[:-1] for row in rows], bool(rows and rows[0][-1])
        other = self._beyond(probe, probe.backward)
        sql = f"{self._with.text}SELECT EXISTS (SELECT 1 {other.text})"
        found = self._conn.execute(sql, (*self._with.params, *other.params)).fetchone()[0]
        return [], bool(found)

    def position(self, row: tuple[Any, ...], backward: bool) -> KeysetPosition:
        values: tuple[SortValue, ...] = tuple(row[1 : 1 + self._width])
        return KeysetPosition(values, int(row[0]), backward)


def _after(columns: Sequence[_Column], position: KeysetPosition | None, backward: bool) -> Sql:
    """Rows strictly after ``position`` in the reading order (or at it, if inclusive), on the
    ordering tuple ``(missing?, value, ..., rid)``: a lexicographic OR of ANDs."""
    if position is None:
        return Sql("1")
    keys: list[Any] = []
    for value in position.values:
        keys += [int(value is None), value]
    keys.append(position.key)
    disjuncts: list[str] = []
    params: list[Any] = []
    equal: list[tuple[str, tuple[Any, ...]]] = []
    for i, (column, key) in enumerate(zip(columns, keys, strict=True)):
        if key is not None:
            operator = "<" if column.descending != backward else ">"
            if i == len(columns) - 1 and position.inclusive:
                operator += "="
            disjuncts.append(" AND ".join([*(e for e, _ in equal), f"{column.expr} {operator} ?"]))
            params += [p for _, ps in equal for p in ps] + [key]
            equal.append((f"{column.expr} = ?", (key,)))
        else:  # a missing value: nothing sorts after it within the "missing" group
            equal.append((f"{column.expr} IS NULL", ()))
    text = " OR ".join(f"({d})" for d in disjuncts) or "0"
    return Sql(f"({text})", tuple(params))


def _versions(conn: sqlite3.Connection, rids: Sequence[int]) -> list[ResourceVersion]:
    """The current versions of ``rids``, in that order."""
    if not rids:
        return []
    marks = ", ".join("?" * len(rids))
    rows = conn.execute(
        f"SELECT {_VERSION_COLUMNS} FROM resource r JOIN history h ON h.seq = r.seq "
        f"WHERE r.rid IN ({marks})",
        tuple(rids),
    ).fetchall()
    by_rid = {row[0]: version_from_row(*row[1:]) for row in rows}
    return [by_rid[rid] for rid in rids if rid in by_rid]


def search_page(conn: sqlite3.Connection, compiler: SearchCompiler, query: SearchQuery) -> Page:
    """One page of ``query`` with the cursors of the pages before and after it, if any."""
    start = page_start(query.cursor, query.sort)
    if query.count <= 0:
        return Page([])
    reader = _PageReader(conn, compiler, query)
    rows, more_behind = reader.rows(start.position, start.backward, query.count + 1, start.behind)
    return assemble_page(
        start,
        rows,
        query.count,
        more_behind,
        reader.position,
        lambda page: _versions(conn, [int(row[0]) for row in page]),
    )


def count(conn: sqlite3.Connection, compiler: SearchCompiler, criteria: Criteria) -> int:
    source = plan(conn, compiler.compile(criteria), first_rows=False)
    row = conn.execute(f"SELECT count(*) {source.text}", source.params).fetchone()
    return int(row[0])


def first_matches(
    conn: sqlite3.Connection, compiler: SearchCompiler, criteria: Criteria, limit: int
) -> list[ResourceVersion]:
    """Up to ``limit`` current resources matching ``criteria`` (conditional-write checks)."""
    source = plan(conn, compiler.compile(criteria), first_rows=True)
    rows = conn.execute(
        f"SELECT r.rid {source.text} ORDER BY r.rid LIMIT ?", (*source.params, limit)
    ).fetchall()
    return _versions(conn, [int(row[0]) for row in rows])
