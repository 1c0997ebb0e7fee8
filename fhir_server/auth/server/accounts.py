"""Users and clients of the SMART authorization server, kept through the record port.

Passwords and client secrets are stored only as argon2id hashes (argon2-cffi, the reference
implementation's binding; RFC 9106 parameters) and checked in constant time. A client is one of:

- ``public``: a browser or native app, no secret (``token_endpoint_auth_method`` none); PKCE;
- ``confidential`` with a secret (symmetric: ``client_secret_basic``/``client_secret_post``) or
  with a JWKS / JWKS URL (asymmetric: ``private_key_jwt``, RS384 or ES384);
- ``backend``: SMART Backend Services, ``client_credentials`` with ``private_key_jwt`` only.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fhir_server.auth.jwks_cache import parse_jwks
from fhir_server.auth.scopes import parse_scopes
from fhir_server.core.urls import origin
from fhir_server.storage.records import RecordStore

USER_KIND = "user"
CLIENT_KIND = "client"

ClientType = Literal["public", "confidential", "backend"]
CLIENT_TYPES: tuple[ClientType, ...] = ("public", "confidential", "backend")

_HASHER = PasswordHasher()
_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9._~-]{1,128}")
_FHIR_USER = re.compile(
    r"(Patient|Practitioner|PractitionerRole|RelatedPerson|Person)/[A-Za-z0-9.-]{1,64}"
)


@functools.cache
def _dummy_hash() -> str:
    """Checked when the user is unknown, so both cases take the same time (made on first use,
    not at import)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


DEFAULT_SCOPES: dict[ClientType, str] = {
    "public": "launch launch/patient launch/encounter openid fhirUser profile offline_access "
    "patient/*.cruds user/*.cruds",
    "confidential": "launch launch/patient launch/encounter openid fhirUser profile "
    "offline_access patient/*.cruds user/*.cruds",
    "backend": "system/*.cruds",
}


class AccountError(ValueError):
    """A user or client that cannot be registered as given; the message says what to change."""


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def check_secret(stored_hash: str | None, given: str) -> bool:
    """Constant-time verification; an unknown account costs the same as a wrong secret."""
    try:
        return _HASHER.verify(stored_hash or _dummy_hash(), given) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class User:
    username: str
    name: str
    password_hash: str
    fhir_user: str | None = None
    roles: tuple[str, ...] = ()

    def to_record(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "name": self.name,
            "password_hash": self.password_hash,
            "fhir_user": self.fhir_user,
            "roles": list(self.roles),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> User:
        return cls(
            username=record["username"],
            name=record.get("name") or record["username"],
            password_hash=record["password_hash"],
            fhir_user=record.get("fhir_user"),
            roles=tuple(record.get("roles") or ()),
        )

    def public_view(self) -> dict[str, Any]:
        return {k: v for k, v in self.to_record().items() if k != "password_hash"}


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    name: str
    type: ClientType
    scope: str
    redirect_uris: tuple[str, ...] = ()
    launch_uri: str | None = None
    secret_hash: str | None = None
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def asymmetric(self) -> bool:
        return self.jwks is not None or self.jwks_url is not None

    @property
    def auth_method(self) -> str:
        if self.asymmetric:
            return "private_key_jwt"
        if self.secret_hash is not None:
            return "client_secret_basic"
        return "none"

    @property
    def grant_types(self) -> tuple[str, ...]:
        if self.type == "backend":
            return ("client_credentials",)
        return ("authorization_code", "refresh_token")

    @property
    def origins(self) -> frozenset[str]:
        """The web origins of the redirect and launch URIs (CORS on the token endpoint and the
        FHIR API is allowed to these only)."""
        uris = [*self.redirect_uris, *([self.launch_uri] if self.launch_uri else [])]
        return frozenset(origin(u) for u in uris)

    def to_record(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "type": self.type,
            "scope": self.scope,
            "redirect_uris": list(self.redirect_uris),
            "launch_uri": self.launch_uri,
            "secret_hash": self.secret_hash,
            "jwks": self.jwks,
            "jwks_url": self.jwks_url,
            "extra": self.extra,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Client:
        return cls(
            client_id=record["client_id"],
            name=record.get("name") or record["client_id"],
            type=record["type"],
            scope=record.get("scope") or "",
            redirect_uris=tuple(record.get("redirect_uris") or ()),
            launch_uri=record.get("launch_uri"),
            secret_hash=record.get("secret_hash"),
            jwks=record.get("jwks"),
            jwks_url=record.get("jwks_url"),
            extra=dict(record.get("extra") or {}),
        )

    def public_view(self) -> dict[str, Any]:
        view = {k: v for k, v in self.to_record().items() if k != "secret_hash"}
        view["token_endpoint_auth_method"] = self.auth_method
        view["grant_types"] = list(self.grant_types)
        return view


def new_user(
    username: str,
    password: str,
    *,
    name: str | None = None,
    fhir_user: str | None = None,
    roles: tuple[str, ...] = (),
) -> User:
    if not _USERNAME.fullmatch(username):
        raise AccountError("a user name is 1 to 64 characters among A-Z a-z 0-9 . _ @ -")
    if len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    if fhir_user is not None and not _FHIR_USER.fullmatch(fhir_user):
        raise AccountError(
            "--fhir-user must be a relative reference to a Patient, Practitioner, "
            "PractitionerRole, RelatedPerson or Person (e.g. Practitioner/123)"
        )
    return User(username, name or username, hash_secret(password), fhir_user, roles)


def new_client(
    client_id: str,
    type: str,
    *,
    name: str | None = None,
    secret: str | None = None,
    redirect_uris: tuple[str, ...] = (),
    launch_uri: str | None = None,
    scope: str | None = None,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
) -> Client:
    """A client checked for consistency; raises :class:`AccountError` saying what is wrong."""
    if not _CLIENT_ID.fullmatch(client_id):
        raise AccountError("a client id is 1 to 128 characters among A-Z a-z 0-9 . _ ~ -")
    if type not in CLIENT_TYPES:
        raise AccountError("--type must be public, confidential or backend")
    kind: ClientType = type
    if jwks is not None and jwks_url is not None:
        raise AccountError("give either a JWKS (--jwks-file) or a JWKS URL (--jwks-url), not both")
    asymmetric = jwks is not None or jwks_url is not None
    if kind == "public" and (secret or asymmetric):
        raise AccountError("a public client has no secret and no keys")
    if kind == "confidential" and not (secret or asymmetric):
        raise AccountError("a confidential client needs a secret or a JWKS (file or URL)")
    if secret and asymmetric:
        raise AccountError("a client authenticates with a secret or with keys, not both")
    if kind == "backend" and not asymmetric:
        raise AccountError("a backend services client needs a JWKS (--jwks-file or --jwks-url)")
    if kind != "backend" and not redirect_uris:
        raise AccountError("an app needs at least one --redirect-uri")
    if kind == "backend" and (redirect_uris or launch_uri):
        raise AccountError("a backend services client has no redirect or launch URI")
    for uri in (*redirect_uris, *([launch_uri] if launch_uri else [])):
        check_redirect_uri(uri)
    if jwks is not None:
        try:
            parse_jwks(jwks)
        except (ValueError, TypeError) as exc:
            raise AccountError(f"the JWKS is not usable: {exc}") from None
    if jwks_url is not None:
        check_redirect_uri(jwks_url)  # same rules: https, or http on loopback only
    granted = scope if scope is not None else DEFAULT_SCOPES[kind]
    parsed = parse_scopes(granted)
    if parsed.rejected:
        bad = ", ".join(f"{text!r} ({why})" for text, why in parsed.rejected)
        raise AccountError(f"unknown scopes: {bad}")
    if kind == "backend" and any(s.level != "system" for s in parsed.resources):
        raise AccountError("a backend services client can only be given system/ scopes")
    return Client(
        client_id=client_id,
        name=name or client_id,
        type=kind,
        scope=granted,
        redirect_uris=tuple(redirect_uris),
        launch_uri=launch_uri,
        secret_hash=hash_secret(secret) if secret else None,
        jwks=jwks,
        jwks_url=jwks_url,
    )


def check_redirect_uri(uri: str) -> None:
    """RFC 9700 §2.1, §4.1: absolute https URIs, http only on loopback, no user info, no
    fragment; compared by exact string match later."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AccountError(f"{uri!r} is not an absolute http(s) URI")
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise AccountError(f"{uri!r}: plain http is allowed on loopback addresses only")
    if parts.username or parts.password:
        raise AccountError(f"{uri!r} must not carry user information")
    if parts.fragment:
        raise AccountError(f"{uri!r} must not have a fragment")


class Accounts:
    """Users and clients over the record port."""

    def __init__(self, records: RecordStore) -> None:
        self._records = records

    async def add_user(self, user: User, *, replace: bool = False) -> None:
        stored = await self._records.put(
            USER_KIND, user.username, user.to_record(), if_absent=not replace
        )
        if not stored:
            raise AccountError(f"user {user.username!r} exists already")

    async def user(self, username: str) -> User | None:
        record = await self._records.get(USER_KIND, username)
        return None if record is None else User.from_record(record)

    async def authenticate(self, username: str, password: str) -> User | None:
        user = await self.user(username) if _USERNAME.fullmatch(username) else None
        ok = check_secret(user.password_hash if user else None, password)
        return user if ok else None

    async def users(self) -> list[User]:
        return [User.from_record(r) for r in await self._records.find(USER_KIND)]

    async def delete_user(self, username: str) -> bool:
        return await self._records.delete(USER_KIND, username)

    async def add_client(self, client: Client, *, replace: bool = False) -> None:
        stored = await self._records.put(
            CLIENT_KIND, client.client_id, client.to_record(), if_absent=not replace
        )
        if not stored:
            raise AccountError(f"client {client.client_id!r} exists already")

    async def client(self, client_id: str) -> Client | None:
        record = await self._records.get(CLIENT_KIND, client_id)
        return None if record is None else Client.from_record(record)

    async def clients(self) -> list[Client]:
        return [Client.from_record(r) for r in await self._records.find(CLIENT_KIND)]

    async def delete_client(self, client_id: str) -> bool:
        return await self._records.delete(CLIENT_KIND, client_id)


def created_now(now: datetime) -> str:
    return now.isoformat()
