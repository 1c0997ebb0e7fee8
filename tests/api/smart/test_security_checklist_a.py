"""Security checklist S1-S12 (notes/smart.md §5; RFC 9700, RFC 6749/7636/7523, SMART):
redirect URIs, open redirectors, PKCE and its downgrade, codes, implicit/ROPC grants,
audience, token lifetimes, refresh tokens, scope escalation, private_key_jwt."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from fhir_server.auth.server.accounts import AccountError, new_client
from fhir_server.auth.tokens import TokenClaims, issue_access_token
from tests.api.smart.conftest import FHIR, ISSUER, REDIRECT, TOKEN_URL, Smart, query_of
from tests.api.smart.world import World
from tests.integration.smart_support import (
    JWT_BEARER,
    LoopbackServer,
    SigningKey,
    make_key,
    public_jwks,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
PAGE_CHECK = 'name="password"'  # the login page's field: its presence means the flow went on


# -- S1, S2, S3: redirect URIs ---------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT + "/extra",
        REDIRECT + "?x=1",
        REDIRECT + "/",
        REDIRECT.replace(":9999", ":9998"),
        REDIRECT.replace("http://", "https://"),
        REDIRECT.replace("/app/", "/APP/"),
        "http://evil.example/app/callback",
    ],
)
async def test_s1_redirect_uri_exact_match(smart: Smart, world: World, redirect_uri: str) -> None:
    """S1: an unregistered or merely similar redirect_uri gets an error page, no redirect."""
    async with smart.browser() as browser:
        answer, _, _ = await smart.authorize(
            world.public, SCOPE, browser=browser, redirect_uri=redirect_uri
        )
    assert answer.status_code == 400
    assert "location" not in answer.headers and PAGE_CHECK not in answer.text


async def test_s2_no_open_redirector(smart: Smart, world: World) -> None:
    """S2: with an unknown client (or no redirect_uri) nothing redirects; once the client and
    redirect_uri are valid, errors redirect to it with ``state`` echoed."""
    async with smart.browser() as browser:
        unknown, _, _ = await smart.authorize("no-such-app", SCOPE, browser=browser)
        missing, _, _ = await smart.authorize(world.public, SCOPE, browser=browser, redirect_uri="")
        bad_scope, _, state = await smart.authorize(
            world.public, "openid", browser=browser, response_type="unknown"
        )
    for answer in (unknown, missing):
        assert answer.status_code >= 400 and "location" not in answer.headers
    assert bad_scope.status_code in (302, 303)
    params = query_of(bad_scope.headers["location"])
    assert bad_scope.headers["location"].startswith(REDIRECT + "?")
    assert params["state"] == state and params["error"] and "code" not in params


@pytest.mark.parametrize(
    "uri",
    ["http://app.example.org/cb", "https://user:pw@app.example.org/cb", "https://a.example/cb#x"],
)
async def test_s3_redirect_uri_registration_rules(uri: str) -> None:
    """S3: plain http only on loopback; no user info (nor fragment) in a redirect URI."""
    with pytest.raises(AccountError):
        new_client("s3-app", "public", redirect_uris=(uri,))
    assert new_client("s3-ok", "public", redirect_uris=("https://app.example.org/cb",))


# -- S4, S5: PKCE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pkce",
    [
        {"code_challenge": "", "code_challenge_method": ""},
        {"code_challenge_method": "plain"},
        {"code_challenge_method": ""},
    ],
    ids=["no-challenge", "plain", "no-method"],
)
async def test_s4_pkce_s256_required(smart: Smart, world: World, pkce: dict[str, str]) -> None:
    """S4: every client, confidential too, must send an S256 challenge: none, ``plain`` or a
    missing method gives an error redirect and no code. (The verifier checks are the g10
    invalid-PKCE tests.)"""
    async with smart.browser() as browser:
        answer, _, state = await smart.authorize(world.symmetric, SCOPE, browser=browser, **pkce)
    assert answer.status_code in (302, 303)
    params = query_of(answer.headers["location"])
    assert params["error"] == "invalid_request" and "code" not in params
    assert params["state"] == state


async def test_s5_pkce_downgrade_impossible(smart: Smart, world: World) -> None:
    """S5: a code cannot be obtained without a challenge, so a verifier can never be checked
    against nothing; a verifier sent with a code issued for a challenge must match it."""
    async with smart.browser() as browser:
        answer, _, _ = await smart.authorize(
            world.public, SCOPE, browser=browser, code_challenge="", code_challenge_method=""
        )
    assert "code" not in query_of(answer.headers["location"])


# -- S6: authorization codes --------------------------------------------------------------------


async def test_s6_code_single_use_and_replay_revokes(smart: Smart, world: World) -> None:
    """S6: a second use → 400 invalid_grant, and the tokens issued from the code are revoked."""
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    first = await smart.exchange(done, world.public)
    assert first.status_code == 200
    tokens = first.json()
    second = await smart.exchange(done, world.public)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    read = await smart.fhir("GET", f"Patient/{world.patient}", tokens["access_token"])
    assert read.status_code == 401
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert (await smart.token_request(form | {"client_id": world.public})).status_code == 400


async def test_s6_code_expires_within_60_seconds(smart: Smart, world: World) -> None:
    """S6: codes live at most 60 s."""
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    smart.clock.advance(61)
    try:
        answer = await smart.exchange(done, world.public)
    finally:
        smart.clock.advance(-61)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


async def test_s6_code_bound_to_client_and_redirect(smart: Smart, world: World) -> None:
    """S6: a code is bound to its client and redirect_uri."""
    other = await smart.add_client("s6-other", "public")
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    stolen = await smart.exchange(done, other)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    moved = await smart.exchange(done, world.public, redirect_uri=REDIRECT + "/x")
    assert moved.status_code == 400


# -- S7: no implicit, hybrid or ROPC -----------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
async def test_s7_no_implicit_or_hybrid(smart: Smart, world: World, response_type: str) -> None:
    """S7: implicit and hybrid response types → unsupported_response_type, no token."""
    async with smart.browser() as browser:
        answer, _, _ = await smart.authorize(
            world.public, SCOPE, browser=browser, response_type=response_type
        )
    location = answer.headers.get("location", "")
    assert "access_token" not in location and "id_token=" not in location
    if location:
        assert query_of(location)["error"] == "unsupported_response_type"
    else:
        assert answer.status_code == 400


async def test_s7_no_password_grant(smart: Smart, world: World) -> None:
    """S7: the resource-owner password grant is not registered."""
    form = {"grant_type": "password", "username": world.clinician, "password": "x" * 10}
    answer = await smart.token_request(form, secret=(world.symmetric, world.secret))
    assert answer.status_code == 400 and answer.json()["error"] == "unsupported_grant_type"


# -- S8: audience ------------------------------------------------------------------------------


@pytest.mark.parametrize("aud", ["", "https://other.example/fhir", FHIR + "/Patient"])
async def test_s8_aud_required_and_exact(smart: Smart, world: World, aud: str) -> None:
    """S8: aud is required and must be this FHIR base; otherwise no code."""
    async with smart.browser() as browser:
        answer, _, _ = await smart.authorize(world.public, SCOPE, browser=browser, aud=aud)
    assert "code" not in query_of(answer.headers.get("location", "?"))
    assert PAGE_CHECK not in answer.text


async def test_s8_aud_trailing_slash_and_resource_synonym(smart: Smart, world: World) -> None:
    """S8: a trailing slash is normalised; ``resource`` is accepted as a synonym of aud."""
    slash = await smart.authorization(world.public, SCOPE, world.patient_user, aud=FHIR + "/")
    assert slash.code
    resource = await smart.authorization(
        world.public, SCOPE, world.patient_user, aud="", resource=FHIR
    )
    assert resource.code


def foreign_token(smart: Smart, audience: str, lifetime: int = 600) -> str:
    """A token signed with the server's own key but for another resource server."""
    now = int(time.time())
    claims = TokenClaims(
        issuer=ISSUER, audience=audience, subject="x", client_id="x", scope="system/*.cruds",
        grant_id="g", issued_at=now, expires_at=now + lifetime,
    )  # fmt: skip
    return issue_access_token(smart.auth.keyring(), claims)


async def test_s8_resource_server_rejects_foreign_audience(smart: Smart) -> None:
    """S8/S18: the FHIR API refuses a token of ours whose aud is another FHIR base."""
    answer = await smart.fhir("GET", "Patient", foreign_token(smart, "https://other.example/fhir"))
    assert answer.status_code == 401
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    assert "aud" in answer.json()["issue"][0]["diagnostics"]


# -- S9: lifetimes ------------------------------------------------------------------------------


async def test_s9_lifetimes_and_expiry(smart: Smart, world: World) -> None:
    """S9: app tokens ≤ 1 h, backend ≤ 300 s; an expired token → 401."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    assert tokens["expires_in"] <= 3600
    claims = jwt.decode(tokens["access_token"], smart.auth.keyring().keys, algorithms=["RS256"])
    assert claims.claims["exp"] - claims.claims["iat"] <= 3600
    backend = await smart.token_request(
        {"grant_type": "client_credentials", "scope": "system/Patient.rs"},
        key=smart.backend_key, client_id="backend-admin",
    )  # fmt: skip
    assert backend.json()["expires_in"] <= 300
    smart.clock.advance(3600 + 31)
    try:
        late = await smart.fhir("GET", f"Patient/{world.patient}", tokens["access_token"])
    finally:
        smart.clock.advance(-(3600 + 31))
    assert late.status_code == 401 and "expired" in late.headers["www-authenticate"]


# -- S10, S11: refresh tokens ----------------------------------------------------------------------


def refresh_form(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, **extra}


async def test_s10_rotation_and_replay_revokes_grant(smart: Smart, world: World) -> None:
    """S10: each refresh rotates the token; presenting a rotated-out one revokes the grant
    (its newest refresh and access tokens stop working)."""
    first = await smart.tokens(world.public, SCOPE, world.patient_user)
    second = await smart.token_request(refresh_form(first["refresh_token"]))  # public, no id
    assert second.status_code == 200, second.text
    newest = second.json()
    replay = await smart.token_request(refresh_form(first["refresh_token"]))
    assert replay.status_code in (400, 401)
    read = await smart.fhir("GET", f"Patient/{world.patient}", newest["access_token"])
    assert read.status_code == 401
    assert (await smart.token_request(refresh_form(newest["refresh_token"]))).status_code in (
        400, 401,
    )  # fmt: skip


async def test_s10_bound_to_client_and_confidential_must_authenticate(
    smart: Smart, world: World
) -> None:
    """S10: another client cannot use the refresh token; a confidential client must
    authenticate to refresh."""
    tokens = await smart.tokens(
        world.symmetric, SCOPE, world.clinician, secret=world.secret, patient=world.patient
    )
    other = await smart.token_request(refresh_form(tokens["refresh_token"], client_id=world.public))
    assert other.status_code in (400, 401)
    bare = await smart.token_request(
        refresh_form(tokens["refresh_token"], client_id=world.symmetric)
    )
    assert bare.status_code == 401 and bare.json()["error"] == "invalid_client"
    wrong = await smart.token_request(
        refresh_form(tokens["refresh_token"]), secret=(world.symmetric, "wrong-secret-123")
    )
    assert wrong.status_code == 401


async def test_s10_refresh_lifetime_three_months_renewed(smart: Smart, world: World) -> None:
    """S10 / ONC: a refresh token works after nearly 3 months and the refresh renews the
    period; it stops working after its lifetime."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    day = 86400
    try:
        smart.clock.advance(89 * day)
        renewed = await smart.token_request(refresh_form(tokens["refresh_token"]))
        assert renewed.status_code == 200, renewed.text
        smart.clock.advance(89 * day)
        again = await smart.token_request(refresh_form(renewed.json()["refresh_token"]))
        assert again.status_code == 200, again.text
        smart.clock.advance(100 * day)
        expired = await smart.token_request(refresh_form(again.json()["refresh_token"]))
        assert expired.status_code in (400, 401)
    finally:
        smart.clock.offset = type(smart.clock.offset)()


async def test_s11_refresh_scope_no_escalation(smart: Smart, world: World) -> None:
    """S11: a refresh asking for more than the grant → 400 invalid_scope."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    wider = await smart.token_request(
        refresh_form(tokens["refresh_token"], scope=f"{SCOPE} patient/*.cruds")
    )
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"


# -- S12: private_key_jwt ------------------------------------------------------------------------


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def assertion(
    key: SigningKey, client_id: str, header: dict[str, Any] | None = None, **claims: Any
) -> str:
    now = int(time.time())
    body = {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": now + 240, "iat": now,
            "jti": uuid.uuid4().hex} | claims  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    head = {"alg": key.as_dict().get("alg"), "kid": key.kid, "typ": "JWT"} | (header or {})
    head = {k: v for k, v in head.items() if v is not None}
    return jwt.encode(head, body, key, algorithms=[str(head["alg"])])


async def backend(smart: Smart, client_assertion: str) -> int:
    """The token endpoint's status; a refusal is invalid_client (400 or 401: RFC 6749 §5.2
    asks for 401 only when the client authenticated through the Authorization header)."""
    form = {"grant_type": "client_credentials", "scope": "system/Patient.rs",
            "client_assertion_type": JWT_BEARER, "client_assertion": client_assertion}  # fmt: skip
    answer = await smart.token_request(form)
    if answer.status_code != 200:
        assert answer.json()["error"] == "invalid_client", answer.text
    return answer.status_code


async def test_s12_private_key_jwt_rules(smart: Smart) -> None:
    """S12: RS384 and ES384 accepted; ``none``, HS256 and RS256 refused; aud must be the token
    URL; exp at most 5 minutes ahead; a jti only once; iss = sub; a kid selecting exactly
    one key of the right kty."""
    rs, es = make_key("RS384"), make_key("ES384")
    twin = make_key("RS384", kid=rs.kid)
    rs256 = RSAKey.generate_key(2048, parameters={"kid": str(rs.kid)})
    await smart.add_client("s12", "backend", jwks=public_jwks(rs, es), scope="system/*.rs")
    await smart.add_client("s12-twins", "backend", jwks=public_jwks(rs, twin), scope="system/*.rs")
    assert await backend(smart, assertion(rs, "s12")) == 200
    assert await backend(smart, assertion(es, "s12")) == 200
    unsigned = b64({"alg": "none", "kid": rs.kid}) + "." + b64(
        {"iss": "s12", "sub": "s12", "aud": TOKEN_URL, "exp": int(time.time()) + 60,
         "jti": uuid.uuid4().hex}
    ) + "."  # fmt: skip
    hmac = OctKey.import_key(b"k" * 48, {"kid": str(rs.kid), "alg": "HS256"})
    refused = [
        unsigned,
        assertion(hmac, "s12"),  # type: ignore[arg-type]
        assertion(rs256, "s12", header={"alg": "RS256", "kid": rs.kid}),
        assertion(rs, "s12", aud=FHIR),
        assertion(rs, "s12", exp=int(time.time()) + 3600),
        assertion(rs, "s12", exp=None),
        assertion(rs, "s12", iss="other"),
        assertion(rs, "s12", header={"kid": None}),
        assertion(rs, "s12", header={"kid": "unknown"}),
        assertion(es, "s12", header={"alg": "ES384", "kid": rs.kid}),  # kty mismatch
        assertion(rs, "s12-twins"),  # two keys with that kid
        assertion(rs, "s12", header={"jku": "https://attacker.example/jwks"}),
    ]
    for n, text in enumerate(refused):
        assert await backend(smart, text) in (400, 401), n
    once = assertion(rs, "s12", jti="fixed-" + uuid.uuid4().hex)
    assert await backend(smart, once) == 200
    assert await backend(smart, once) in (400, 401)


async def test_s12_jku_must_equal_registered_url(smart: Smart) -> None:
    """S12: with a JWKS URL, a ``jku`` equal to it is accepted, any other refused."""
    key = make_key("ES384")
    server = LoopbackServer()
    try:
        server.serve_json("/keys", public_jwks(key))
        url = f"{server.base}/keys"
        await smart.add_client("s12-jku", "backend", jwks_url=url, scope="system/*.rs")
        assert await backend(smart, assertion(key, "s12-jku", header={"jku": url})) == 200
        other = assertion(key, "s12-jku", header={"jku": url + "?x"})
        assert await backend(smart, other) in (400, 401)
    finally:
        server.stop()
