"""create_app: the FastAPI application of the FHIR REST door, built from the interaction table."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Protocol

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from fhir_server.api import negotiation
from fhir_server.api.errors import internal_error, operation_outcome
from fhir_server.api.responses import Negotiated
from fhir_server.api.routes import HANDLERS, Call, Handler
from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, Issue, http_status
from fhir_server.interactions.service import FhirService
from fhir_server.interactions.table import INTERACTIONS

log = logging.getLogger("fhir_server.access")

FHIR_PREFIX = "/fhir"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


class Lifecycle(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


def create_app(
    service: FhirService,
    lifecycle: Lifecycle,
    *,
    base_url: str | None = None,
    max_body_bytes: int = 50 * 1024 * 1024,
) -> FastAPI:
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
    served: set[tuple[str, str]] = set()
    for route in INTERACTIONS:
        if (route.method, route.path) in served:
            continue  # one route serves several interactions (batch and transaction)
        served.add((route.method, route.path))
        handler = HANDLERS[route.handler_name]
        endpoint = _endpoint(service, route.code, handler, base_url, max_body_bytes)
        path = f"{FHIR_PREFIX}/{route.path}" if route.path else FHIR_PREFIX
        app.router.add_route(path, endpoint, methods=[route.method], name=route.handler_name)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    return app


def _endpoint(
    service: FhirService, interaction: str, handler: Handler, base_url: str | None, max_body: int
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        ctx = RequestContext(channel="rest", base_url=base_url or _base_url(request))
        given = request.headers.get("x-request-id", "")
        if _REQUEST_ID.fullmatch(given):
            ctx = replace(ctx, request_id=given)
        try:
            negotiated = _negotiate(request)
        except FhirError as error:
            negotiated = Negotiated(negotiation.FHIR_JSON, False)
            response = await _failure(service, ctx, interaction, error, negotiated)
        else:
            call = Call(request, service, ctx, negotiated, max_body)
            try:
                response = await handler(call)
            except FhirError as error:
                response = await _failure(service, ctx, interaction, error, negotiated)
            except Exception:
                log.exception("%s failed (request id %s)", interaction, ctx.request_id)
                response = negotiated.json(internal_error(ctx.request_id), 500)
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


async def _failure(
    service: FhirService,
    ctx: RequestContext,
    interaction: str,
    error: FhirError,
    negotiated: Negotiated,
) -> Response:
    await service.hooks.interaction_failed(ctx, interaction, error)
    return negotiated.json(operation_outcome(list(error.issues)), http_status(error))


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
