"""JSON APIs under bearer tokens: the EHR launch API (a portal creates the launch context an
EHR launch names: ``system/Launch.c``) and the administration of users and clients
(``system/Admin.*``: ``r``/``s`` to list, ``c`` to add, ``d`` to remove). Deleting a client or a
user revokes their grants."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fhir_server.auth.server.accounts import AccountError, new_client, new_user
from fhir_server.auth.server.patients import patient_exists
from fhir_server.auth.server.smart import SmartAuth
from fhir_server.auth.server.state import LAUNCH_SECONDS, new_secret
from fhir_server.auth.tokens import bearer_token
from fhir_server.core.access import ADMIN_TYPE, LAUNCH_TYPE, Access
from fhir_server.core.errors import FhirError, Forbidden, InvalidRequest, Unauthenticated

_NO_STORE = {"Cache-Control": "no-store"}


def _problem(status: int, error: str, description: str) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="fhir-server", error="{error}"'
    return JSONResponse({"error": error, "error_description": description}, status, headers)


class AdminApi:
    def __init__(self, smart: SmartAuth) -> None:
        self.smart = smart

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/auth/launch", self.launch, methods=["POST"]),
            Route("/auth/admin/users", self.users, methods=["GET", "POST"]),
            Route("/auth/admin/users/{username}", self.user, methods=["DELETE"]),
            Route("/auth/admin/clients", self.clients, methods=["GET", "POST"]),
            Route("/auth/admin/clients/{client_id}", self.client, methods=["DELETE"]),
            Route("/auth/grants", self.grants, methods=["GET"]),
            Route("/auth/grants/{grant_id}", self.revoke_grant, methods=["DELETE"]),
        ]

    async def _access(self, request: Request, letter: str, pseudo_type: str) -> Access:
        access = await self._user_access(request)
        if not any(s.level == "system" for s in access.granting(letter, pseudo_type)):
            raise Forbidden(f"This needs the scope system/{pseudo_type}.{letter}")
        return access

    async def _guarded(
        self, request: Request, letter: str, pseudo_type: str, action: Any
    ) -> Response:
        try:
            await self._access(request, letter, pseudo_type)
            return await action()  # type: ignore[no-any-return]
        except Unauthenticated as exc:
            return _problem(401, "invalid_token", exc.diagnostics)
        except Forbidden as exc:
            return _problem(403, "insufficient_scope", exc.diagnostics)
        except (AccountError, InvalidRequest) as exc:
            return _problem(400, "invalid_request", str(exc))
        except FhirError as exc:
            return _problem(400, "invalid_request", exc.diagnostics)

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise InvalidRequest("The body must be a JSON object") from None
        if not isinstance(body, dict):
            raise InvalidRequest("The body must be a JSON object")
        return body

    async def _user_access(self, request: Request) -> Access:
        """The caller's token, checked as the FHIR door checks it (SmartAuth.authenticate)."""
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("A bearer access token is required")
        fhir_base = self.smart.endpoints(str(request.base_url)).fhir_base
        return await self.smart.authenticate(token, fhir_base)

    async def grants(self, request: Request) -> Response:
        """The management endpoint: the apps a user has authorised (the caller's own grants),
        so a patient or clinician can see and revoke them (ONC: revocation at the patient's
        direction)."""
        try:
            access = await self._user_access(request)
        except Unauthenticated as exc:
            return _problem(401, "invalid_token", exc.diagnostics)
        grants = await self.smart.state.grants_of(access.subject)
        listed = [
            {"grant_id": g.grant_id, "client_id": g.client_id, "scope": g.scope,
             "patient": g.patient}
            for g in grants
        ]  # fmt: skip
        return JSONResponse({"grants": listed}, 200, _NO_STORE)

    async def revoke_grant(self, request: Request) -> Response:
        try:
            access = await self._user_access(request)
        except Unauthenticated as exc:
            return _problem(401, "invalid_token", exc.diagnostics)
        grant = await self.smart.state.grant(request.path_params["grant_id"])
        owner = None if grant is None else (grant.username or grant.client_id)
        if grant is None or owner != access.subject:
            return _problem(404, "not_found", "no such grant of yours")
        await self.smart.state.revoke_grant(grant.grant_id)
        return Response(status_code=204)

    async def launch(self, request: Request) -> Response:
        async def create() -> Response:
            body = await self._body(request)
            patient = body.get("patient")
            if not isinstance(patient, str) or not await patient_exists(self.smart.fhir, patient):
                raise InvalidRequest("patient must be the id of an existing Patient")
            user = body.get("user")
            if user is not None and await self.smart.accounts.user(str(user)) is None:
                raise InvalidRequest("user must be the name of a registered user")
            launch = {
                "patient": patient,
                "encounter": body.get("encounter"),
                "user": user,
                "need_patient_banner": bool(body.get("need_patient_banner", True)),
                "smart_style_url": body.get("smart_style_url"),
                "intent": body.get("intent"),
            }
            handle = new_secret(24)
            await self.smart.state.save_launch(handle, launch)
            return JSONResponse({"launch": handle, "expires_in": LAUNCH_SECONDS}, 201, _NO_STORE)

        return await self._guarded(request, "c", LAUNCH_TYPE, create)

    async def users(self, request: Request) -> Response:
        if request.method == "GET":

            async def listing() -> Response:
                users = [u.public_view() for u in await self.smart.accounts.users()]
                return JSONResponse({"users": users}, 200, _NO_STORE)

            return await self._guarded(request, "s", ADMIN_TYPE, listing)

        async def create() -> Response:
            body = await self._body(request)
            user = new_user(
                str(body.get("username", "")), str(body.get("password", "")),
                name=body.get("name"), fhir_user=body.get("fhir_user"),
            )  # fmt: skip
            await self.smart.accounts.add_user(user)
            return JSONResponse(user.public_view(), 201, _NO_STORE)

        return await self._guarded(request, "c", ADMIN_TYPE, create)

    async def user(self, request: Request) -> Response:
        async def delete() -> Response:
            username = request.path_params["username"]
            if not await self.smart.accounts.delete_user(username):
                return _problem(404, "not_found", f"no user {username!r}")
            for grant in await self.smart.state.grants_of(username):
                await self.smart.state.revoke_grant(grant.grant_id)
            return Response(status_code=204)

        return await self._guarded(request, "d", ADMIN_TYPE, delete)

    async def clients(self, request: Request) -> Response:
        if request.method == "GET":

            async def listing() -> Response:
                clients = [c.public_view() for c in await self.smart.accounts.clients()]
                return JSONResponse({"clients": clients}, 200, _NO_STORE)

            return await self._guarded(request, "s", ADMIN_TYPE, listing)

        async def create() -> Response:
            body = await self._body(request)
            kind = str(body.get("type", ""))
            secret = body.get("secret")
            generated = None
            if (
                kind == "confidential"
                and not secret
                and not (body.get("jwks") or body.get("jwks_url"))
            ):
                secret = generated = secrets.token_urlsafe(32)
            client = new_client(
                str(body.get("client_id", "")), kind, name=body.get("name"), secret=secret,
                redirect_uris=tuple(body.get("redirect_uris") or ()),
                launch_uri=body.get("launch_uri"), scope=body.get("scope"),
                jwks=body.get("jwks"), jwks_url=body.get("jwks_url"),
            )  # fmt: skip
            await self.smart.accounts.add_client(client)
            self.smart.forget_origins()
            view = client.public_view()
            if generated:
                view["client_secret"] = generated
            return JSONResponse(view, 201, _NO_STORE)

        return await self._guarded(request, "c", ADMIN_TYPE, create)

    async def client(self, request: Request) -> Response:
        async def delete() -> Response:
            client_id = request.path_params["client_id"]
            if not await self.smart.accounts.delete_client(client_id):
                return _problem(404, "not_found", f"no client {client_id!r}")
            self.smart.forget_client(client_id)  # its tokens stop working (FHIR door)
            return Response(status_code=204)

        return await self._guarded(request, "d", ADMIN_TYPE, delete)
