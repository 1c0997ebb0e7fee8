"""authlib's grants, configured for SMART App Launch 2.x and Backend Services.

- :class:`SmartCodeGrant`: authorization code; the code is single-use (taking it is atomic; a
  second use revokes what the first issued); its context (user, patient, encounter, banner,
  style, nonce, PKCE challenge) travels with it.
- :class:`StrictPkce`: SMART "SHALL support S256 and SHALL NOT support plain" and "the EHR SHALL
  ensure that the code_verifier is present and valid" — for every client, confidential too
  (stock authlib defaults to ``plain`` and only forces a verifier on public clients).
- :class:`SmartRefreshGrant`: rotation on every use; a rotated-out token presented again revokes
  the grant; the requested scope must be a subset.
- :class:`SmartClientCredentialsGrant`: Backend Services, ``private_key_jwt`` only, no refresh.
"""

from __future__ import annotations

import secrets
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, InvalidScopeError, OAuth2Request, grants
from authlib.oauth2.rfc7636 import CodeChallenge

from fhir_server.auth.scopes import grant as grant_scope
from fhir_server.auth.server.bridge import LoopBridge
from fhir_server.auth.server.issuer import TokenFactory
from fhir_server.auth.server.models import ClientModel, CodeModel, RefreshModel
from fhir_server.auth.server.state import GrantContext, OAuthState

APP_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class SmartDeps:
    """What the grants need, attached to the server as ``server.smart``."""

    def __init__(self, state: OAuthState, bridge: LoopBridge, tokens: TokenFactory) -> None:
        self.state = state
        self.bridge = bridge
        self.tokens = tokens


def _deps(grant: grants.BaseGrant) -> SmartDeps:
    deps: SmartDeps = grant.server.smart
    return deps


class StrictPkce(CodeChallenge):  # type: ignore[misc]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (authlib's class attribute)

    def validate_code_challenge(self, grant: grants.BaseGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
                redirect_uri=redirect_uri,
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError(
                "code_challenge_method must be S256 (plain is not supported)",
                redirect_uri=redirect_uri,
            )
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: grants.BaseGrant, result: Any) -> None:
        verifier = grant.request.form.get("code_verifier")
        if not verifier:
            raise InvalidRequestError("Missing 'code_verifier' (PKCE is required)")
        super().validate_code_verifier(grant, result)


class SmartCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = APP_AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        context: GrantContext = request.smart_context
        data = request.payload.data
        context.redirect_uri = data.get("redirect_uri")
        context.code_challenge = data.get("code_challenge")
        context.code_challenge_method = data.get("code_challenge_method")
        # What the user consented to (set by the consent step); authlib re-validates the request
        # just before this and resets request.scope to everything the client may get.
        context.scope = context.scope or request.scope
        deps = _deps(self)
        deps.bridge.wait(deps.state.save_code(code, context))

    def query_authorization_code(self, code: str, client: ClientModel) -> CodeModel | None:
        deps = _deps(self)
        context = deps.bridge.wait(deps.state.take_code(code))
        if context is None or context.client_id != client.client_id:
            return None
        return CodeModel(context)

    def delete_authorization_code(self, authorization_code: CodeModel) -> None:
        pass  # taken (deleted) atomically when queried

    def authenticate_user(self, authorization_code: CodeModel) -> GrantContext:
        return authorization_code.context

    def generate_token(
        self, user: Any = None, scope: str | None = None, **_: Any
    ) -> dict[str, Any]:
        client: ClientModel = self.request.client
        code: CodeModel = self.request.authorization_code
        return _deps(self).tokens.issue(
            self.request.endpoints, client.client, code.context, code.context.scope,
            refresh=client.check_grant_type("refresh_token"),
        )  # fmt: skip


class SmartRefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = [*APP_AUTH_METHODS, "public_refresh"]  # noqa: RUF012
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshModel | None:
        deps = _deps(self)
        client: ClientModel = self.request.client
        context = deps.bridge.wait(deps.state.peek_refresh(refresh_token))
        if context is None:
            deps.bridge.wait(deps.state.take_refresh(refresh_token))  # a replay revokes the grant
            return None
        if context.client_id != client.client_id:
            return None
        requested = self.request.payload.scope
        if requested and not set(requested.split()) <= set(context.scope.split()):
            raise InvalidScopeError("a refreshed token's scope must be a subset of the grant's")
        taken = deps.bridge.wait(deps.state.take_refresh(refresh_token))
        return None if taken is None else RefreshModel(taken)

    def authenticate_user(self, refresh_token: RefreshModel) -> GrantContext:
        return refresh_token.context

    def revoke_old_credential(self, refresh_token: RefreshModel) -> None:
        pass  # taken (rotated out) when authenticated

    def generate_token(
        self, user: Any = None, scope: str | None = None, **_: Any
    ) -> dict[str, Any]:
        client: ClientModel = self.request.client
        token: RefreshModel = self.request.refresh_token
        granted = scope or token.context.scope
        endpoints = self.request.endpoints
        return _deps(self).tokens.issue(
            endpoints, client.client, token.context, granted, refresh=True
        )


class SmartClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012

    def validate_requested_scope(self) -> None:
        client: ClientModel = self.request.client
        requested = self.request.payload.scope or client.client.scope
        granted = grant_scope(requested, client.client.scope)
        if not granted:
            raise InvalidScopeError("none of the requested scopes is allowed for this client")
        self.request.scope = granted

    def generate_token(
        self, user: Any = None, scope: str | None = None, **_: Any
    ) -> dict[str, Any]:
        client: ClientModel = self.request.client
        context = GrantContext(
            grant_id=secrets.token_urlsafe(16), client_id=client.client_id, scope=self.request.scope
        )
        endpoints = self.request.endpoints
        return _deps(self).tokens.issue(
            endpoints, client.client, context, self.request.scope, refresh=False
        )
