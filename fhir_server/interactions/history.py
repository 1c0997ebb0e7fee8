"""history at instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Newest version first; ``_since`` keeps versions made at or after an instant; ``_count`` sets the
page size; paging links carry an opaque keyset cursor, so pages stay correct while writes happen.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import ResourceNotFound
from fhir_server.interactions import bundles
from fhir_server.interactions.params import (
    Params,
    parse_count,
    parse_instant,
    reject_unknown,
    single,
)
from fhir_server.interactions.reading import check_id, check_type
from fhir_server.storage.port import HistoryQuery, ResourceStore

ALLOWED = ("_since", "_count", "_cursor")


async def history(
    store: ResourceStore,
    clock: Clock,
    ctx: RequestContext,
    params: Params,
    type: str | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    path = (
        "_history"
        if type is None
        else (f"{type}/_history" if id is None else f"{type}/{id}/_history")
    )
    if type is not None:
        check_type(type)
    if type is not None and id is not None:
        check_id(type, id)
    reject_unknown(params, ALLOWED, "history")
    query = HistoryQuery(
        resource_type=type,
        id=id,
        since=parse_instant(single(params, "_since"), "_since"),
        count=parse_count(single(params, "_count")),
        cursor=single(params, "_cursor"),
    )
    page = await store.history(query)
    unknown = id is not None and not page.entries and await store.read(type or "", id) is None
    if unknown:
        raise ResourceNotFound(f"{type}/{id} is not known")
    entries = [bundles.history_entry(ctx.base_url, v) for v in page.entries]
    link = bundles.links(ctx.base_url, path, params, page)
    return bundles.bundle("history", to_instant(clock()), link, entries)
