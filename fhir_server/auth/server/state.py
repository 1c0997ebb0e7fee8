"""The authorization server's short- and long-lived state, over the record port.

Secrets handed to clients (codes, refresh tokens, launch handles) are stored only under their
SHA-256, so a copy of the database does not yield usable tokens. Single use is the record port's
atomic ``take``. A *grant* is one authorization (one code exchange, or one client-credentials
token): every access and refresh token names it, and deleting it revokes them all at once:

- a second use of a code revokes what the first use issued (RFC 6749 §4.1.2, RFC 9700 §4.5);
- a rotated-out refresh token presented again revokes the whole grant (RFC 9700 §4.14.2);
- RFC 7009 revocation, a user's revocation and deleting a client revoke grants.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fhir_server.storage.records import RecordStore

CODE_SECONDS = 60
USED_CODE_SECONDS = 600
PENDING_SECONDS = 600
LAUNCH_SECONDS = 300
#: ONC (g)(10): refresh tokens valid for at least 3 months; each refresh renews the period.
REFRESH_DAYS = 92

GRANT, CODE, USED_CODE, REFRESH, USED_REFRESH = (
    "grant",
    "code",
    "code-used",
    "refresh",
    "refresh-used",
)
PENDING, LAUNCH, JTI = "authz-request", "launch", "assertion-jti"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


@dataclass(slots=True)
class GrantContext:
    """What one authorization grants, as stored with its code, grant and refresh tokens."""

    grant_id: str
    client_id: str
    scope: str
    username: str | None = None
    fhir_user: str | None = None
    patient: str | None = None
    encounter: str | None = None
    need_patient_banner: bool | None = None
    smart_style_url: str | None = None
    nonce: str | None = None
    auth_time: int | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GrantContext:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})


#: How long a replica trusts that a grant it has seen live is still live: a revocation made
#: through another replica reaches this one within that time (one made here, at once).
GRANT_CACHE_SECONDS = 5.0


class OAuthState:
    def __init__(
        self,
        records: RecordStore,
        now: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.records = records
        self._now = now
        self._monotonic = monotonic
        self._live: dict[str, float] = {}  # grant id -> until when it is taken as live

    def _in(self, seconds: float) -> datetime:
        return self._now() + timedelta(seconds=seconds)

    # -- grants -------------------------------------------------------------------------------

    async def save_grant(self, context: GrantContext, lifetime_seconds: float) -> None:
        record = context.to_record()
        record["owner"] = context.username or context.client_id
        await self.records.put(
            GRANT, context.grant_id, record, expires=self._in(lifetime_seconds), index="owner"
        )

    async def grant(self, grant_id: str) -> GrantContext | None:
        record = await self.records.get(GRANT, grant_id)
        return None if record is None else GrantContext.from_record(record)

    async def grant_active(self, grant_id: str) -> bool:
        """Checked on every FHIR request with a token of ours: a live answer is kept for
        :data:`GRANT_CACHE_SECONDS` (never beyond the grant's own expiry, which the token's
        ``exp`` bounds anyway)."""
        if not grant_id:
            return False
        now = self._monotonic()
        if self._live.get(grant_id, 0.0) > now:
            return True
        live = await self.records.get(GRANT, grant_id) is not None
        if live:
            if len(self._live) > 100_000:
                self._live = {g: t for g, t in self._live.items() if t > now}
            self._live[grant_id] = now + GRANT_CACHE_SECONDS
        else:
            self._live.pop(grant_id, None)
        return live

    async def revoke_grant(self, grant_id: str) -> bool:
        self._live.pop(grant_id, None)
        return await self.records.delete(GRANT, grant_id)

    async def grants_of(self, owner: str) -> list[GrantContext]:
        return [GrantContext.from_record(r) for r in await self.records.find(GRANT, owner)]

    # -- authorization codes ------------------------------------------------------------------

    async def save_code(self, code: str, context: GrantContext) -> None:
        await self.records.put(
            CODE, digest(code), context.to_record(), expires=self._in(CODE_SECONDS)
        )

    async def take_code(self, code: str) -> GrantContext | None:
        """The code's context, once. A second use finds the code spent: the grant issued from it
        is revoked and None returned."""
        key = digest(code)
        record = await self.records.take(CODE, key)
        if record is None:
            used = await self.records.get(USED_CODE, key)
            if used is not None:
                await self.revoke_grant(str(used["grant_id"]))
            return None
        context = GrantContext.from_record(record)
        await self.records.put(
            USED_CODE, key, {"grant_id": context.grant_id}, expires=self._in(USED_CODE_SECONDS)
        )
        return context

    # -- refresh tokens -----------------------------------------------------------------------

    async def save_refresh(self, token: str, context: GrantContext) -> None:
        lifetime = REFRESH_DAYS * 86400
        await self.records.put(
            REFRESH, digest(token), context.to_record(), expires=self._in(lifetime)
        )
        await self.save_grant(context, lifetime)

    async def peek_refresh(self, token: str) -> GrantContext | None:
        record = await self.records.get(REFRESH, digest(token))
        return None if record is None else GrantContext.from_record(record)

    async def take_refresh(self, token: str) -> GrantContext | None:
        """Rotate: the refresh token's context, once, if its grant is still active. A
        rotated-out token presented again revokes the grant."""
        key = digest(token)
        record = await self.records.take(REFRESH, key)
        if record is None:
            used = await self.records.get(USED_REFRESH, key)
            if used is not None:
                await self.revoke_grant(str(used["grant_id"]))
            return None
        context = GrantContext.from_record(record)
        await self.records.put(
            USED_REFRESH, key, {"grant_id": context.grant_id},
            expires=self._in(REFRESH_DAYS * 86400),
        )  # fmt: skip
        if not await self.grant_active(context.grant_id):
            return None
        return context

    async def drop_refresh(self, token: str) -> GrantContext | None:
        """Revocation of a refresh token (RFC 7009): revokes its grant."""
        record = await self.records.take(REFRESH, digest(token))
        if record is None:
            return None
        context = GrantContext.from_record(record)
        await self.revoke_grant(context.grant_id)
        return context

    # -- pending authorization requests and launches -------------------------------------------

    async def save_pending(self, request_id: str, pending: dict[str, Any]) -> None:
        await self.records.put(PENDING, request_id, pending, expires=self._in(PENDING_SECONDS))

    async def pending(self, request_id: str) -> dict[str, Any] | None:
        return await self.records.get(PENDING, request_id)

    async def take_pending(self, request_id: str) -> dict[str, Any] | None:
        return await self.records.take(PENDING, request_id)

    async def save_launch(self, handle: str, launch: dict[str, Any]) -> None:
        await self.records.put(LAUNCH, digest(handle), launch, expires=self._in(LAUNCH_SECONDS))

    async def launch(self, handle: str) -> dict[str, Any] | None:
        return await self.records.get(LAUNCH, digest(handle))

    async def take_launch(self, handle: str) -> dict[str, Any] | None:
        return await self.records.take(LAUNCH, digest(handle))

    # -- client assertion replay cache -------------------------------------------------------

    async def first_use_of_jti(self, client_id: str, jti: str, expires: datetime) -> bool:
        """True the first time (client, jti) is seen before ``expires`` (SMART: reject a jti
        already used within the assertion's lifetime)."""
        return await self.records.put(
            JTI, f"{client_id}\x1f{jti}", {"client_id": client_id}, expires=expires, if_absent=True
        )
