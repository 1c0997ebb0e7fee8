"""SQL fragments with their bound parameters, and the compiled form of one search test.

Search compiles to text plus parameters, never to interpolated values; these small helpers keep
the two in step when fragments are combined.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Sql:
    """A fragment of SQL and its bound parameters, in order."""

    text: str
    params: tuple[Any, ...] = ()


#: Candidates that match nothing (keeps the ``rid`` column name of every candidate query).
NO_ROWS = Sql("SELECT NULL AS rid WHERE 0")


@dataclass(frozen=True, slots=True)
class CompiledTest:
    """A test as a condition on the outer ``resource`` row and, when only resources having
    matching index rows can pass it, ``SELECT rid`` of those rows (a superset is fine) that
    can drive the query instead of a scan."""

    condition: Sql
    candidates: Sql | None = None


def params_of(parts: Sequence[Sql]) -> tuple[Any, ...]:
    return tuple(x for part in parts for x in part.params)


def all_of(parts: Sequence[Sql]) -> Sql:
    if not parts:
        return Sql("1")
    return Sql(" AND ".join(f"({p.text})" for p in parts), params_of(parts))


def any_of(parts: Sequence[Sql]) -> Sql:
    if not parts:
        return Sql("0")
    return Sql(" OR ".join(f"({p.text})" for p in parts), params_of(parts))


def negate(part: Sql) -> Sql:
    return Sql(f"NOT ({part.text})", part.params)


def in_list(column: str, values: Sequence[object]) -> Sql:
    if not values:
        return Sql("0")
    return Sql(f"{column} IN ({', '.join('?' * len(values))})", tuple(values))


def union(selects: Sequence[Sql]) -> Sql:
    """``UNION ALL`` of ``SELECT rid`` queries (duplicates are removed where they are used)."""
    if not selects:
        return NO_ROWS
    return Sql(" UNION ALL ".join(s.text for s in selects), params_of(selects))
