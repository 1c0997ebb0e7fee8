"""The authorization server's HTTP routes (Starlette), mounted beside the FHIR REST door by the
composition root: discovery, authorize/login/consent, token, introspection, revocation, JWKS,
the EHR launch API and the admin API."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from authlib.oauth2 import OAuth2Error
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fhir_server.auth.server import discovery
from fhir_server.auth.server.admin import AdminApi
from fhir_server.auth.server.flow import AuthorizationFlow, _ctx
from fhir_server.auth.server.oauth import OAuthAnswer, SmartRequest
from fhir_server.auth.server.smart import SmartAuth
from fhir_server.core.access import Access
from fhir_server.core.errors import Unauthenticated
from fhir_server.events.hooks import InteractionDone

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PUBLIC = {"Access-Control-Allow-Origin": "*"}
READ = ["GET", "OPTIONS"]


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status, headers=headers)


class AuthRoutes:
    def __init__(self, smart: SmartAuth) -> None:
        self.smart = smart
        self.flow = AuthorizationFlow(smart)
        self.admin = AdminApi(smart)

    def routes(self) -> list[BaseRoute]:
        """``first``: routes to put before the FHIR door's own (their paths would otherwise
        match its ``{type}/{id}`` patterns); the rest can go anywhere."""
        return [
            Route("/fhir/.well-known/smart-configuration", self.smart_configuration, methods=READ),
            Route(
                "/auth/.well-known/openid-configuration", self.openid_configuration, methods=READ
            ),
            Route("/auth/jwks", self.jwks, methods=READ),
            Route("/auth/smart-style.json", self.style, methods=READ),
            Route("/auth/authorize", self.flow.authorize, methods=["GET", "POST"]),
            Route("/auth/authorize/patients", self.flow.picker, methods=["GET"]),
            Route("/auth/login", self.flow.login, methods=["POST"]),
            Route("/auth/consent", self.flow.consent, methods=["POST"]),
            Route("/auth/token", self.token, methods=["POST", "OPTIONS"]),
            Route("/auth/introspect", self.introspect, methods=["POST"]),
            Route("/auth/revoke", self.revoke, methods=["POST", "OPTIONS"]),
            *self.admin.routes(),
        ]

    async def smart_configuration(self, request: Request) -> Response:
        endpoints = self.flow.endpoints(request)
        return _json(discovery.smart_configuration(endpoints))  # CORS: api/cors.py (/fhir)

    async def openid_configuration(self, request: Request) -> Response:
        return _json(discovery.openid_configuration(self.flow.endpoints(request)), headers=PUBLIC)

    async def jwks(self, request: Request) -> Response:
        headers = {**PUBLIC, "Cache-Control": "public, max-age=300"}
        return _json(self.smart.keyring().public_jwks(), headers=headers)

    async def style(self, request: Request) -> Response:
        return _json(SMART_STYLE, headers={**PUBLIC, "Cache-Control": "public, max-age=3600"})

    async def _oauth_request(self, request: Request) -> SmartRequest:
        form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
        endpoints = self.flow.endpoints(request)
        uri = endpoints.issuer + request.url.path.removeprefix("/auth")
        # Starlette's Headers: case-insensitive, as authlib reads "Authorization"
        return SmartRequest(request.method, uri, request.headers, [], form, endpoints)

    async def _cors(self, request: Request) -> dict[str, str]:
        """CORS for browser apps at the token and revocation endpoints: registered origins only
        (SMART app-launch 2.2; RFC 9700 §2.6)."""
        origin = request.headers.get("origin")
        if origin and origin in await self.smart.registered_origins():
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        return {}

    async def _preflight(self, request: Request) -> Response:
        headers = await self._cors(request)
        if headers:
            headers["Access-Control-Allow-Methods"] = "POST"
            headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            headers["Access-Control-Max-Age"] = "600"
        return Response(status_code=204, headers=headers)

    async def token(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return await self._preflight(request)
        oauth = await self._oauth_request(request)
        answer: OAuthAnswer = await self.smart.bridge.run_sync(
            self.smart.server.create_token_response, oauth
        )
        await self._audit("token", oauth, answer, request)
        return self._answer(answer, await self._cors(request))

    async def introspect(self, request: Request) -> Response:
        oauth = await self._oauth_request(request)
        answer = await self.smart.bridge.run_sync(
            self.smart.server.create_endpoint_response, "introspection", oauth
        )
        await self._audit("introspect", oauth, answer, request)
        return self._answer(answer, {})

    async def revoke(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return await self._preflight(request)
        oauth = await self._oauth_request(request)
        answer = await self.smart.bridge.run_sync(
            self.smart.server.create_endpoint_response, "revocation", oauth
        )
        await self._audit("revoke", oauth, answer, request)
        return self._answer(answer, await self._cors(request))

    @staticmethod
    def _answer(answer: OAuthAnswer, extra: dict[str, str]) -> Response:
        headers = {**dict(answer.headers), **NO_STORE, **extra}
        headers.pop("Content-Type", None)
        return _json(answer.body, answer.status, headers)

    async def _audit(
        self, event: str, oauth: SmartRequest, answer: OAuthAnswer, request: Request
    ) -> None:
        ctx = _ctx(request, oauth.endpoints.fhir_base)
        client = oauth.client
        client_id = client.client_id if client is not None else oauth.payload.client_id
        if answer.status >= 400:
            body = answer.body if isinstance(answer.body, dict) else {}
            if body.get("error") in ("invalid_client", "invalid_grant"):
                error = Unauthenticated(
                    f"{event}: {body.get('error')} for client {client_id or '(none)'}"
                )
                await self.smart.hooks.interaction_failed(ctx, event, error)
            return
        access = Access(scopes=(), client_id=str(client_id or ""), subject=str(client_id or ""))
        ctx = replace(ctx, access=access)
        await self.smart.hooks.interaction_done(ctx, InteractionDone(event, answer.status))


SMART_STYLE: dict[str, Any] = {
    "color_background": "#edeae3",
    "color_error": "#9e2d2d",
    "color_highlight": "#69b5ce",
    "color_modal_backdrop": "",
    "color_success": "#498e49",
    "color_text": "#303030",
    "dim_border_radius": "6px",
    "dim_font_size": "13px",
    "dim_spacing_size": "20px",
    "font_family_body": "Georgia, Times, 'Times New Roman', serif",
    "font_family_heading": "'HelveticaNeue-Light', Helvetica, Arial, 'Lucida Grande', sans-serif",
}

__all__ = ["AuthRoutes", "OAuth2Error"]
