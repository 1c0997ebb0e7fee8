"""create, update, patch and delete (http://hl7.org/fhir/R4/http.html#create, #update, #patch,
#delete), all through the one write pipeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import (
    InvalidRequest,
    PreconditionFailed,
    ResourceGone,
    ResourceNotFound,
    VersionConflict,
)
from fhir_server.core.ids import IdFactory
from fhir_server.interactions.jsonpatch import check_identity
from fhir_server.interactions.locks import KeyedLocks
from fhir_server.interactions.patching import Patch
from fhir_server.interactions.pipeline import WritePipeline, WriteRequest
from fhir_server.interactions.reading import check_id, check_type
from fhir_server.search.model import Criteria
from fhir_server.storage.port import ResourceStore, ResourceVersion

T = TypeVar("T")

#: How often an update without If-Match is retried when a concurrent write got in first.
UPDATE_RETRIES = 5


@dataclass(frozen=True, slots=True)
class Written:
    version: ResourceVersion
    created: bool


@dataclass(frozen=True, slots=True)
class Deleted:
    """``version`` is the tombstone written, or the current one if nothing had to be deleted."""

    version: ResourceVersion | None


def check_body_type(body: dict[str, Any], resource_type: str) -> None:
    found = body.get("resourceType")
    if found is None:
        raise InvalidRequest(
            "The body has no resourceType; a FHIR resource was expected",
            expression=["resourceType"],
        )
    if found != resource_type:
        raise InvalidRequest(
            f"The body's resourceType does not match the URL ({resource_type} expected)",
            expression=["resourceType"],
        )


async def create(
    pipeline: WritePipeline,
    new_id: IdFactory,
    ctx: RequestContext,
    type: str,
    body: dict[str, Any],
    unless_exists: Criteria | None = None,
) -> Written:
    """POST [type]: any id in the body is ignored and a new one assigned (R4 http.html#create).

    ``unless_exists`` (conditional create, see conditional.py) makes the store refuse the write
    at commit if a matching resource exists by then (ConditionalMatch).
    """
    check_type(type)
    check_body_type(body, type)
    request = WriteRequest("create", "POST", type, new_id(), body, None, unless_exists)
    return Written(await pipeline.write(ctx, request), created=True)


async def create_all(
    pipeline: WritePipeline,
    new_id: IdFactory,
    ctx: RequestContext,
    type: str,
    bodies: Sequence[dict[str, Any]],
) -> list[Written]:
    """Several creates of one type in one unit of work, all or none (each as :func:`create`)."""
    check_type(type)
    for body in bodies:
        check_body_type(body, type)
    requests = [WriteRequest("create", "POST", type, new_id(), b, None) for b in bodies]
    return [Written(v, created=True) for v in await pipeline.write_all(ctx, requests)]


async def update(
    store: ResourceStore,
    pipeline: WritePipeline,
    locks: KeyedLocks,
    ctx: RequestContext,
    type: str,
    id: str,
    body: dict[str, Any],
    if_match: int | None,
    unless_exists: Criteria | None = None,
) -> Written:
    """PUT [type]/[id], creating the resource with that id if it does not exist.
    ``unless_exists``: see :func:`create` (used by conditional update)."""
    check_type(type)
    check_id(type, id)
    check_body_type(body, type)
    if "id" not in body:
        raise InvalidRequest(
            f"The body has no id; an update must carry the id of the URL ({type}.id)",
            expression=[f"{type}.id"],
        )
    if body["id"] != id:
        raise InvalidRequest(
            "The id in the body does not match the id in the URL", expression=[f"{type}.id"]
        )

    async def put(current: ResourceVersion | None) -> Written:
        request = WriteRequest("update", "PUT", type, id, body, current, unless_exists)
        version = await pipeline.write(ctx, request)
        return Written(version, created=current is None or current.deleted)

    return await read_modify_write(store, locks, type, id, if_match, put)


async def patch(
    store: ResourceStore,
    pipeline: WritePipeline,
    locks: KeyedLocks,
    ctx: RequestContext,
    type: str,
    id: str,
    patch: Patch,
    if_match: int | None,
) -> Written:
    """PATCH [type]/[id] with a parsed JSON Patch or FHIRPath Patch (patching.py); the patched
    resource keeps its resourceType and id and is validated like an update."""
    check_type(type)
    check_id(type, id)

    async def apply(current: ResourceVersion | None) -> Written:
        if current is None:
            raise ResourceNotFound(f"{type}/{id} is not known; a patch needs an existing resource")
        if current.body is None:
            raise ResourceGone(f"{type}/{id} was deleted; it cannot be patched")
        original = fhirjson.loads(current.body)
        patched = patch.apply(original)
        check_identity(original, patched)
        request = WriteRequest("patch", "PATCH", type, id, patched, current)
        return Written(await pipeline.write(ctx, request), created=False)

    return await read_modify_write(store, locks, type, id, if_match, apply)


async def delete(
    store: ResourceStore,
    pipeline: WritePipeline,
    locks: KeyedLocks,
    ctx: RequestContext,
    type: str,
    id: str,
    if_match: int | None,
) -> Deleted:
    """DELETE [type]/[id]: a new version marks the resource deleted; history keeps every version.
    Deleting a deleted or unknown resource changes nothing and is not an error."""
    check_type(type)
    check_id(type, id)

    async def tombstone(current: ResourceVersion | None) -> Deleted:
        if current is None or current.deleted:
            return Deleted(current)
        request = WriteRequest("delete", "DELETE", type, id, None, current)
        return Deleted(await pipeline.write(ctx, request))

    return await read_modify_write(store, locks, type, id, if_match, tombstone)


async def read_modify_write(
    store: ResourceStore,
    locks: KeyedLocks,
    type: str,
    id: str,
    if_match: int | None,
    step: Callable[[ResourceVersion | None], Awaitable[T]],
) -> T:
    """Read the current version, check If-Match and run ``step`` under the resource's lock.

    Writers in this process queue on the lock; a writer in another process is caught by the
    store's expected-version check, and then the whole step is retried from a fresh read —
    unless If-Match pinned the version, which then no longer holds (412).
    """
    for attempt in range(UPDATE_RETRIES):
        try:
            async with locks.hold(f"{type}/{id}"):
                current = await store.read(type, id)
                check_if_match(type, id, current, if_match)
                return await step(current)
        except VersionConflict:
            if if_match is not None:
                raise PreconditionFailed(
                    f"{type}/{id} was changed by another request; If-Match no longer holds"
                ) from None
            if attempt == UPDATE_RETRIES - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def check_if_match(
    type: str, id: str, current: ResourceVersion | None, if_match: int | None
) -> None:
    """If-Match: the write applies only to that version (http.html#concurrency)."""
    if if_match is None:
        return
    if current is None:
        raise PreconditionFailed(f"{type}/{id} does not exist; If-Match cannot hold")
    if current.version != if_match:
        raise PreconditionFailed(
            f"{type}/{id} is at version {current.version}, not {if_match} (If-Match)"
        )
