"""Making a SMART Backend Services client assertion (``private_key_jwt``, RFC 7523 §2.2): what
``fhir-server token`` signs with a backend client's private key."""

from __future__ import annotations

import secrets
import time
from typing import Any

from joserfc import jwk, jwt

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def client_assertion(private_jwk: dict[str, Any], client_id: str, token_url: str) -> str:
    """An assertion valid for 4 minutes: ES384 for an EC key, RS384 for an RSA key."""
    key = jwk.import_key(private_jwk)
    alg = "ES384" if key.key_type == "EC" else "RS384"
    now = int(time.time())
    claims = {
        "iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240, "iat": now,
        "jti": secrets.token_urlsafe(16),
    }  # fmt: skip
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[alg])
