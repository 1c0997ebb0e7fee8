"""Token introspection (RFC 7662, SMART token-introspection) and revocation (RFC 7009).

Introspection is access-controlled: a registered confidential client authenticates (Basic,
post or ``private_key_jwt``), or a caller presents a valid access token as a bearer token
(SMART: "SHALL accept a SMART bearer token"). An unknown, expired or revoked token gives exactly
``{"active": false}``; an active one its scope, client, expiry, subject, issuer, ``fhirUser``
and launch context. Revoking an access or refresh token revokes its whole grant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError

from fhir_server.auth.keys import SIGNING_ALG, KeyRing
from fhir_server.auth.server.bridge import LoopBridge
from fhir_server.auth.server.issuer import launch_context
from fhir_server.auth.server.models import ClientModel
from fhir_server.auth.server.state import GrantContext, OAuthState
from fhir_server.auth.tokens import TokenVerifier, bearer_token

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]


@dataclass(slots=True)
class KnownToken:
    """An access token (its verified claims) or a refresh token (its grant context)."""

    client_id: str
    grant_id: str
    claims: dict[str, Any] | None
    context: GrantContext | None
    active: bool

    def check_client(self, client: ClientModel) -> bool:
        return bool(client.client_id == self.client_id)

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return not self.active


class TokenLookup:
    def __init__(
        self,
        state: OAuthState,
        bridge: LoopBridge,
        keyring: Callable[[], KeyRing],
        now: Callable[[], datetime],
    ) -> None:
        self.state = state
        self.bridge = bridge
        self._keyring = keyring
        self._now = now

    def find(self, token: str, hint: str | None) -> KnownToken | None:
        order = ("refresh_token", "access_token") if hint == "refresh_token" else (
            "access_token", "refresh_token",
        )  # fmt: skip
        for kind in order:
            found = self._access(token) if kind == "access_token" else self._refresh(token)
            if found is not None:
                return found
        return None

    def _access(self, token: str) -> KnownToken | None:
        try:
            claims = dict(jwt.decode(token, self._keyring().keys, algorithms=[SIGNING_ALG]).claims)
        except (JoseError, ValueError):
            return None
        grant_id = str(claims.get("gid", ""))
        exp = claims.get("exp")
        live = isinstance(exp, int | float) and exp > self._now().timestamp()
        active = live and self.bridge.wait(self.state.grant_active(grant_id))
        return KnownToken(str(claims.get("client_id", "")), grant_id, claims, None, active)

    def _refresh(self, token: str) -> KnownToken | None:
        context = self.bridge.wait(self.state.peek_refresh(token))
        if context is None:
            return None
        active = self.bridge.wait(self.state.grant_active(context.grant_id))
        return KnownToken(context.client_id, context.grant_id, None, context, active)


class BearerTokenAuth:
    """Client authentication at the introspection endpoint by a valid access token."""

    def __init__(self, verifier: TokenVerifier, bridge: LoopBridge) -> None:
        self._verifier = verifier
        self._bridge = bridge

    def __call__(self, query_client: Callable[[str], ClientModel | None],
                 request: OAuth2Request) -> ClientModel | None:  # fmt: skip
        header = next((v for k, v in request.headers.items() if k.lower() == "authorization"), "")
        token = bearer_token(str(header))
        if token is None:
            return None
        try:
            endpoints = request.endpoints
            verify = self._verifier.verify(
                token, audience=endpoints.fhir_base, issuer=endpoints.issuer
            )
            access = self._bridge.wait(verify)
        except Exception:  # any failure: not authenticated by this method
            return None
        return query_client(access.client_id)


class SmartIntrospection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [*TOKEN_AUTH_METHODS, "bearer_token"]  # noqa: RUF012

    def __init__(self, lookup: TokenLookup) -> None:
        super().__init__()
        self._lookup = lookup

    def query_token(self, token_string: str, token_type_hint: str | None) -> KnownToken | None:
        return self._lookup.find(token_string, token_type_hint)

    def check_permission(self, token: KnownToken, client: ClientModel, request: Any) -> bool:
        return True  # any authenticated caller (a resource server, the app itself) may ask

    def introspect_token(self, token: KnownToken) -> dict[str, Any]:
        if token.claims is not None:
            claims = token.claims
            out: dict[str, Any] = {
                "active": True,
                "scope": claims.get("scope", ""),
                "client_id": token.client_id,
                "exp": claims.get("exp"),
                "iat": claims.get("iat"),
                "sub": claims.get("sub"),
                "iss": claims.get("iss"),
                "aud": claims.get("aud"),
                "token_type": "Bearer",
            }
            for name in ("patient", "encounter", "fhirUser"):
                if claims.get(name):
                    out[name] = claims[name]
            if claims.get("fhirUser"):
                out["fhirUser"] = f"{claims['aud']}/{claims['fhirUser']}"
            return out
        context = token.context
        assert context is not None
        return {
            "active": True,
            "scope": context.scope,
            "client_id": context.client_id,
            "sub": context.username or context.client_id,
            "token_type": "refresh_token",
            **launch_context(context),
        }


class SmartRevocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = [*TOKEN_AUTH_METHODS, "none"]  # noqa: RUF012

    def __init__(self, lookup: TokenLookup) -> None:
        super().__init__()
        self._lookup = lookup

    def query_token(self, token_string: str, token_type_hint: str | None) -> KnownToken | None:
        return self._lookup.find(token_string, token_type_hint)

    def revoke_token(self, token: KnownToken, request: Any) -> None:
        lookup = self._lookup
        lookup.bridge.wait(lookup.state.revoke_grant(token.grant_id))
