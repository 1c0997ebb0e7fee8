"""The server's signing keys: RSA keys with a ``kid``, shared by every replica through the record
port, published as a JWKS (``/auth/jwks``) and used for access tokens and OpenID ``id_token``\\s.

RS256 is what SMART requires for ``id_token`` (sso-openid-connect) and what every client library
verifies. The first replica to start on an empty store makes the key; the others read it. The
current key is the newest (by its ``created`` time, then ``kid``), so all replicas agree;
older keys stay in the JWKS so tokens they signed remain verifiable until they expire.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jwk

SIGNING_ALG = "RS256"
KEY_KIND = "signing-key"


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The current signing key and every key still published."""

    current: jwk.RSAKey
    keys: jwk.KeySet

    @property
    def kid(self) -> str:
        return str(self.current.kid)

    def public_jwks(self) -> dict[str, Any]:
        return dict(self.keys.as_dict(private=False))

    @classmethod
    def from_records(cls, records: Sequence[dict[str, Any]]) -> KeyRing:
        """Records as made by :func:`new_key_record` (at least one)."""
        if not records:
            raise ValueError("no signing key")
        ordered = sorted(records, key=lambda r: (str(r["created"]), str(r["jwk"]["kid"])))
        keys = [jwk.RSAKey.import_key(r["jwk"]) for r in ordered]
        return cls(current=keys[-1], keys=jwk.KeySet(list[Any](keys)))


def new_key_record(created: str) -> dict[str, Any]:
    """A fresh 2048-bit RSA signing key as a record (private JWK, kid, created instant)."""
    kid = secrets.token_urlsafe(12)
    key = jwk.RSAKey.generate_key(
        2048, parameters={"kid": kid, "use": "sig", "alg": SIGNING_ALG}, private=True
    )
    return {"jwk": key.as_dict(private=True), "created": created}
