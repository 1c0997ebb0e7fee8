"""Access tokens: signed JWTs (RS256, with ``kid``) issued by this server, and their verification
by the FHIR door, which also accepts the tokens of configured external identity providers.

A token of ours names its grant (``gid``); revoking the grant (RFC 7009, code replay, refresh
token replay, a user's revocation) makes every token of it fail here at once, whatever its
``exp``. The audience (``aud``) must be this server's FHIR base URL (SMART app-launch "Access
FHIR API": the resource server SHALL validate it), compared without a trailing slash.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from joserfc import jws, jwt
from joserfc.errors import JoseError

from fhir_server.auth.jwks_cache import JwksCache, JwksFetchError
from fhir_server.auth.keys import SIGNING_ALG, KeyRing
from fhir_server.auth.scopes import access_scopes
from fhir_server.core.access import Access
from fhir_server.core.errors import Unauthenticated

#: Lifetimes (SMART: access tokens SHOULD live at most an hour; backend services at most 300 s).
ACCESS_TOKEN_SECONDS = 3600
BACKEND_TOKEN_SECONDS = 300
#: Clock skew tolerated on ``exp``/``iat``/``nbf``.
LEEWAY_SECONDS = 30
#: Signature algorithms accepted from external identity providers.
EXTERNAL_ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), or None."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def normalise_base(url: str) -> str:
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What an access token of ours says (the JWT claims, with SMART's launch context)."""

    issuer: str
    audience: str
    subject: str
    client_id: str
    scope: str
    grant_id: str
    issued_at: int
    expires_at: int
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    token_id: str = ""

    def to_jwt_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.audience,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "jti": self.token_id or secrets.token_urlsafe(16),
            "client_id": self.client_id,
            "scope": self.scope,
            "gid": self.grant_id,
        }
        for name, value in (
            ("patient", self.patient),
            ("encounter", self.encounter),
            ("fhirUser", self.fhir_user),
        ):
            if value:
                claims[name] = value
        return claims


def issue_access_token(keyring: KeyRing, claims: TokenClaims) -> str:
    header = {"alg": SIGNING_ALG, "kid": keyring.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims.to_jwt_claims(), keyring.keys, algorithms=[SIGNING_ALG])


@dataclass(frozen=True, slots=True)
class ExternalIssuer:
    """An external identity provider whose tokens are accepted: ``issuer`` must equal the
    token's ``iss``; keys come from ``jwks_url``. Scopes are read from ``scope`` (a string) or
    ``scp`` (a list) and mean what SMART scopes mean here; ``patient`` and ``fhirUser`` claims
    give the launch context. ``audience``: the expected ``aud``, the FHIR base by default."""

    issuer: str
    jwks_url: str
    audience: str | None = None


GrantCheck = Callable[[str], Awaitable[bool]]


class TokenVerifier:
    """Verifies a bearer token and returns the :class:`Access` it grants, or raises
    :class:`Unauthenticated` saying why (never echoing the token)."""

    def __init__(
        self,
        keyring: Callable[[], KeyRing],
        grant_active: GrantCheck,
        *,
        external: Sequence[ExternalIssuer] = (),
        jwks: JwksCache | None = None,
        now: Callable[[], datetime],
    ) -> None:
        self._keyring = keyring
        self._grant_active = grant_active
        self._external = {e.issuer: e for e in external}
        self._jwks = jwks or JwksCache()
        self._now = now

    def port_left_out(
        self, token: str, fhir_base: str, issuer: str, listening: int | None
    ) -> tuple[str, str]:
        """The (FHIR base, own issuer) to check ``token`` against: the request's own, unless
        its Host named no port (RFC 9110 §7.2 asks for one other than the scheme's default, but
        dicomweb-client 0.61 sends the bare host name) while the token's ``iss`` is that same
        issuer at ``listening``, the port this server listens on, and not a trusted external
        one: then both at that port. Nothing else is relaxed: the token must still be signed
        by this server and name that base as its audience."""
        requested = urlsplit(issuer)
        try:
            claimed = _peek_claims(token).get("iss")
            stated = urlsplit(claimed) if isinstance(claimed, str) else None
            port = stated.port if stated is not None else None
        except ValueError:
            return fhir_base, issuer
        if (
            stated is None
            or port is None
            or port != listening
            or requested.port is not None
            or claimed in self._external
            or stated.username is not None
            or (stated.scheme, stated.hostname, stated.path, stated.query, stated.fragment)
            != (requested.scheme, requested.hostname, requested.path, "", "")
        ):
            return fhir_base, issuer
        at_port = f"{stated.scheme}://{stated.netloc}"
        return at_port + urlsplit(fhir_base).path, at_port + stated.path

    async def verify(self, token: str, *, audience: str, issuer: str) -> Access:
        """``audience``: this server's FHIR base as the caller sees it; ``issuer``: this
        server's own token issuer (``{origin}/auth``)."""
        try:
            unverified = _peek_claims(token)
        except ValueError as exc:
            raise Unauthenticated(f"The access token is not a JWT ({exc})") from None
        claimed = unverified.get("iss")
        if claimed == issuer:
            return await self._verify_own(token, audience, issuer)
        external = self._external.get(claimed) if isinstance(claimed, str) else None
        if external is None:
            raise Unauthenticated("The access token was not issued by a trusted issuer")
        return await self._verify_external(token, audience, external)

    async def _verify_own(self, token: str, audience: str, issuer: str) -> Access:
        claims = self._decode(token, self._keyring().keys, (SIGNING_ALG,))
        self._check_times(claims)
        self._check_audience(claims, audience)
        grant_id = claims.get("gid")
        if not isinstance(grant_id, str) or not await self._grant_active(grant_id):
            raise Unauthenticated("The access token was revoked")
        return _access(claims, issuer=issuer, grant_id=grant_id)

    async def _verify_external(self, token: str, audience: str, external: ExternalIssuer) -> Access:
        kid = _peek_header(token).get("kid")
        try:
            keys = await self._jwks.get(
                external.jwks_url, kid=kid if isinstance(kid, str) else None
            )
        except JwksFetchError as exc:
            raise Unauthenticated(f"The identity provider's keys are unavailable: {exc}") from None
        claims = self._decode(token, keys, EXTERNAL_ALGORITHMS)
        self._check_times(claims)
        self._check_audience(claims, external.audience or audience)
        return _access(claims, issuer=external.issuer, grant_id="")

    @staticmethod
    def _decode(token: str, keys: Any, algorithms: Sequence[str]) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, keys, algorithms=list(algorithms))
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(f"The access token's signature is not valid ({exc})") from None
        return dict(decoded.claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._now().timestamp()
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise Unauthenticated("The access token has no expiry ('exp')")
        if now > exp + LEEWAY_SECONDS:
            raise Unauthenticated("The access token has expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + LEEWAY_SECONDS < nbf:
            raise Unauthenticated("The access token is not valid yet")

    @staticmethod
    def _check_audience(claims: dict[str, Any], audience: str) -> None:
        aud = claims.get("aud")
        given = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if normalise_base(audience) not in {normalise_base(str(a)) for a in given}:
            raise Unauthenticated(
                "The access token was issued for another server (its 'aud' is not this FHIR "
                "base URL)"
            )


def _access(claims: dict[str, Any], *, issuer: str, grant_id: str) -> Access:
    scope = claims.get("scope")
    if not isinstance(scope, str):
        scp = claims.get("scp")
        scope = " ".join(str(s) for s in scp) if isinstance(scp, list) else ""
    client_id = claims.get("client_id") or claims.get("azp") or ""
    return Access(
        scopes=access_scopes(scope),
        client_id=str(client_id),
        subject=str(claims.get("sub", "")),
        patient=_text(claims.get("patient")),
        encounter=_text(claims.get("encounter")),
        fhir_user=_text(claims.get("fhirUser")),
        issuer=issuer,
        token_id=str(claims.get("jti", "")),
        grant_id=grant_id,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _peek_claims(token: str) -> dict[str, Any]:
    try:
        payload = jws.extract_compact(token.encode("ascii")).payload
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise ValueError(str(exc)) from None
    try:
        claims = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ValueError("its payload is not JSON") from None
    if not isinstance(claims, dict):
        raise ValueError("its payload is not a JSON object")
    return claims


def _peek_header(token: str) -> dict[str, Any]:
    try:
        return dict(jws.extract_compact(token.encode("ascii")).headers())
    except (JoseError, ValueError, UnicodeEncodeError):
        return {}
