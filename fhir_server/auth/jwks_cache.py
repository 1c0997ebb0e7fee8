"""JWKS fetched by URL (client ``jwks_uri`` of SMART asymmetric clients, external identity
providers), cached no longer than the publisher's ``Cache-Control`` allows (SMART
client-confidential-asymmetric: "SHALL NOT cache a JWKS for longer than the client's cache-control
header indicates"; ONC attestation). A key id not found in a cached set forces one refetch, rate
limited, so a client that rotates its key is not locked out until the cache expires."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import httpx
from joserfc import jwk

_MAX_AGE = re.compile(r"max-age\s*=\s*(\d+)", re.IGNORECASE)
#: Cache at most this long even when allowed longer, and refetch a missing kid at most this often.
MAX_CACHE_SECONDS = 3600.0
MIN_REFETCH_SECONDS = 10.0
MAX_JWKS_BYTES = 256 * 1024


class JwksFetchError(Exception):
    """The JWKS could not be fetched or is not a JWKS; the message says why."""


@dataclass(slots=True)
class _Entry:
    keys: jwk.KeySet
    fetched: float
    expires: float


class JwksCache:
    def __init__(
        self, *, timeout: float = 5.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._timeout = timeout
        self._now = monotonic

    async def get(self, url: str, *, kid: str | None = None) -> jwk.KeySet:
        """The key set at ``url``; refetched when the cache expired or ``kid`` is not in it."""
        entry = self._entries.get(url)
        now = self._now()
        if entry is not None and now < entry.expires and _has_kid(entry.keys, kid):
            return entry.keys
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            entry = self._entries.get(url)
            now = self._now()
            fresh = entry is not None and now < entry.expires
            if entry is not None and fresh and _has_kid(entry.keys, kid):
                return entry.keys
            if entry is not None and fresh and now - entry.fetched < MIN_REFETCH_SECONDS:
                return entry.keys  # an unknown kid: do not hammer the publisher
            keys, max_age = await self._fetch(url)
            self._entries[url] = _Entry(keys, now, now + min(max_age, MAX_CACHE_SECONDS))
            return keys

    async def _fetch(self, url: str) -> tuple[jwk.KeySet, float]:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise JwksFetchError(f"the JWKS at {url} could not be fetched ({exc})") from exc
        if response.status_code != 200:
            raise JwksFetchError(f"the JWKS at {url} answered HTTP {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksFetchError(f"the JWKS at {url} is larger than {MAX_JWKS_BYTES} bytes")
        try:
            keys = parse_jwks(response.json())
        except (ValueError, TypeError) as exc:
            raise JwksFetchError(f"the document at {url} is not a usable JWKS ({exc})") from exc
        return keys, cache_lifetime(response.headers.get("cache-control"))


def cache_lifetime(cache_control: str | None) -> float:
    """Seconds a response may be cached: 0 with no-store/no-cache, its max-age, else 5 minutes."""
    if not cache_control:
        return 300.0
    lowered = cache_control.lower()
    if "no-store" in lowered or "no-cache" in lowered:
        return 0.0
    match = _MAX_AGE.search(lowered)
    return float(match.group(1)) if match else 300.0


def parse_jwks(document: Any) -> jwk.KeySet:
    """Public keys of a JWKS document; private members are refused, not silently used."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("a JWKS is a JSON object with a 'keys' array")
    for key in document["keys"]:
        if not isinstance(key, dict) or "kty" not in key:
            raise ValueError("every key needs 'kty'")
        if "d" in key:
            raise ValueError("a published JWKS must not hold private keys")
    return jwk.KeySet.import_key_set(cast(Any, document))


def _has_kid(keys: jwk.KeySet, kid: str | None) -> bool:
    return kid is None or any(k.kid == kid for k in keys.keys)
