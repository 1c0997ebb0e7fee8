"""Search on MongoDB: the entry point the store delegates ``search``/``count`` to.

Layout of the embedded index: search_index.py; compilation of the AST to a filter (chains and
``_has`` by running their inner query first): search_filters.py; value terms:
search_values.py; sorting and keyset paging: search_paging.py; the indexes serving all of it:
indexes.py. Only current, non-deleted documents match (``deleted: False``).
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from fhir_server.core.clock import Clock
from fhir_server.search.model import Criteria
from fhir_server.storage.mongo.documents import VERSION_FIELDS, to_micros, version_from_doc
from fhir_server.storage.mongo.search_filters import NEVER, Filter, FilterCompiler
from fhir_server.storage.mongo.search_paging import search_page
from fhir_server.storage.port import Page, ResourceVersion, SearchQuery

#: ``estimate`` counts exactly up to this many matches and answers this number beyond.
ESTIMATE_LIMIT = 10_000


class MongoSearch:
    """Searches the ``resources`` collection; ``clock`` gives "now" for the date ``ap`` prefix."""

    def __init__(self, resources: AsyncCollection[dict[str, Any]], clock: Clock) -> None:
        self._resources = resources
        self._clock = clock

    async def where(self, criteria: Criteria, session: AsyncClientSession | None = None) -> Filter:
        """The query filter of ``criteria`` (runs the inner queries of chains and ``_has``)."""
        compiler = FilterCompiler(self._resources, to_micros(self._clock()), session)
        return await compiler.criteria(criteria)

    async def page(self, query: SearchQuery, session: AsyncClientSession | None = None) -> Page:
        """One keyset page of ``query`` (InvalidRequest for a cursor it did not issue)."""
        where = await self.where(query.criteria, session)
        return await search_page(
            self._resources, where, query.sort, query.count, query.cursor, session
        )

    async def count(self, criteria: Criteria, session: AsyncClientSession | None = None) -> int:
        """The exact number of current resources matching ``criteria``."""
        where = await self.where(criteria, session)
        if where == NEVER:
            return 0
        return await self._resources.count_documents(where, session=session)

    async def estimate(self, criteria: Criteria) -> int:
        """A cheap count for ``_total=estimate``: exact up to :data:`ESTIMATE_LIMIT` matches
        (a count that stops there), that number when there are more. A search of every type
        without criteria answers from the collection's metadata
        (``estimated_document_count``, which also counts deleted resources' tombstones)."""
        where = await self.where(criteria)
        if where == NEVER:
            return 0
        if not criteria.types and not criteria.tests:
            return await self._resources.estimated_document_count()
        return await self._resources.count_documents(where, limit=ESTIMATE_LIMIT)

    async def first_matches(
        self, criteria: Criteria, limit: int, session: AsyncClientSession | None
    ) -> list[ResourceVersion]:
        """Up to ``limit`` current resources matching ``criteria``, in creation order (the
        checks of conditional writes, inside the caller's transaction)."""
        where = await self.where(criteria, session)
        if where == NEVER or limit <= 0:
            return []
        cursor = self._resources.find(
            where, VERSION_FIELDS, sort=[("rid", 1)], limit=limit, session=session
        )
        return [version_from_doc(doc) async for doc in cursor]
