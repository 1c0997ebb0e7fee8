"""CSRF tokens for the login and consent forms, bound to the pending authorization request.

A token is ``HMAC-SHA256(secret, purpose || request id || binding)``: stateless (nothing to store
besides the pending request the server keeps anyway), unforgeable without the server's secret,
and useless for any other request. ``binding`` lets the server also tie the token to the
browser (a value from a cookie set when the request began), so that a request id an attacker
started in their own browser cannot be replayed through a victim's (login CSRF). Checks compare
in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_PURPOSE = b"fhir-server authorization form csrf v1\x00"
_MIN_SECRET = 32


def _field(value: str) -> bytes:
    """Length-prefixed, so that no two (request id, binding) pairs give the same message."""
    data = value.encode("utf-8", "surrogatepass")
    return len(data).to_bytes(4, "big") + data


class CsrfTokens:
    """Issues and checks the ``csrf`` form field. ``secret``: at least 32 random bytes, kept by
    the server (from settings or :func:`secrets.token_bytes` at start-up)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < _MIN_SECRET:
            raise ValueError(f"the CSRF secret must be at least {_MIN_SECRET} bytes")
        self._secret = secret

    def _mac(self, request_id: str, binding: str) -> bytes:
        message = _PURPOSE + _field(request_id) + _field(binding)
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=")

    def issue(self, request_id: str, binding: str = "") -> str:
        """The token to put in the form of pending request ``request_id``."""
        return self._mac(request_id, binding).decode("ascii")

    def check(self, request_id: str, token: str, binding: str = "") -> bool:
        """Whether ``token`` was issued by this secret for ``request_id`` (and ``binding``)."""
        expected = self._mac(request_id, binding)
        return hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))
