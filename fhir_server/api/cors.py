"""CORS for browser apps (SMART App Launch 2.2, app-launch "CORS"; RFC 9700 §2.6): any origin
may read the CapabilityStatement and ``.well-known/smart-configuration``; the rest of the FHIR
API only the origins of registered apps (or any origin when authorization is off, for local
development). Preflight requests are answered here, before routing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Origins = Callable[[], Awaitable[frozenset[str]]]
PUBLIC_PATHS = ("/fhir/metadata", "/fhir/.well-known/")
ALLOW_HEADERS = (
    "Authorization, Content-Type, Accept, If-Match, If-None-Exist, If-None-Match, Prefer, "
    "X-Request-Id"
)
EXPOSE_HEADERS = "Location, ETag, Last-Modified, Content-Location, X-Request-Id, WWW-Authenticate"


class CorsMiddleware:
    def __init__(self, app: ASGIApp, origins: Origins | None) -> None:
        self.app = app
        self.origins = origins  # None: any origin (authorization off)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/fhir"):
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        allowed = await self._allowed(origin, path) if origin else None
        if scope["method"] == "OPTIONS" and origin:
            await self._preflight(allowed, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allowed:
                headers = list(message.get("headers", []))
                headers.append((b"access-control-allow-origin", allowed.encode("latin-1")))
                headers.append((b"access-control-expose-headers", EXPOSE_HEADERS.encode()))
                headers.append((b"vary", b"Origin"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _allowed(self, origin: str, path: str) -> str | None:
        if path.startswith(PUBLIC_PATHS):
            return "*"
        if self.origins is None or origin in await self.origins():
            return origin
        return None

    @staticmethod
    async def _preflight(allowed: str | None, send: Send) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"content-length", b"0")]
        if allowed:
            headers += [
                (b"access-control-allow-origin", allowed.encode("latin-1")),
                (b"access-control-allow-methods", b"GET, HEAD, POST, PUT, PATCH, DELETE"),
                (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
                (b"vary", b"Origin"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
