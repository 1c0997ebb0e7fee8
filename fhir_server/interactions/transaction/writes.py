"""The writes of Bundle entries: the write requests a transaction stages, the REST-equivalent
calls a batch makes, and the response entries of both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest, ResourceGone, ResourceNotFound
from fhir_server.interactions.jsonpatch import check_identity
from fhir_server.interactions.patching import parse_bundle_patch
from fhir_server.interactions.pipeline import WriteRequest
from fhir_server.interactions.preconditions import parse_if_match
from fhir_server.interactions.transaction import response as r
from fhir_server.interactions.transaction.dispatch import Target
from fhir_server.interactions.transaction.entries import Entry
from fhir_server.interactions.transaction.plan import PlannedWrite
from fhir_server.interactions.writing import Deleted, Written
from fhir_server.storage.port import ResourceVersion

if TYPE_CHECKING:
    from fhir_server.interactions.service import FhirService

_METHOD = {"create": "POST", "update": "PUT", "patch": "PATCH", "delete": "DELETE"}


def stage_request(plan: PlannedWrite) -> WriteRequest | None:
    """What the pipeline stages for a planned write; None when nothing is to be stored."""
    if plan.action == "none" or plan.key is None:
        return None
    type_, id_ = plan.key
    body = plan.body
    if plan.action == "patch":
        body = _patched(plan)
    return WriteRequest(
        plan.action, _METHOD[plan.action], type_, id_, body, plan.current, plan.unless_exists
    )


def unchanged(plan: PlannedWrite) -> bool:
    """An update whose resource equals the current version's, its meta.versionId and
    meta.lastUpdated aside (the references already resolved to stored ids)."""
    current = plan.current
    if plan.action != "update" or plan.body is None or current is None or current.body is None:
        return False
    return _content(fhirjson.loads(current.body)) == _content(plan.body)


def _content(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("meta")
    if not isinstance(meta, dict):
        return body
    kept = {k: v for k, v in meta.items() if k not in ("versionId", "lastUpdated")}
    content = {k: v for k, v in body.items() if k != "meta"}
    if kept:
        content["meta"] = kept
    return content


def _patched(plan: PlannedWrite) -> dict[str, Any]:
    assert plan.key is not None
    type_, id_ = plan.key
    current = plan.current
    if current is None:
        raise ResourceNotFound(f"{type_}/{id_} is not known; a patch needs an existing resource")
    if current.body is None:
        raise ResourceGone(f"{type_}/{id_} was deleted; it cannot be patched")
    patch = parse_bundle_patch(plan.body)
    original = fhirjson.loads(current.body)
    patched: dict[str, Any] = patch.apply(original)
    check_identity(original, patched)
    return patched


def response_of(ctx: RequestContext, plan: PlannedWrite, preference: str) -> dict[str, Any]:
    """The response entry of a transaction's write once committed."""
    version = plan.stored or plan.current
    if plan.action == "delete" or plan.target.handler.startswith("delete"):
        what = f"{plan.key[0]}/{plan.key[1]}" if plan.key else "nothing (no match)"
        verb = "Deleted" if plan.action == "delete" else "Nothing to delete:"
        return r.deleted_entry(version, preference, f"{verb} {what}")
    assert version is not None
    status = 201 if plan.created else 200
    verb = {"create": "Created", "patch": "Patched", "none": "Matched the existing"}.get(
        plan.action, "Created" if plan.created else "Updated"
    )
    return r.written_entry(ctx.base_url, version, status, preference, _message(verb, version))


def _message(verb: str, version: ResourceVersion) -> str:
    return f"{verb} {version.resource_type}/{version.id} (version {version.version})"


async def run_write(
    service: FhirService, ctx: RequestContext, entry: Entry, target: Target, preference: str
) -> dict[str, Any]:
    """A batch entry's write, exactly as the equivalent REST request."""
    if_match = parse_if_match(entry.if_match, "request.ifMatch")
    body = entry.resource
    match target.handler:
        case "create":
            created = await service.create(ctx, target.type, _body(body), entry.if_none_exist)
            verb = "Created" if created.created else "Matched the existing"
            return _written(ctx, created, preference, verb)
        case "update":
            updated = await service.update(ctx, target.type, target.id, _body(body), if_match)
            return _written(ctx, updated, preference, "Created" if updated.created else "Updated")
        case "update-conditional":
            updated = await service.update_conditional(
                ctx, target.type, target.query, _body(body), if_match
            )
            return _written(ctx, updated, preference, "Created" if updated.created else "Updated")
        case "patch":
            patch = parse_bundle_patch(body)
            patched = await service.patch(ctx, target.type, target.id, patch, if_match)
            return _written(ctx, patched, preference, "Patched")
        case "delete":
            deleted = await service.delete(ctx, target.type, target.id, if_match)
            return _deleted(deleted, preference, f"{target.type}/{target.id}")
        case "delete-conditional":
            deleted = await service.delete_conditional(ctx, target.type, target.query, if_match)
            return _deleted(deleted, preference, f"{target.type}?…")
    raise InvalidRequest(
        f"{entry.method} {target.handler} is not a write a Bundle entry can hold",
        expression=["request.url"],
    )


def _body(body: dict[str, Any] | None) -> dict[str, Any]:
    if body is None:
        raise InvalidRequest("The entry has no resource", expression=["resource"])
    return body


def _written(ctx: RequestContext, result: Written, preference: str, verb: str) -> dict[str, Any]:
    status = 201 if result.created else 200
    version = result.version
    return r.written_entry(ctx.base_url, version, status, preference, _message(verb, version))


def _deleted(result: Deleted, preference: str, what: str) -> dict[str, Any]:
    version = result.version
    deleted = version is not None and version.deleted
    verb = "Deleted" if deleted else "Nothing to delete:"
    return r.deleted_entry(version, preference, f"{verb} {what}")
