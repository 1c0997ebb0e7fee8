"""TokenVerifier.port_left_out: a request whose Host named no port (dicomweb-client 0.61) is
checked against this server's issuer and base at the port it listens on, and nothing else is
relaxed."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from fhir_server.auth.keys import KeyRing
from fhir_server.auth.tokens import ExternalIssuer, TokenVerifier

BASE = "http://127.0.0.1/fhir"
ISSUER = "http://127.0.0.1/auth"


def _token(iss: object) -> str:
    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'iss': iss})}.c2ln"


async def _active(grant: str) -> bool:
    return True


def _verifier(*external: str) -> TokenVerifier:
    return TokenVerifier(
        lambda: KeyRing.from_records([]), _active,
        external=[ExternalIssuer(e, f"{e}/jwks") for e in external],
        now=lambda: datetime.now(UTC),
    )  # fmt: skip


def test_a_token_for_the_listening_port_is_checked_at_that_port() -> None:
    checked = _verifier().port_left_out(_token("http://127.0.0.1:8080/auth"), BASE, ISSUER, 8080)
    assert checked == ("http://127.0.0.1:8080/fhir", "http://127.0.0.1:8080/auth")


@pytest.mark.parametrize(
    ("iss", "base", "issuer", "listening"),
    [
        ("http://127.0.0.1:9090/auth", BASE, ISSUER, 8080),  # not the port listened on
        ("http://127.0.0.1:8080/auth", BASE, ISSUER, None),  # port not known
        ("https://127.0.0.1:8080/auth", BASE, ISSUER, 8080),  # another scheme
        ("http://10.0.0.1:8080/auth", BASE, ISSUER, 8080),  # another host
        ("http://127.0.0.1:8080/other", BASE, ISSUER, 8080),  # another path
        ("http://127.0.0.1:8080/auth?x=1", BASE, ISSUER, 8080),
        ("http://u@127.0.0.1:8080/auth", BASE, ISSUER, 8080),  # user info
        ("http://127.0.0.1:99999/auth", BASE, ISSUER, 8080),  # no port at all
        (["http://127.0.0.1:8080/auth"], BASE, ISSUER, 8080),  # not a string
        (
            "http://127.0.0.1:8080/auth",
            "http://127.0.0.1:7070/fhir",
            "http://127.0.0.1:7070/auth",
            8080,
        ),  # the request named its port
    ],
)
def test_anything_else_is_checked_as_requested(
    iss: object, base: str, issuer: str, listening: int | None
) -> None:
    assert _verifier().port_left_out(_token(iss), base, issuer, listening) == (base, issuer)


def test_a_trusted_external_issuer_stays_external() -> None:
    external = "http://127.0.0.1:8080/auth"
    checked = _verifier(external).port_left_out(_token(external), BASE, ISSUER, 8080)
    assert checked == (BASE, ISSUER)


def test_not_a_jwt_is_left_to_verify() -> None:
    assert _verifier().port_left_out("not-a-token", BASE, ISSUER, 8080) == (BASE, ISSUER)
