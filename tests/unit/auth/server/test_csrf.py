"""CSRF tokens of the login and consent forms: bound to the pending request (and optionally the
browser), unforgeable without the server's secret."""

from __future__ import annotations

import secrets

import pytest

from fhir_server.auth.server.csrf import CsrfTokens

SECRET = secrets.token_bytes(32)


def test_a_token_checks_for_its_own_request() -> None:
    tokens = CsrfTokens(SECRET)
    token = tokens.issue("req-1")
    assert tokens.check("req-1", token)
    assert CsrfTokens(SECRET).check("req-1", token)  # stateless: any instance with the secret
    assert token.isascii() and "=" not in token and len(token) == 43


def test_a_token_fails_for_another_request() -> None:
    tokens = CsrfTokens(SECRET)
    assert not tokens.check("req-2", tokens.issue("req-1"))


@pytest.mark.parametrize("position", [0, 10, 42])
def test_a_tampered_token_fails(position: int) -> None:
    tokens = CsrfTokens(SECRET)
    token = tokens.issue("req-1")
    flipped = "A" if token[position] != "A" else "B"
    assert not tokens.check("req-1", token[:position] + flipped + token[position + 1 :])


@pytest.mark.parametrize("token", ["", "x", "é" * 43, "\udcff", "a" * 1000])
def test_junk_fails_without_raising(token: str) -> None:
    assert not CsrfTokens(SECRET).check("req-1", token)


def test_another_secret_fails() -> None:
    token = CsrfTokens(SECRET).issue("req-1")
    assert not CsrfTokens(secrets.token_bytes(32)).check("req-1", token)


def test_binding_to_the_browser() -> None:
    tokens = CsrfTokens(SECRET)
    token = tokens.issue("req-1", binding="cookie-a")
    assert tokens.check("req-1", token, binding="cookie-a")
    assert not tokens.check("req-1", token, binding="cookie-b")
    assert not tokens.check("req-1", token)
    # Field boundaries are unambiguous: ("ab", "") and ("a", "b") differ.
    assert tokens.issue("ab") != tokens.issue("a", binding="b")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CsrfTokens(b"short")
