"""Conditional create, update and delete (http://hl7.org/fhir/R4/http.html#ccreate, #cond-update,
#3.1.0.7.1), race-free.

The criteria are searched first to decide between 0, 1 and many matches; when the decision is
"create", the write carries the criteria as ``unless_exists`` and the store searches again inside
its serialised write transaction, so two concurrent identical requests can never both create
(the duplicate bug HAPI, Microsoft and Firely have). The loser then answers as if it had seen
the winner's resource from the start.

Under SMART scopes the matched resource must be within them: a conditional create answering
with a match, and the update or delete of one (checked by the write pipeline), are 403 otherwise.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.access import CREATE
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest, PreconditionFailed, ResourceConflict
from fhir_server.core.ids import IdFactory, is_valid_id
from fhir_server.interactions import writing
from fhir_server.interactions.locks import KeyedLocks
from fhir_server.interactions.pipeline import WritePipeline
from fhir_server.interactions.reading import check_type
from fhir_server.interactions.writing import Deleted, Written
from fhir_server.search.model import Criteria
from fhir_server.search.parse import parse_conditional
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ConditionalMatch, ResourceStore, ResourceVersion, SearchQuery


def criteria_of(
    registry: SearchRegistry, resource_type: str, query: str, base_url: str, where: str
) -> Criteria:
    """The search criteria of If-None-Exist or of a conditional URL's query string."""
    text = query.strip()
    for prefix in (f"{base_url}/{resource_type}?", f"{resource_type}?", "?"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    if not text:
        raise InvalidRequest(f"{where} needs search parameters, e.g. identifier=system|value")
    criteria = parse_conditional(registry, resource_type, text, base_url)
    if not criteria.tests:
        raise InvalidRequest(f"{where} needs at least one search parameter")
    return criteria


async def matches(store: ResourceStore, criteria: Criteria) -> list[ResourceVersion]:
    """Up to two current matches: enough to tell 0, 1 and many apart."""
    return list((await store.search(SearchQuery(criteria, count=2))).entries)


def _too_many(where: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"{where}: several resources match the criteria; make them more selective "
        "(nothing was written)"
    )


async def create(
    store: ResourceStore,
    pipeline: WritePipeline,
    new_id: IdFactory,
    registry: SearchRegistry,
    ctx: RequestContext,
    type: str,
    body: dict[str, Any],
    if_none_exist: str,
) -> Written:
    """POST with If-None-Exist: 0 matches creates, 1 returns it unchanged (200), more is 412."""
    check_type(type)
    criteria = criteria_of(registry, type, if_none_exist, ctx.base_url, "If-None-Exist")
    found = await matches(store, criteria)
    if len(found) > 1:
        raise _too_many("If-None-Exist")
    if found:
        pipeline.check_existing(ctx, CREATE, found[0])
        return Written(found[0], created=False)
    try:
        return await writing.create(pipeline, new_id, ctx, type, body, unless_exists=criteria)
    except ConditionalMatch as race:
        if len(race.matches) > 1:
            raise _too_many("If-None-Exist") from None
        pipeline.check_existing(ctx, CREATE, race.matches[0])
        return Written(race.matches[0], created=False)


async def update(
    store: ResourceStore,
    pipeline: WritePipeline,
    locks: KeyedLocks,
    new_id: IdFactory,
    registry: SearchRegistry,
    ctx: RequestContext,
    type: str,
    query: str,
    body: dict[str, Any],
    if_match: int | None,
) -> Written:
    """PUT [type]?query: 0 matches creates (with the body's id if it has one), 1 updates that
    resource (the body's id, if any, must be its id), more is 412."""
    check_type(type)
    criteria = criteria_of(registry, type, query, ctx.base_url, "Conditional update")
    writing.check_body_type(body, type)
    given = body.get("id")
    if given is not None and (not isinstance(given, str) or not is_valid_id(given)):
        raise InvalidRequest("The body's id is not a valid FHIR id", expression=[f"{type}.id"])
    found = await matches(store, criteria)
    if len(found) > 1:
        raise _too_many("Conditional update")
    if found:
        target = found[0].id
        if given is not None and given != target:
            raise InvalidRequest(
                f"The body's id is not the id of the resource matching the criteria ({target})",
                expression=[f"{type}.id"],
            )
        return await writing.update(
            store, pipeline, locks, ctx, type, target, {**body, "id": target}, if_match
        )
    if if_match is not None:
        raise PreconditionFailed("Conditional update: nothing matches, so If-Match cannot hold")
    try:
        if given is None:
            return await writing.create(pipeline, new_id, ctx, type, body, unless_exists=criteria)
        current = await store.read(type, given)
        if current is not None and not current.deleted:
            raise ResourceConflict(
                f"{type}/{given} exists but does not match the criteria; "
                "update it by its id or change the criteria"
            )
        return await writing.update(
            store, pipeline, locks, ctx, type, given, body, None, unless_exists=criteria
        )
    except ConditionalMatch:
        # Another request created a match meanwhile: apply this update to it instead.
        return await update(
            store, pipeline, locks, new_id, registry, ctx, type, query, body, if_match
        )


async def delete(
    store: ResourceStore,
    pipeline: WritePipeline,
    locks: KeyedLocks,
    registry: SearchRegistry,
    ctx: RequestContext,
    type: str,
    query: str,
    if_match: int | None,
) -> Deleted:
    """DELETE [type]?query: 0 matches deletes nothing (204, like deleting an unknown id), 1
    deletes it, more is 412 (CapabilityStatement conditionalDelete: single)."""
    check_type(type)
    criteria = criteria_of(registry, type, query, ctx.base_url, "Conditional delete")
    found = await matches(store, criteria)
    if len(found) > 1:
        raise _too_many("Conditional delete")
    if not found:
        if if_match is not None:
            raise PreconditionFailed("Conditional delete: nothing matches, so If-Match cannot hold")
        return Deleted(None)
    return await writing.delete(store, pipeline, locks, ctx, type, found[0].id, if_match)
