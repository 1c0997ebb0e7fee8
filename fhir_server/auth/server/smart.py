"""SmartAuth: the authorization server's object graph (built by bootstrap, started in the app's
lifespan): accounts, state, signing keys, the authlib server and the token verifier the FHIR
door uses."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from fhir_server.auth.jwks_cache import JwksCache
from fhir_server.auth.keys import KEY_KIND, KeyRing, new_key_record
from fhir_server.auth.server import discovery
from fhir_server.auth.server.accounts import Accounts
from fhir_server.auth.server.bridge import LoopBridge
from fhir_server.auth.server.client_auth import PrivateKeyJwt
from fhir_server.auth.server.csrf import CsrfTokens
from fhir_server.auth.server.endpoints import (
    BearerTokenAuth,
    SmartIntrospection,
    SmartRevocation,
    TokenLookup,
)
from fhir_server.auth.server.grants import SmartDeps
from fhir_server.auth.server.issuer import Endpoints, TokenFactory
from fhir_server.auth.server.oauth import SmartAuthorizationServer
from fhir_server.auth.server.state import GRANT_CACHE_SECONDS, OAuthState
from fhir_server.auth.tokens import ExternalIssuer, TokenVerifier
from fhir_server.core.access import Access
from fhir_server.core.errors import Unauthenticated
from fhir_server.core.urls import origin
from fhir_server.events.hooks import Hooks
from fhir_server.interactions.service import FhirService
from fhir_server.storage.records import RecordStore

SECRET_KIND = "server-secret"
FHIR_PATH = "/fhir"
AUTH_PATH = "/auth"
ORIGINS_TTL_SECONDS = 60.0
PURGE_SECONDS = 300.0
log = logging.getLogger(__name__)


class SmartAuth:
    def __init__(
        self,
        records: RecordStore,
        fhir: FhirService,
        hooks: Hooks,
        now: Callable[[], datetime],
        *,
        base_url: str | None = None,
        external: Sequence[ExternalIssuer] = (),
        port: int | None = None,
    ) -> None:
        # authlib logs every token it issues at DEBUG ("Issue token %r"): its loggers never go
        # below INFO, whatever the operator's level (no tokens in logs, RFC 9700 §4.3; S22).
        authlib_log = logging.getLogger("authlib")
        if authlib_log.level < logging.INFO:  # NOTSET (inherit) included
            authlib_log.setLevel(logging.INFO)
        self.records = records
        self.fhir = fhir
        self.hooks = hooks
        self.now = now
        self.base_url = base_url.rstrip("/") if base_url else None
        #: The HTTP port the server listens on (a token for it is taken from a client whose
        #: Host header names no port: TokenVerifier.port_left_out).
        self.port = port
        self.accounts = Accounts(records)
        self.state = OAuthState(records, now)
        self.bridge = LoopBridge()
        self.jwks = JwksCache()
        self._keyring: KeyRing | None = None
        self._origins: tuple[float, frozenset[str]] | None = None
        self._clients_seen: dict[str, float] = {}  # client id -> taken as registered until
        self._purger: asyncio.Task[None] | None = None
        self.csrf: CsrfTokens | None = None
        self.verifier = TokenVerifier(
            self.keyring, self.state.grant_active, external=external, jwks=self.jwks, now=now
        )
        lookup = TokenLookup(self.state, self.bridge, self.keyring, now)
        deps = SmartDeps(
            self.state, self.bridge, TokenFactory(self.state, self.bridge, self.keyring, now)
        )
        self.server = SmartAuthorizationServer(
            self.accounts,
            deps,
            PrivateKeyJwt(self.state, self.bridge, self.jwks, now),
            BearerTokenAuth(self.verifier, self.bridge),
            SmartIntrospection(lookup),
            SmartRevocation(lookup),
        )

    async def registered_origins(self) -> frozenset[str]:
        """Web origins of the registered apps (CORS), cached for a minute."""
        now = time.monotonic()
        if self._origins is None or now - self._origins[0] > ORIGINS_TTL_SECONDS:
            origins: set[str] = set()
            for client in await self.accounts.clients():
                origins |= client.origins
            self._origins = (now, frozenset(origins))
        return self._origins[1]

    def forget_origins(self) -> None:
        self._origins = None

    async def client_active(self, client_id: str) -> bool:
        """Whether the client is still registered; a live answer is kept a few seconds (as a
        grant's), and :meth:`forget_client` drops it at once in this process."""
        now = time.monotonic()
        if self._clients_seen.get(client_id, 0.0) > now:
            return True
        live = await self.accounts.client(client_id) is not None
        if live:
            self._clients_seen[client_id] = now + GRANT_CACHE_SECONDS
        return live

    def forget_client(self, client_id: str) -> None:
        self._clients_seen.pop(client_id, None)
        self.forget_origins()

    def keyring(self) -> KeyRing:
        if self._keyring is None:
            raise RuntimeError("SmartAuth.start() was not called")
        return self._keyring

    async def stop(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
            self._purger = None

    async def _purge_forever(self) -> None:
        """Expired codes, tokens, launches and assertion ids are removed every few minutes."""
        while True:
            await asyncio.sleep(PURGE_SECONDS)
            try:
                removed = await self.records.purge_expired(self.now())
            except Exception:
                log.exception("purging expired authorization records failed")
            else:
                log.debug("purged %d expired authorization records", removed)

    async def start(self) -> None:
        """Load the signing keys and the form secret, making them on first start."""
        keys = await self.records.find(KEY_KIND)
        if not keys:
            record = new_key_record(self.now().isoformat())
            await self.records.put(KEY_KIND, record["jwk"]["kid"], record, if_absent=True)
            keys = await self.records.find(KEY_KIND)
        self._keyring = KeyRing.from_records(keys)
        await self.records.put(
            SECRET_KIND, "csrf", {"secret": secrets.token_hex(32)}, if_absent=True
        )
        secret = await self.records.get(SECRET_KIND, "csrf")
        assert secret is not None
        self.csrf = CsrfTokens(bytes.fromhex(secret["secret"]))
        self._purger = asyncio.create_task(self._purge_forever(), name="purge-auth-records")

    async def authenticate(self, token: str, fhir_base: str) -> Access:
        """The FHIR door's check of a bearer token, for the FHIR base the caller used."""
        fhir_base, issuer = self.verifier.port_left_out(
            token, fhir_base, origin(fhir_base) + AUTH_PATH, self.port
        )
        access = await self.verifier.verify(token, audience=fhir_base, issuer=issuer)
        if access.issuer == issuer and not await self.client_active(access.client_id):
            raise Unauthenticated("The access token's client is no longer registered")
        return access

    def capability_security(self, fhir_base: str) -> dict[str, Any]:
        """CapabilityStatement.rest.security for the FHIR base a caller used."""
        return discovery.capability_security(self.endpoints_for_fhir_base(fhir_base))

    def endpoints_for_fhir_base(self, fhir_base: str) -> Endpoints:
        if self.base_url:
            return self.endpoints("")
        return Endpoints(fhir_base=fhir_base.rstrip("/"), issuer=origin(fhir_base) + AUTH_PATH)

    def endpoints(self, request_base: str) -> Endpoints:
        """The public URLs, from ``--base-url`` (the FHIR base) or the request's own base."""
        if self.base_url:
            root = origin(self.base_url)
            fhir_base = self.base_url
        else:
            root = request_base.rstrip("/")
            fhir_base = root + FHIR_PATH
        return Endpoints(fhir_base=fhir_base, issuer=root + AUTH_PATH)
