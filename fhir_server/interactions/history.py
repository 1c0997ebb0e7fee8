"""history at instance, type and system level (http://hl7.org/fhir/R4/http.html#history).

Newest version first; ``_since`` keeps versions made at or after an instant; ``_count`` sets the
page size; paging links carry an opaque keyset cursor, so pages stay correct while writes happen.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.access import READ, SEARCH
from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, ResourceNotFound
from fhir_server.interactions import bundles
from fhir_server.interactions.authorize import ScopePolicy, outside
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
    *,
    policy: ScopePolicy | None,
) -> dict[str, Any]:
    """``policy`` applies the caller's scopes (``ctx.access``): instance history needs ``r``,
    type and system history ``s``; every entry is checked and those the scopes do not allow
    are left out (a deletion shows only under an unrestricted scope for its type)."""
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
    access = ctx.access
    letter = READ if id is not None else SEARCH
    if access is not None and policy is not None and type is not None:
        policy.require(access, letter, type)
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
    versions = page.entries
    if access is not None and policy is not None:
        versions = [v for v in versions if policy.version_permitted(access, letter, v)]
        if id is not None and page.entries and not versions:
            raise Forbidden(outside(letter, f"{type}/{id}"))
    entries = [bundles.history_entry(ctx.base_url, v) for v in versions]
    link = bundles.links(ctx.base_url, path, params, page)
    return bundles.bundle("history", to_instant(clock()), link, entries)
