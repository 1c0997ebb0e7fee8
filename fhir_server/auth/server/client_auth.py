"""Client authentication methods beyond authlib's built-in ones.

``private_key_jwt`` (SMART client-confidential-asymmetric, RFC 7523 §3), stricter than authlib's
``JWTBearerClientAssertion``, which rejects SMART's mandatory RS384/ES384 (it lets joserfc fall
back to its "recommended" RS256/ES256/HS256) and does not implement SMART's key selection:

- ``alg`` RS384 or ES384 only (``none``, HS*, anything else: ``invalid_client``);
- ``iss`` = ``sub`` = a registered asymmetric client; ``aud`` = the token URL; ``exp`` present
  and at most 5 minutes ahead; a ``jti`` not seen before for that client within its lifetime;
- exactly one key of the client's JWKS selected by ``kid`` and a ``kty`` matching ``alg``;
- ``jku``, when present, must equal the registered JWKS URL, else verification fails;
- a JWKS URL is fetched through :class:`~fhir_server.auth.jwks_cache.JwksCache` (Cache-Control).

``public_refresh``: a public client refreshing without sending ``client_id`` (SMART allows it;
client-js does it) is identified by its refresh token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError

from fhir_server.auth.jwks_cache import JwksCache, JwksFetchError, parse_jwks
from fhir_server.auth.server.bridge import LoopBridge
from fhir_server.auth.server.models import ClientModel
from fhir_server.auth.server.state import OAuthState

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("RS384", "ES384")
_KTY = {"RS384": "RSA", "ES384": "EC"}
MAX_ASSERTION_SECONDS = 300
LEEWAY_SECONDS = 30

QueryClient = Callable[[str], ClientModel | None]


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(
        self,
        state: OAuthState,
        bridge: LoopBridge,
        jwks: JwksCache,
        now: Callable[[], datetime],
    ) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY_SECONDS)
        self._state = state
        self._bridge = bridge
        self._jwks = jwks
        self._now = now

    def get_audiences(self) -> list[str]:
        raise NotImplementedError  # the token URL is per request: see _check_claims

    def __call__(self, query_client: QueryClient, request: OAuth2Request) -> ClientModel | None:
        form = request.form
        assertion_type = form.get("client_assertion_type")
        assertion = form.get("client_assertion")
        if assertion_type is None and assertion is None:
            return None  # not this method
        if assertion_type != ASSERTION_TYPE:
            raise InvalidClientError(description=f"client_assertion_type must be {ASSERTION_TYPE}")
        if not assertion:
            raise InvalidClientError(description="client_assertion is missing")
        headers, claims = self.extract_assertion(assertion)
        alg = headers.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise InvalidClientError(
                description="the client assertion must be signed RS384 or ES384"
            )
        client_id = claims.get("sub")
        if not isinstance(client_id, str) or claims.get("iss") != client_id:
            raise InvalidClientError(
                description="the assertion's iss and sub must be the client id"
            )
        model = query_client(client_id)
        if model is None or not model.client.asymmetric:
            raise InvalidClientError(description="no asymmetric client is registered with that id")
        key = self._select_key(model, headers, str(alg))
        try:
            verified = jwt.decode(assertion, key, algorithms=[str(alg)])
        except (JoseError, ValueError):
            raise InvalidClientError(
                description="the client assertion's signature is not valid"
            ) from None
        self._check_claims(dict(verified.claims), client_id, request.endpoints.token)
        request.client = model
        return self.authenticate_client(model)  # type: ignore[no-any-return]

    def _select_key(self, model: ClientModel, headers: dict[str, Any], alg: str) -> Any:
        client = model.client
        kid = headers.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidClientError(description="the client assertion's header needs a kid")
        jku = headers.get("jku")
        if jku is not None and jku != client.jwks_url:
            raise InvalidClientError(
                description="the assertion's jku is not the registered JWKS URL"
            )
        try:
            if client.jwks is not None:
                keys = parse_jwks(client.jwks)
            else:
                assert client.jwks_url is not None
                keys = self._bridge.wait(self._jwks.get(client.jwks_url, kid=kid))
        except (JwksFetchError, ValueError, TypeError) as exc:
            raise InvalidClientError(
                description=f"the client's keys are unavailable: {exc}"
            ) from None
        matching = [k for k in keys.keys if k.kid == kid and k.key_type == _KTY[alg]]
        if len(matching) != 1:
            raise InvalidClientError(
                description=f"the client's JWKS must hold exactly one {_KTY[alg]} key with that kid"
            )
        return matching[0]

    def _check_claims(self, claims: dict[str, Any], client_id: str, token_url: str) -> None:
        now = self._now().timestamp()
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if token_url not in audiences:
            raise InvalidClientError(description="the assertion's aud must be the token URL")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise InvalidClientError(description="the assertion needs an exp")
        if exp < now - LEEWAY_SECONDS:
            raise InvalidClientError(description="the client assertion has expired")
        if exp > now + MAX_ASSERTION_SECONDS + LEEWAY_SECONDS:
            raise InvalidClientError(description="the assertion's exp is more than 5 minutes ahead")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise InvalidClientError(description="the assertion needs a jti")
        expires = datetime.fromtimestamp(exp + LEEWAY_SECONDS, UTC)
        if not self._bridge.wait(self._state.first_use_of_jti(client_id, jti, expires)):
            raise InvalidClientError(description="this client assertion (jti) was used before")


class PublicRefresh:
    """A public client identified by the refresh token it presents (no client_id sent)."""

    def __init__(self, state: OAuthState, bridge: LoopBridge) -> None:
        self._state = state
        self._bridge = bridge

    def __call__(self, query_client: QueryClient, request: OAuth2Request) -> ClientModel | None:
        form = request.form
        if form.get("grant_type") != "refresh_token" or request.payload.client_id:
            return None
        token = form.get("refresh_token")
        if not token or "authorization" in {k.lower() for k in request.headers}:
            return None
        context = self._bridge.wait(self._state.peek_refresh(token))
        if context is None:
            self._bridge.wait(self._state.take_refresh(token))  # a replay revokes its grant
            return None
        model = query_client(context.client_id)
        if model is None or model.client.type != "public":
            return None
        return model
