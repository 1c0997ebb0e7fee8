"""create_app: the FastAPI application of the FHIR REST door, built from the interaction table."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Protocol

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from fhir_server.api import negotiation
from fhir_server.api.cors import CorsMiddleware, Origins
from fhir_server.api.errors import internal_error, operation_outcome
from fhir_server.api.operations import OPERATION, operation
from fhir_server.api.responses import Negotiated
from fhir_server.api.routes import HANDLERS, Call, Handler
from fhir_server.auth.tokens import bearer_token
from fhir_server.core import fhirjson
from fhir_server.core.access import Access
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, Issue, Unauthenticated, http_status
from fhir_server.events.hooks import InteractionDone
from fhir_server.interactions.service import FhirService
from fhir_server.interactions.table import INTERACTIONS, OPERATION_PATHS

log = logging.getLogger("fhir_server.access")

FHIR_PREFIX = "/fhir"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


#: The HTTP application type (for the composition root, which must not import FastAPI).
HttpApp = FastAPI
#: Verifies a bearer token for the FHIR base the caller used; raises Unauthenticated.
Authenticate = Callable[[str, str], Awaitable[Access]]
#: Interactions anyone may call without a token (discovery).
PUBLIC_INTERACTIONS = frozenset({"capabilities"})
REALM = "fhir-server"


class Lifecycle(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def create_app(
    service: FhirService,
    lifecycle: Lifecycle,
    *,
    base_url: str | None = None,
    max_body_bytes: int = 50 * 1024 * 1024,
    authenticate: Authenticate | None = None,
    first_routes: Sequence[BaseRoute] = (),
    routes: Sequence[BaseRoute] = (),
    cors_origins: Origins | None = None,
) -> FastAPI:
    """The FHIR REST door. ``authenticate``: SMART bearer tokens are required on every
    interaction but ``capabilities`` (None: authorization off); ``first_routes`` go before the
    FHIR routes (paths their patterns would match, e.g. ``.well-known``), ``routes`` after;
    ``cors_origins``: the registered apps' origins (None: any origin)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await lifecycle.start()
        try:
            yield
        finally:
            await lifecycle.stop()

    app = FastAPI(
        title="fhir-server", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.router.routes.extend(first_routes)
    _add_operation_routes(app, service, base_url, max_body_bytes, authenticate)
    served: set[tuple[str, str]] = set()
    for route in INTERACTIONS:
        if (route.method, route.path) in served:
            continue  # one route serves several interactions (batch and transaction)
        served.add((route.method, route.path))
        handler = HANDLERS[route.handler_name]
        endpoint = _endpoint(service, route.code, handler, base_url, max_body_bytes, authenticate)
        path = f"{FHIR_PREFIX}/{route.path}" if route.path else FHIR_PREFIX
        app.router.add_route(path, endpoint, methods=[route.method], name=route.handler_name)
    app.router.routes.extend(routes)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_middleware(CorsMiddleware, origins=cors_origins)
    return app


def _add_operation_routes(
    app: FastAPI,
    service: FhirService,
    base_url: str | None,
    max_body: int,
    authenticate: Authenticate | None,
) -> None:
    """``$operation`` routes, before the interaction routes whose patterns also match them."""
    endpoint = _endpoint(service, OPERATION, operation, base_url, max_body, authenticate)
    for level, path in OPERATION_PATHS:
        app.router.add_route(
            f"{FHIR_PREFIX}/{path}", endpoint, methods=["GET", "POST"], name=f"operation-{level}"
        )


def _endpoint(
    service: FhirService,
    interaction: str,
    handler: Handler,
    base_url: str | None,
    max_body: int,
    authenticate: Authenticate | None,
) -> Callable[[Request], Awaitable[Response]]:
    needs_token = authenticate is not None and interaction not in PUBLIC_INTERACTIONS

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        address = request.client.host if request.client else None
        ctx = RequestContext(
            channel="rest", base_url=base_url or _base_url(request), client_address=address
        )
        given = request.headers.get("x-request-id", "")
        if _REQUEST_ID.fullmatch(given):
            ctx = replace(ctx, request_id=given)
        try:
            negotiated = _negotiate(request)
        except FhirError as error:
            negotiated = Negotiated(negotiation.FHIR_JSON, False)
            response = await _failure(service, ctx, interaction, error, negotiated)
        else:
            try:
                if needs_token:
                    assert authenticate is not None
                    ctx = replace(ctx, access=await _access(request, ctx, authenticate))
                response = await handler(Call(request, service, ctx, negotiated, max_body))
            except FhirError as error:
                response = await _failure(service, ctx, interaction, error, negotiated)
            except Exception:
                log.exception("%s failed (request id %s)", interaction, ctx.request_id)
                response = negotiated.json(internal_error(ctx.request_id), 500)
            else:
                await service.hooks.interaction_done(ctx, _done(request, interaction, response))
        response.headers["X-Request-Id"] = ctx.request_id
        # Personal data stays out of the log: the interaction, never the URL or its query.
        log.info(
            "%s %s %s %.1fms request-id=%s", request.method, interaction, response.status_code,
            (time.perf_counter() - started) * 1000, ctx.request_id,
        )  # fmt: skip
        return response

    return endpoint


def _negotiate(request: Request) -> Negotiated:
    query = request.query_params
    media_type = negotiation.response_media_type(
        query.get("_format"), request.headers.get("accept")
    )
    return Negotiated(media_type, query.get("_pretty", "false").lower() == "true")


async def _access(request: Request, ctx: RequestContext, authenticate: Authenticate) -> Access:
    """The bearer token's Access (RFC 6750 §2.1); Unauthenticated when absent or invalid."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthenticated(
            "This server requires a SMART access token: send Authorization: Bearer <token> "
            "(see .well-known/smart-configuration)"
        )
    return await authenticate(token, ctx.base_url)


def _done(request: Request, interaction: str, response: Response) -> InteractionDone:
    params = request.path_params
    etag = response.headers.get("etag", "")
    version = etag.removeprefix('W/"').rstrip('"') if etag else None
    if interaction in ("transaction", "batch"):
        interaction = "batch-transaction"
    return InteractionDone(
        interaction, response.status_code, resource_type=params.get("type"),
        id=params.get("id"), version=version, query=request.url.query or None,
    )  # fmt: skip


async def _failure(
    service: FhirService,
    ctx: RequestContext,
    interaction: str,
    error: FhirError,
    negotiated: Negotiated,
) -> Response:
    await service.hooks.interaction_failed(ctx, interaction, error)
    response = negotiated.json(operation_outcome(list(error.issues)), http_status(error))
    if isinstance(error, Unauthenticated):
        response.headers["WWW-Authenticate"] = _challenge(error)
    return response


def _challenge(error: Unauthenticated) -> str:
    """RFC 6750 §3: no error code when no token was sent; invalid_token otherwise."""
    if error.diagnostics.startswith("This server requires"):
        return f'Bearer realm="{REALM}"'
    description = error.diagnostics.replace('"', "'").replace("\\", "/")
    return f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + FHIR_PREFIX


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """Unknown paths (404) and methods a path does not support (405), as OperationOutcome."""
    status = exc.status_code
    if status == 405:
        message = f"{request.method} is not supported on this path"
        code = "not-supported"
    elif status == 404:
        message = "No FHIR interaction matches this path; the FHIR base is /fhir"
        code = "not-found"
    else:
        message, code = str(exc.detail), "exception"
    body = fhirjson.dumps(operation_outcome([Issue("error", code, message)]))
    headers = dict(exc.headers or {})
    return Response(body, status, headers, f"{negotiation.FHIR_JSON}; charset=utf-8")
