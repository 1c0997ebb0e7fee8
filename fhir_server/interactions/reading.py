"""read and vread (http://hl7.org/fhir/R4/http.html#read, #vread), with _summary/_elements."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_server.core import fhirjson, r4
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest, ResourceGone, ResourceNotFound
from fhir_server.core.ids import is_valid_id
from fhir_server.events.hooks import Hooks
from fhir_server.interactions.params import Params, single
from fhir_server.interactions.subsetting import SummaryMode, parse_subsetting
from fhir_server.storage.port import ResourceStore, ResourceVersion


@dataclass(frozen=True, slots=True)
class Shown:
    """A version and the bytes to show for it (the stored form, or a subset of it)."""

    version: ResourceVersion
    body: bytes


def check_type(resource_type: str) -> None:
    if not r4.is_resource_type(resource_type):
        raise ResourceNotFound(
            f"'{resource_type}' is not a FHIR R4 resource type", expression=["resourceType"]
        )


def check_id(resource_type: str, id: str) -> None:
    if not is_valid_id(id):
        raise InvalidRequest(
            f"The {resource_type} id in the URL is not a valid FHIR id "
            "(1 to 64 characters among A-Z, a-z, 0-9, '-' and '.')"
        )


async def read(
    store: ResourceStore, hooks: Hooks, ctx: RequestContext, type: str, id: str, params: Params
) -> Shown:
    check_type(type)
    check_id(type, id)
    version = await store.read(type, id)
    if version is None:
        raise ResourceNotFound(f"{type}/{id} is not known")
    if version.deleted:
        raise ResourceGone(f"{type}/{id} was deleted (version {version.version})")
    return await show(hooks, ctx, version, params)


async def vread(
    store: ResourceStore,
    hooks: Hooks,
    ctx: RequestContext,
    type: str,
    id: str,
    vid: str,
    params: Params,
) -> Shown:
    check_type(type)
    check_id(type, id)
    if not vid.isdigit():
        raise ResourceNotFound(f"{type}/{id} has no version with that id (versions are 1, 2, …)")
    version = await store.vread(type, id, int(vid))
    if version is None:
        raise ResourceNotFound(f"{type}/{id} has no version {int(vid)}")
    if version.deleted:
        raise ResourceGone(f"Version {version.version} of {type}/{id} is a deletion")
    return await show(hooks, ctx, version, params)


async def show(
    hooks: Hooks, ctx: RequestContext, version: ResourceVersion, params: Params
) -> Shown:
    """Apply _summary/_elements and the PRE_SHOW hooks; untouched versions skip any parsing."""
    assert version.body is not None
    subsetting = parse_subsetting(
        version.resource_type, single(params, "_summary"), single(params, "_elements")
    )
    if (
        subsetting.summary is SummaryMode.FALSE
        and not subsetting.elements
        and not hooks.has_pre_show
    ):
        return Shown(version, version.body)
    resource = subsetting.apply(fhirjson.loads(version.body))
    if hooks.has_pre_show:
        shown = await hooks.pre_show(ctx, [resource])
        if not shown:
            raise ResourceNotFound(f"{version.resource_type}/{version.id} is not known")
        resource = shown[0]
    return Shown(version, fhirjson.dumps(resource))
