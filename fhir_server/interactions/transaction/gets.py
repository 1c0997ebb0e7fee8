"""GET and HEAD entries of a batch or transaction: the same read, vread, search, history and
capabilities interactions as REST, with the entry's ``ifNoneMatch`` / ``ifModifiedSince``
answering 304 as a conditional read would. HEAD answers the status without the resource."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions.preconditions import not_modified
from fhir_server.interactions.reading import Shown
from fhir_server.interactions.transaction import response as r
from fhir_server.interactions.transaction.dispatch import Target
from fhir_server.interactions.transaction.entries import Entry

if TYPE_CHECKING:
    from fhir_server.interactions.service import FhirService


async def run_get(
    service: FhirService, ctx: RequestContext, entry: Entry, target: Target, lenient: bool
) -> dict[str, Any]:
    found = await _answer(service, ctx, target, lenient)
    if isinstance(found, Shown):
        modified = not not_modified(found.version, entry.if_none_match, entry.if_modified_since)
        status = 200 if modified else 304
        out = r.read_entry(ctx.base_url, found.version, found.body, status)
    else:
        out = r.read_entry(ctx.base_url, None, found)
    if entry.method == "HEAD":
        out.pop("resource", None)
    return out


async def _answer(
    service: FhirService, ctx: RequestContext, target: Target, lenient: bool
) -> Shown | dict[str, Any]:
    path, params = target.path, target.params
    match target.handler:
        case "read":
            return await service.read(ctx, target.type, target.id, params)
        case "vread":
            return await service.vread(ctx, target.type, target.id, path["vid"], params)
        case "search-type":
            return await service.search_type(ctx, target.type, params, lenient=lenient)
        case "search-system":
            return await service.search_system(ctx, params, lenient=lenient)
        case "search-compartment":
            return await service.search_compartment(
                ctx, path["ctype"], path["cid"], target.type, params, lenient=lenient
            )
        case "history-system":
            return await service.history(ctx, params)
        case "history-type":
            return await service.history(ctx, params, type=target.type)
        case "history-instance":
            return await service.history(ctx, params, type=target.type, id=target.id)
        case "capabilities":
            return await service.capabilities(ctx)
    raise InvalidRequest(
        f"GET {target.handler} is not an interaction a Bundle entry can hold",
        expression=["request.url"],
    )
