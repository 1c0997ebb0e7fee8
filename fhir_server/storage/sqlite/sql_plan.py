"""Which rows a search reads first: the most selective test's candidates, or a scan.

SQLite's planner cannot know how many rows a value matches (no statistics on values), and a
wrong guess costs a full scan either way: driving from a rare token is instant while scanning
for it reads every resource; driving from a common one builds and sorts a huge set while a scan
in ``rid`` order finds a page of them at once. So the plan is chosen here: each test with
candidates is probed (counting at most :data:`SELECTIVE` index rows, one index range scan), the
fewest drive the query through a ``CROSS JOIN`` (which fixes the join order), and every other
test is checked per row through its correlated condition. When even the fewest candidates are
many and the query only needs its first rows in ``rid`` order, resources are scanned in that
order instead, and a page stops early.
"""

from __future__ import annotations

import sqlite3

from fhir_server.storage.sqlite.search_sql import CompiledCriteria
from fhir_server.storage.sqlite.sql_fragments import CompiledTest, Sql

#: Candidates up to this many rows drive a query; beyond, a first page scans in ``rid`` order.
SELECTIVE = 5000


def _probe(conn: sqlite3.Connection, candidates: Sql) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM ({candidates.text}) LIMIT ?)",
        (*candidates.params, SELECTIVE),
    ).fetchone()
    return int(row[0])


def _driver(
    conn: sqlite3.Connection, compiled: CompiledCriteria, *, at_most: int | None
) -> CompiledTest | None:
    best: CompiledTest | None = None
    best_size = 0
    for test in compiled.tests:
        if test.candidates is None:
            continue
        size = _probe(conn, test.candidates)
        if best is None or size < best_size:
            best, best_size = test, size
        if size == 0:
            break
    if best is None or (at_most is not None and best_size >= at_most):
        return None
    return best


def plan(conn: sqlite3.Connection, compiled: CompiledCriteria, *, first_rows: bool) -> Sql:
    """``FROM ... WHERE ...`` over ``resource r`` returning exactly the matching resources.

    ``first_rows``: the caller reads a few rows in ``rid`` order (an unsorted page), so a scan
    beats non-selective candidates; otherwise (sort, count) the fewest candidates always drive.
    """
    driver = _driver(conn, compiled, at_most=SELECTIVE if first_rows else None)
    where = compiled.where(without=driver)
    if driver is None or driver.candidates is None:
        return Sql(f"FROM resource r WHERE {where.text}", where.params)
    start = driver.candidates
    return Sql(
        f"FROM (SELECT DISTINCT rid FROM ({start.text})) d "
        f"CROSS JOIN resource r ON r.rid = d.rid WHERE {where.text}",
        (*start.params, *where.params),
    )
