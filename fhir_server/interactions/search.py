"""The core's minimal search-type: current resources of a type, by ``_id``, keyset-paged.

The search engine replaces this with every R4 parameter, modifier and result parameter; until
then, any other parameter is refused (never silently ignored) so no client gets wrong results.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions import bundles
from fhir_server.interactions.params import Params, parse_count, reject_unknown, single
from fhir_server.interactions.reading import check_type
from fhir_server.storage.port import ResourceStore, SearchQuery

ALLOWED = ("_id", "_count", "_cursor", "_total")


def _ids(params: Params) -> tuple[str, ...] | None:
    values = [value for key, value in params if key == "_id"]
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest("Parameter '_id' may appear only once here; use commas for OR")
    ids = tuple(part.strip() for part in values[0].split(",") if part.strip())
    if not ids:
        raise InvalidRequest("Parameter '_id' needs at least one id")
    return ids


async def search_type(
    store: ResourceStore, clock: Clock, ctx: RequestContext, type: str, params: Params
) -> dict[str, Any]:
    check_type(type)
    reject_unknown(params, ALLOWED, f"{type} search")
    total_mode = single(params, "_total") or "none"
    if total_mode not in ("none", "estimate", "accurate"):
        raise InvalidRequest("Parameter '_total' must be none, estimate or accurate")
    query = SearchQuery(
        type, _ids(params), parse_count(single(params, "_count")), single(params, "_cursor")
    )
    page = await store.search(query)
    entries = [bundles.search_entry(ctx.base_url, v) for v in page.entries]
    link = bundles.links(ctx.base_url, type, params, page)
    total = await store.count(query) if total_mode != "none" else None
    return bundles.bundle("searchset", to_instant(clock()), link, entries, total)
