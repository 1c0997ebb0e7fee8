"""Sorted, keyset-paged search results of the MongoDB backend (never skip/limit offsets).

Without ``_sort`` a page is a ``find`` in ``rid`` order (creation order, the tie-break key):
``rid`` greater (or, for a previous page, smaller) than the cursor's, ``limit count + 1``.

With ``_sort`` it is an aggregation: the filter, then ``$addFields`` computing per sort key the
value ``v<n>`` (from the stored ``ixo`` sort values: the lowest ascending, the highest
descending; ``id`` for ``_id``; the document's ``lastUpdated`` for ``_lastUpdated`` without an
index entry) and a missing-flag ``m<n>`` (1 when the resource has no value), then the keyset
condition on the ordering tuple ``(m0, v0, m1, v1, ..., rid)``, ``$sort`` on that tuple (so
resources without a value come last either way) and ``$limit``. Per-parameter sort indexes would
take one MongoDB index per sortable parameter (hundreds, past the 64 a collection allows), so the
sort runs on the matching documents (``allowDiskUse``), as the SQLite backend's materialised
sort does.

Positions are compared on the full ordering tuple, so a page is never shifted by documents
created or deleted meanwhile; cursors are those of :mod:`fhir_server.storage.cursors`, the
same as SQLite's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from fhir_server.core.errors import FeatureNotSupported
from fhir_server.search.model import ID_PARAM, SortKey
from fhir_server.storage.cursors import KeysetPosition, SortValue, assemble_page, page_start
from fhir_server.storage.mongo.documents import VERSION_FIELDS, version_from_doc
from fhir_server.storage.mongo.search_filters import LAST_UPDATED, NEVER, Filter, all_of
from fhir_server.storage.mongo.search_index import SORT
from fhir_server.storage.port import Page

#: Parameter types a search can sort by (as the SQLite backend).
SORTABLE = frozenset({"date", "number", "quantity", "string", "token", "reference", "uri"})


@dataclass(frozen=True, slots=True)
class Column:
    """One component of the ordering: a (computed) field and its direction."""

    field: str
    descending: bool


def sort_value(key: SortKey) -> Any:
    """The aggregation expression of the value ``key`` sorts a document by (null: none)."""
    code = key.param.code
    if code == ID_PARAM:
        return "$id"
    if key.param.type not in SORTABLE:
        raise FeatureNotSupported(
            f"Sorting by the {key.param.type} parameter '{code}' is not supported",
            expression=[f"_sort={code}"],
        )
    stored = {
        "$let": {
            "vars": {
                "e": {
                    "$arrayElemAt": [
                        {
                            "$filter": {
                                "input": {"$ifNull": [f"${SORT}", []]},
                                "as": "o",
                                "cond": {"$eq": ["$$o.p", code]},
                            }
                        },
                        0,
                    ]
                }
            },
            "in": "$$e.d" if key.descending else "$$e.a",
        }
    }
    if code == LAST_UPDATED:
        return {"$ifNull": [stored, "$lastUpdated"]}
    return {"$ifNull": [stored, None]}


def columns(sort: Sequence[SortKey]) -> list[Column]:
    out: list[Column] = []
    for i, key in enumerate(sort):
        out += [Column(f"m{i}", False), Column(f"v{i}", key.descending)]
    return [*out, Column("rid", False)]


def after(columns: Sequence[Column], position: KeysetPosition | None, backward: bool) -> Filter:
    """Documents strictly after ``position`` in the reading order (or at it, if inclusive), on
    the ordering tuple ``(m0, v0, ..., rid)``: a lexicographic OR of ANDs."""
    if position is None:
        return {}
    keys: list[Any] = []
    for value in position.values:
        keys += [int(value is None), value]
    keys.append(position.key)
    disjuncts: list[Filter] = []
    equal: Filter = {}
    for i, (column, key) in enumerate(zip(columns, keys, strict=True)):
        if key is not None:
            operator = "$lt" if column.descending != backward else "$gt"
            if i == len(columns) - 1 and position.inclusive:
                operator += "e"
            disjuncts.append({**equal, column.field: {operator: key}})
            equal = {**equal, column.field: key}
        else:  # a missing value: nothing sorts after it within the "missing" group
            equal = {**equal, column.field: None}
    if not disjuncts:
        return NEVER
    return disjuncts[0] if len(disjuncts) == 1 else {"$or": disjuncts}


class PageReader:
    """Reads the documents of one filter, sorted, around keyset positions."""

    def __init__(
        self,
        resources: AsyncCollection[dict[str, Any]],
        where: Filter,
        sort: Sequence[SortKey],
        session: AsyncClientSession | None,
    ) -> None:
        self._resources = resources
        self._where = where
        self._sort = tuple(sort)
        self._columns = columns(sort)
        self._session = session
        self._values = {f"v{i}": sort_value(key) for i, key in enumerate(sort)}

    def _order(self, backward: bool) -> dict[str, int]:
        return {c.field: -1 if c.descending != backward else 1 for c in self._columns}

    async def rows(
        self, position: KeysetPosition | None, backward: bool, limit: int
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` documents after ``position`` in reading order."""
        beyond = after(self._columns, position, backward)
        if not self._sort:
            where = all_of([self._where, beyond])
            if where == NEVER:
                return []
            page = self._resources.find(
                where,
                {**VERSION_FIELDS, "rid": 1},
                sort=list(self._order(backward).items()),
                limit=limit,
                session=self._session,
            )
            return [doc async for doc in page]
        flags = {
            f"m{i}": {"$cond": [{"$eq": [f"$v{i}", None]}, 1, 0]} for i in range(len(self._sort))
        }
        pipeline: list[dict[str, Any]] = [
            {"$match": self._where},
            {"$addFields": self._values},
            {"$addFields": flags},
        ]
        if beyond:
            pipeline.append({"$match": beyond})
        pipeline += [
            {"$sort": self._order(backward)},
            {"$limit": limit},
            {"$project": {**VERSION_FIELDS, "rid": 1, **dict.fromkeys(self._values, 1)}},
        ]
        cursor = await self._resources.aggregate(pipeline, session=self._session, allowDiskUse=True)
        return [doc async for doc in cursor]

    async def any_beyond(self, position: KeysetPosition) -> bool:
        """Whether any document lies after ``position`` in its own direction."""
        return bool(await self.rows(position, position.backward, 1))

    def position(self, row: dict[str, Any], backward: bool) -> KeysetPosition:
        values: tuple[SortValue, ...] = tuple(row.get(f"v{i}") for i in range(len(self._sort)))
        return KeysetPosition(values, int(row["rid"]), backward)


async def search_page(
    resources: AsyncCollection[dict[str, Any]],
    where: Filter,
    sort: Sequence[SortKey],
    count: int,
    cursor: str | None,
    session: AsyncClientSession | None = None,
) -> Page:
    """One page with the cursors of the pages before and after it, if any."""
    start = page_start(cursor, sort)
    if count <= 0:
        return Page([])
    reader = PageReader(resources, where, sort, session)
    rows = await reader.rows(start.position, start.backward, count + 1)
    more_behind = start.behind is not None and await reader.any_beyond(start.behind)
    return assemble_page(
        start,
        rows,
        count,
        more_behind,
        reader.position,
        lambda page: [version_from_doc(doc) for doc in page],
    )
