"""The authorization endpoint and its pages: authorize (GET and POST) → login → consent (with
the patient picker) → a code redirected to the app.

The pending request lives in the record port under a random id and is bound to a cookie set on
this browser (HttpOnly, SameSite=Lax, path /auth), and every form carries a CSRF token bound to
both; so a request id alone (a leaked form) cannot be completed elsewhere. Errors found before
the client and redirect URI are validated get an error page and never a redirect (RFC 6749
§4.1.2.1, RFC 9700 §4.11); later ones redirect to the app with ``error`` and ``state``. Answers
to POSTs are 303 (RFC 9700 §4.12).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, NamedTuple
from urllib.parse import urlencode

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from fhir_server.auth.scopes import grant as grant_scopes
from fhir_server.auth.scopes import parse_scopes
from fhir_server.auth.server import pages
from fhir_server.auth.server.accounts import Client, User
from fhir_server.auth.server.issuer import Endpoints
from fhir_server.auth.server.oauth import SmartRequest
from fhir_server.auth.server.patients import find_patients, patient_exists
from fhir_server.auth.server.smart import SmartAuth
from fhir_server.auth.server.state import GrantContext, digest, new_secret
from fhir_server.auth.tokens import normalise_base
from fhir_server.core.access import Access
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Unauthenticated
from fhir_server.events.hooks import InteractionDone

COOKIE = "fhir_server_authz"


class Posted(NamedTuple):
    form: FormData
    request_id: str
    pending: dict[str, Any]
    binding: str


def _lang(request: Request) -> str:
    return pages.negotiate_language(request.headers.get("accept-language"))


def _ctx(request: Request, fhir_base: str = "") -> RequestContext:
    host = request.client.host if request.client else None
    return RequestContext(channel="smart", base_url=fhir_base, client_address=host)


def _html(body: str, status: int = 200, targets: tuple[str, ...] = ()) -> HTMLResponse:
    return HTMLResponse(body, status, headers=pages.page_headers(targets))


def _error_page(request: Request, title: str, message: str, status: int = 400) -> Response:
    return _html(pages.error_page(_lang(request), title=title, message=message), status)


def _redirect(location: str) -> Response:
    return RedirectResponse(location, 303, headers={"Cache-Control": "no-store"})


def _error_redirect(redirect_uri: str, error: str, description: str, state: str | None) -> Response:
    params = [("error", error), ("error_description", description)]
    if state:
        params.append(("state", state))
    return _redirect(add_params_to_uri(redirect_uri, params))


def _oauth_error(request: Request, error: OAuth2Error) -> Response:
    if error.redirect_uri:
        description = (error.description or error.error).replace("\n", " ")
        return _error_redirect(error.redirect_uri, error.error, description, error.state)
    if error.error == "invalid_client":
        return _error_page(request, "unknown_client_title", "unknown_client_message")
    if "redirect" in (error.description or "").lower():
        return _error_page(request, "invalid_redirect_title", "invalid_redirect_message")
    return _error_page(request, "invalid_request_title", error.description or error.error)


class AuthorizationFlow:
    def __init__(self, smart: SmartAuth) -> None:
        self.smart = smart

    def _oauth_request(self, endpoints: Endpoints, params: list[tuple[str, str]]) -> SmartRequest:
        uri = endpoints.authorize + ("?" + urlencode(params) if params else "")
        return SmartRequest("GET", uri, {}, params, [], endpoints)

    def endpoints(self, request: Request) -> Endpoints:
        return self.smart.endpoints(str(request.base_url))

    async def authorize(self, request: Request) -> Response:
        params = list(request.query_params.multi_items())
        if request.method == "POST":
            params += [
                (k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)
            ]
        endpoints = self.endpoints(request)
        oauth = self._oauth_request(endpoints, params)
        try:
            grant = await self.smart.bridge.run_sync(self.smart.server.get_consent_grant, oauth)
        except OAuth2Error as error:
            return _oauth_error(request, error)
        data = oauth.payload.data
        state = data.get("state")
        aud = data.get("aud") or data.get("resource")
        if not aud or normalise_base(aud) != normalise_base(endpoints.fhir_base):
            return _error_redirect(
                grant.redirect_uri, "invalid_request",
                f"aud must be this server's FHIR base URL, {endpoints.fhir_base}", state,
            )  # fmt: skip
        launch = data.get("launch")
        if launch and await self.smart.state.launch(launch) is None:
            return _error_redirect(
                grant.redirect_uri, "invalid_request", "unknown or expired launch", state
            )
        request_id, binding = new_secret(), new_secret()
        pending = {
            "params": params,
            "scope": oauth.scope,
            "client_id": data.get("client_id"),
            "binding": digest(binding),
        }
        await self.smart.state.save_pending(request_id, pending)
        client = await self.smart.accounts.client(str(data.get("client_id")))
        assert client is not None
        response = self._login_page(request, client, request_id, binding)
        response.set_cookie(
            COOKIE, binding, max_age=600, path="/auth", httponly=True, samesite="lax",
            secure=endpoints.issuer.startswith("https://"),
        )  # fmt: skip
        return response

    def _login_page(
        self,
        request: Request,
        client: Client,
        request_id: str,
        binding: str,
        error: str | None = None,
        username: str = "",
        status: int = 200,
    ) -> HTMLResponse:
        assert self.smart.csrf is not None
        page = pages.login_page(
            _lang(request), app=pages.AppInfo(client.client_id, client.name),
            action=self.endpoints(request).issuer + "/login", request_id=request_id,
            csrf=self.smart.csrf.issue(request_id, binding), error=error, username=username,
        )  # fmt: skip
        return _html(page, status)

    async def _pending(
        self, request: Request, request_id: str, csrf: str | None
    ) -> tuple[dict[str, Any], str] | Response:
        """The pending request bound to this browser, or the error page to answer."""
        binding = request.cookies.get(COOKIE, "")
        pending = await self.smart.state.pending(request_id) if request_id else None
        if pending is None or not binding or pending["binding"] != digest(binding):
            return _error_page(request, "expired_title", "expired_message")
        assert self.smart.csrf is not None
        if csrf is not None and not self.smart.csrf.check(request_id, csrf, binding):
            return _error_page(request, "invalid_request_title", pages.ERROR_CSRF, 403)
        return pending, binding

    async def _posted(self, request: Request) -> Posted | Response:
        """A login or consent form: its pending request, checked (cookie binding, CSRF)."""
        form = await request.form()
        request_id = str(form.get("request", ""))
        found = await self._pending(request, request_id, str(form.get("csrf", "")))
        if isinstance(found, Response):
            return found
        return Posted(form, request_id, *found)

    async def login(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        form, request_id, pending, binding = posted
        client = await self.smart.accounts.client(pending["client_id"])
        if client is None:
            return _error_page(request, "unknown_client_title", "unknown_client_message")
        username = str(form.get("username", ""))
        user = await self.smart.accounts.authenticate(username, str(form.get("password", "")))
        launch = await self._launch(pending)
        if user is None or (launch and launch.get("user") and launch["user"] != user.username):
            error = Unauthenticated("Sign-in failed: unknown user name or wrong password")
            await self.smart.hooks.interaction_failed(
                _ctx(request, self.endpoints(request).fhir_base), "login", error
            )
            return self._login_page(
                request, client, request_id, binding, pages.ERROR_INVALID_CREDENTIALS, username, 401
            )
        pending["username"] = user.username
        await self.smart.state.save_pending(request_id, pending)
        ctx = _ctx(request, self.endpoints(request).fhir_base)
        signed_in = Access(scopes=(), client_id=client.client_id, subject=user.username,
                           fhir_user=user.fhir_user)  # fmt: skip
        await self.smart.hooks.interaction_done(
            replace(ctx, access=signed_in), InteractionDone("login", 200)
        )
        return await self._consent_page(request, client, user, request_id, binding, pending)

    async def _launch(self, pending: dict[str, Any]) -> dict[str, Any] | None:
        launch = dict(pending["params"]).get("launch")
        return await self.smart.state.launch(launch) if launch else None

    def _needs_patient(self, scope: str, user: User, launch: dict[str, Any] | None) -> bool:
        if launch is not None and launch.get("patient"):
            return False
        if user.fhir_user and user.fhir_user.startswith("Patient/"):
            return False
        parsed = parse_scopes(scope)
        wants = "launch/patient" in parsed.context
        return wants or any(s.level == "patient" for s in parsed.resources)

    async def _consent_page(
        self,
        request: Request,
        client: Client,
        user: User,
        request_id: str,
        binding: str,
        pending: dict[str, Any],
        *,
        query: str = "",
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        assert self.smart.csrf is not None
        lang = _lang(request)
        scope = str(pending["scope"])
        launch = await self._launch(pending)
        patients = None
        if self._needs_patient(scope, user, launch):
            patients = await find_patients(self.smart.fhir, query)
        issuer = self.endpoints(request).issuer
        page = pages.consent_page(
            lang, app=pages.AppInfo(client.client_id, client.name), user=user.name,
            choices=pages.consent_choices(scope.split(), lang), action=issuer + "/consent",
            request_id=request_id, csrf=self.smart.csrf.issue(request_id, binding),
            patients=patients, patient_query=query, picker_action=issuer + "/authorize/patients",
            offline="offline_access" in scope.split(), error=error,
        )  # fmt: skip
        targets = tuple(t for t in map(pages.redirect_source, client.redirect_uris) if t)
        return _html(page, status, targets)

    async def picker(self, request: Request) -> Response:
        request_id = request.query_params.get("request", "")
        found = await self._pending(request, request_id, None)
        if isinstance(found, Response):
            return found
        pending, binding = found
        client = await self.smart.accounts.client(pending["client_id"])
        user = await self.smart.accounts.user(str(pending.get("username", "")))
        if client is None or user is None:
            return _error_page(request, "expired_title", "expired_message")
        query = request.query_params.get("q", "")[:100]
        return await self._consent_page(
            request, client, user, request_id, binding, pending, query=query
        )

    async def consent(self, request: Request) -> Response:
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        form, request_id, pending, binding = posted
        client = await self.smart.accounts.client(pending["client_id"])
        user = await self.smart.accounts.user(str(pending.get("username", "")))
        if client is None or user is None:
            return _error_page(request, "expired_title", "expired_message")
        endpoints = self.endpoints(request)
        oauth = self._oauth_request(endpoints, [tuple(p) for p in pending["params"]])
        try:
            grant = await self.smart.bridge.run_sync(self.smart.server.get_consent_grant, oauth)
        except OAuth2Error as error:
            return _oauth_error(request, error)
        launch = await self._launch(pending)
        if form.get("decision") != "approve":
            await self.smart.state.take_pending(request_id)
            answer = await self.smart.bridge.run_sync(
                self.smart.server.create_authorization_response, oauth, None, grant
            )
            return _redirect(answer.location or grant.redirect_uri)
        selected = " ".join(str(v) for v in form.getlist("scope"))
        scope = grant_scopes(selected, str(pending["scope"])) if selected else ""
        if not scope:
            return await self._consent_page(
                request, client, user, request_id, binding, pending,
                error=pages.ERROR_NO_SCOPE, status=400,
            )  # fmt: skip
        patient = await self._patient(form.get("patient"), scope, user, launch)
        if patient is False:
            return await self._consent_page(
                request, client, user, request_id, binding, pending,
                error=pages.ERROR_PATIENT_REQUIRED, status=400,
            )  # fmt: skip
        if await self.smart.state.take_pending(request_id) is None:
            return _error_page(request, "expired_title", "expired_message")
        if launch is not None:
            launch = await self.smart.state.take_launch(dict(pending["params"])["launch"])
            if launch is None:
                return _error_redirect(
                    grant.redirect_uri, "invalid_request", "the launch expired or was used",
                    oauth.payload.state,
                )  # fmt: skip
        oauth.scope = scope
        oauth.smart_context = self._context(client, user, scope, patient, launch, oauth)
        answer = await self.smart.bridge.run_sync(
            self.smart.server.create_authorization_response, oauth, oauth.smart_context, grant
        )
        return _redirect(answer.location or grant.redirect_uri)

    async def _patient(
        self, picked: object, scope: str, user: User, launch: dict[str, Any] | None
    ) -> str | bool | None:
        """The patient in context: from the launch, the patient user, or the picker (False:
        one is needed and none valid was picked)."""
        if launch is not None and launch.get("patient"):
            return str(launch["patient"])
        if user.fhir_user and user.fhir_user.startswith("Patient/"):
            return user.fhir_user.removeprefix("Patient/")
        if not self._needs_patient(scope, user, launch):
            return None
        if isinstance(picked, str) and picked and await patient_exists(self.smart.fhir, picked):
            return picked
        return False

    def _context(
        self,
        client: Client,
        user: User,
        scope: str,
        patient: str | bool | None,
        launch: dict[str, Any] | None,
        oauth: SmartRequest,
    ) -> GrantContext:
        ehr = launch is not None
        style = (launch or {}).get("smart_style_url") or (oauth.endpoints.style if ehr else None)
        return GrantContext(
            grant_id=secrets.token_urlsafe(16),
            client_id=client.client_id,
            scope=scope,
            username=user.username,
            fhir_user=user.fhir_user,
            patient=patient if isinstance(patient, str) else None,
            encounter=(launch or {}).get("encounter"),
            need_patient_banner=bool((launch or {}).get("need_patient_banner", True))
            if ehr
            else isinstance(patient, str),
            smart_style_url=style,
            nonce=oauth.payload.data.get("nonce"),
            auth_time=int(self.smart.now().timestamp()),
        )
