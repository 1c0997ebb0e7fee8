"""One handler per interaction of the interaction table: parse HTTP, call FhirService, answer.

No FHIR semantics live here: ids, types, versions and parameters are checked by the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import headers as h
from fhir_server.api import negotiation
from fhir_server.api.errors import operation_outcome
from fhir_server.api.responses import Negotiated, written
from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Issue, PayloadTooLarge, UnsupportedMediaType
from fhir_server.interactions.params import Params
from fhir_server.interactions.patching import parse_http_patch
from fhir_server.interactions.preconditions import not_modified, parse_if_match
from fhir_server.interactions.service import FhirService
from fhir_server.storage.port import ResourceVersion

#: Parameters the door consumes itself (http.html#general-parameters).
DOOR_PARAMS = ("_format", "_pretty")


class Call:
    """Everything a handler needs about one request."""

    __slots__ = ("ctx", "max_body", "negotiated", "params", "request", "service")

    def __init__(
        self,
        request: Request,
        service: FhirService,
        ctx: RequestContext,
        negotiated: Negotiated,
        max_body: int,
    ) -> None:
        self.request = request
        self.service = service
        self.ctx = ctx
        self.negotiated = negotiated
        self.max_body = max_body
        self.params: Params = [
            (k, v)
            for k, v in parse_qsl(request.url.query, keep_blank_values=True)
            if k not in DOOR_PARAMS
        ]

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])

    async def body(self) -> bytes:
        declared = self.request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLarge(f"The body is larger than the limit of {self.max_body} bytes")
        raw = await self.request.body()
        if len(raw) > self.max_body:
            raise PayloadTooLarge(f"The body is larger than the limit of {self.max_body} bytes")
        return raw

    async def resource_body(self) -> dict[str, object]:
        negotiation.check_resource_content_type(self.request.headers.get("content-type"))
        return fhirjson.loads_object(await self.body(), "body")

    def if_match(self) -> int | None:
        return parse_if_match(self.request.headers.get("if-match"))

    def preference(self) -> str:
        return h.return_preference(self.request.headers.get("prefer"))

    def lenient(self) -> bool:
        return h.lenient_handling(self.request.headers.get("prefer"))

    async def search_params(self) -> Params:
        """The query's parameters, plus the form body of ``POST …/_search`` (search.html#search)."""
        params = list(self.params)
        if self.request.method == "POST":
            content_type = self.request.headers.get("content-type")
            if negotiation.media_type_of(content_type) != negotiation.FORM:
                raise UnsupportedMediaType(
                    "POST _search: send the parameters as application/x-www-form-urlencoded"
                )
            form = parse_qsl((await self.body()).decode(), keep_blank_values=True)
            params += [(k, v) for k, v in form if k not in DOOR_PARAMS]
        return params


Handler = Callable[[Call], Awaitable[Response]]


async def capabilities(call: Call) -> Response:
    return call.negotiated.json(await call.service.capabilities(call.ctx))


async def read(call: Call) -> Response:
    shown = await call.service.read(call.ctx, call.path("type"), call.path("id"), call.params)
    return _shown(call, shown.version, shown.body)


async def vread(call: Call) -> Response:
    shown = await call.service.vread(
        call.ctx, call.path("type"), call.path("id"), call.path("vid"), call.params
    )
    return _shown(call, shown.version, shown.body)


def _shown(call: Call, version: ResourceVersion, body: bytes) -> Response:
    headers = h.version_headers(version)
    if not_modified(
        version,
        call.request.headers.get("if-none-match"),
        call.request.headers.get("if-modified-since"),
    ):
        return Response(status_code=304, headers=headers)
    return call.negotiated.raw(body, 200, headers)


async def create(call: Call) -> Response:
    body = await call.resource_body()
    if_none_exist = call.request.headers.get("if-none-exist")
    result = await call.service.create(call.ctx, call.path("type"), body, if_none_exist)
    return written(
        call.negotiated, call.ctx.base_url, result.version,
        created=result.created, preference=call.preference(),
        what="Created" if result.created else "Matched the existing",
    )  # fmt: skip


async def update(call: Call) -> Response:
    body = await call.resource_body()
    result = await call.service.update(
        call.ctx, call.path("type"), call.path("id"), body, call.if_match()
    )
    return written(
        call.negotiated, call.ctx.base_url, result.version,
        created=result.created, preference=call.preference(),
        what="Created" if result.created else "Updated",
    )  # fmt: skip


async def patch(call: Call) -> Response:
    content_type = negotiation.patch_content_type(call.request.headers.get("content-type"))
    raw = await call.body()
    document = fhirjson.loads(raw) if raw.strip() else None
    patch = parse_http_patch(content_type, document)
    result = await call.service.patch(
        call.ctx, call.path("type"), call.path("id"), patch, call.if_match()
    )
    return written(
        call.negotiated, call.ctx.base_url, result.version,
        created=False, preference=call.preference(), what="Patched",
    )  # fmt: skip


async def delete(call: Call) -> Response:
    type_, id_ = call.path("type"), call.path("id")
    result = await call.service.delete(call.ctx, type_, id_, call.if_match())
    return _deleted(call, result.version, f"{type_}/{id_}")


def _deleted(call: Call, version: ResourceVersion | None, what: str) -> Response:
    headers = h.version_headers(version) if version is not None else {}
    if call.preference() == "OperationOutcome":
        deleted = version is not None and version.deleted
        if deleted and version is not None:
            what = f"{version.resource_type}/{version.id}"
        message = f"{'Deleted' if deleted else 'Nothing to delete:'} {what}"
        outcome = operation_outcome([Issue("information", "informational", message)])
        return call.negotiated.json(outcome, 200, headers)
    return Response(status_code=204, headers=headers)


async def update_conditional(call: Call) -> Response:
    body = await call.resource_body()
    result = await call.service.update_conditional(
        call.ctx, call.path("type"), call.request.url.query, body, call.if_match()
    )
    return written(
        call.negotiated, call.ctx.base_url, result.version,
        created=result.created, preference=call.preference(),
        what="Created" if result.created else "Updated",
    )  # fmt: skip


async def delete_conditional(call: Call) -> Response:
    type_ = call.path("type")
    result = await call.service.delete_conditional(
        call.ctx, type_, call.request.url.query, call.if_match()
    )
    return _deleted(call, result.version, f"{type_}?…")


async def search_type(call: Call) -> Response:
    params = await call.search_params()
    bundle = await call.service.search_type(
        call.ctx, call.path("type"), params, lenient=call.lenient()
    )
    return call.negotiated.json(bundle)


async def search_system(call: Call) -> Response:
    params = await call.search_params()
    return call.negotiated.json(
        await call.service.search_system(call.ctx, params, lenient=call.lenient())
    )


async def search_compartment(call: Call) -> Response:
    bundle = await call.service.search_compartment(
        call.ctx, call.path("ctype"), call.path("cid"), call.path("type"), call.params,
        lenient=call.lenient(),
    )  # fmt: skip
    return call.negotiated.json(bundle)


async def history_system(call: Call) -> Response:
    return call.negotiated.json(await call.service.history(call.ctx, call.params))


async def history_type(call: Call) -> Response:
    return call.negotiated.json(
        await call.service.history(call.ctx, call.params, type=call.path("type"))
    )


async def history_instance(call: Call) -> Response:
    return call.negotiated.json(
        await call.service.history(
            call.ctx, call.params, type=call.path("type"), id=call.path("id")
        )
    )


async def batch_transaction(call: Call) -> Response:
    bundle = await call.resource_body()
    answer = await call.service.batch_or_transaction(
        call.ctx, bundle, preference=call.preference(), lenient=call.lenient()
    )
    return call.negotiated.json(answer)


HANDLERS: dict[str, Handler] = {
    "batch-transaction": batch_transaction,
    "capabilities": capabilities,
    "read": read,
    "vread": vread,
    "create": create,
    "update": update,
    "patch": patch,
    "delete": delete,
    "update-conditional": update_conditional,
    "delete-conditional": delete_conditional,
    "search-type": search_type,
    "search-system": search_system,
    "search-compartment": search_compartment,
    "history-system": history_system,
    "history-type": history_type,
    "history-instance": history_instance,
}
