"""Issuing tokens: the access token (a JWT of :mod:`fhir_server.auth.tokens`), the refresh
token (opaque, rotated), the OpenID Connect ``id_token`` and the SMART token response with the
launch context (``patient``, ``encounter``, ``need_patient_banner``, ``smart_style_url``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from joserfc import jwt

from fhir_server.auth.keys import SIGNING_ALG, KeyRing
from fhir_server.auth.server.accounts import Client
from fhir_server.auth.server.bridge import LoopBridge
from fhir_server.auth.server.state import GrantContext, OAuthState, new_secret
from fhir_server.auth.tokens import (
    ACCESS_TOKEN_SECONDS,
    BACKEND_TOKEN_SECONDS,
    TokenClaims,
    issue_access_token,
)

ID_TOKEN_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class Endpoints:
    """The public URLs of this server (absolute, as clients see them)."""

    fhir_base: str
    issuer: str  # the OAuth/OpenID issuer: {origin}/auth

    @property
    def authorize(self) -> str:
        return f"{self.issuer}/authorize"

    @property
    def token(self) -> str:
        return f"{self.issuer}/token"

    @property
    def introspect(self) -> str:
        return f"{self.issuer}/introspect"

    @property
    def revoke(self) -> str:
        return f"{self.issuer}/revoke"

    @property
    def jwks(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def manage(self) -> str:
        return f"{self.issuer}/grants"

    @property
    def style(self) -> str:
        return f"{self.issuer}/smart-style.json"


class TokenFactory:
    """Called from authlib's grants, in the bridge's worker thread."""

    def __init__(
        self,
        state: OAuthState,
        bridge: LoopBridge,
        keyring: Callable[[], KeyRing],
        now: Callable[[], datetime],
    ) -> None:
        self._state = state
        self._bridge = bridge
        self._keyring = keyring
        self._now = now

    def issue(
        self,
        endpoints: Endpoints,
        client: Client,
        context: GrantContext,
        scope: str,
        *,
        refresh: bool,
    ) -> dict[str, Any]:
        context = dataclasses.replace(context, scope=scope)
        backend = client.type == "backend"
        lifetime = BACKEND_TOKEN_SECONDS if backend else ACCESS_TOKEN_SECONDS
        now = int(self._now().timestamp())
        claims = TokenClaims(
            issuer=endpoints.issuer,
            audience=endpoints.fhir_base,
            subject=context.username or client.client_id,
            client_id=client.client_id,
            scope=scope,
            grant_id=context.grant_id,
            issued_at=now,
            expires_at=now + lifetime,
            patient=context.patient,
            encounter=context.encounter,
            fhir_user=context.fhir_user,
            token_id=new_secret(16),
        )
        keyring = self._keyring()
        token: dict[str, Any] = {
            "access_token": issue_access_token(keyring, claims),
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope,
        }
        scopes = set(scope.split())
        # online_access (experimental in SMART 2.x: valid while the user's session lasts) is
        # not offered: this server keeps no SSO session to bind it to.
        if refresh and not backend and "offline_access" in scopes:
            refresh_token = new_secret()
            self._bridge.wait(self._state.save_refresh(refresh_token, context))
            token["refresh_token"] = refresh_token
        else:
            self._bridge.wait(self._state.save_grant(context, lifetime))
        token.update(launch_context(context))
        if "openid" in scopes and context.username:
            token["id_token"] = self.id_token(
                endpoints, keyring, client, context, now, "fhirUser" in scopes
            )
        return token

    def id_token(
        self,
        endpoints: Endpoints,
        keyring: KeyRing,
        client: Client,
        context: GrantContext,
        now: int,
        fhir_user: bool,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": endpoints.issuer,
            "sub": context.username,
            "aud": client.client_id,
            "iat": now,
            "exp": now + ID_TOKEN_SECONDS,
            "auth_time": context.auth_time or now,
        }
        if context.nonce:
            claims["nonce"] = context.nonce
        if fhir_user and context.fhir_user:
            claims["fhirUser"] = f"{endpoints.fhir_base}/{context.fhir_user}"
        header = {"alg": SIGNING_ALG, "kid": keyring.kid, "typ": "JWT"}
        return jwt.encode(header, claims, keyring.keys, algorithms=[SIGNING_ALG])


def launch_context(context: GrantContext) -> dict[str, Any]:
    """The SMART launch context parameters of a token response (and of introspection)."""
    out: dict[str, Any] = {}
    if context.patient:
        out["patient"] = context.patient
    if context.encounter:
        out["encounter"] = context.encounter
    if context.need_patient_banner is not None:
        out["need_patient_banner"] = context.need_patient_banner
    if context.smart_style_url:
        out["smart_style_url"] = context.smart_style_url
    return out
