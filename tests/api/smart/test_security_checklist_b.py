"""Security checklist S13-S25 (notes/smart.md §5): client secrets, token response headers,
id_token, revocation, introspection, the resource server, CORS, clickjacking, 303 after POST,
tokens kept out of URLs and logs, error format, launch handles, the consent UI."""

from __future__ import annotations

import html
import logging
from urllib.parse import urlencode

import pytest
from joserfc import jwt

from tests.api.smart.conftest import APP_ORIGIN, FORM, REDIRECT, Smart, query_of, unverified_claims
from tests.api.smart.world import World
from tests.integration.smart_support import page_form

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE = "launch/patient openid fhirUser offline_access patient/*.rs"
RFC6749_ERRORS = {
    "invalid_request", "invalid_client", "invalid_grant", "unauthorized_client",
    "unsupported_grant_type", "invalid_scope", "access_denied", "unsupported_response_type",
    "server_error", "temporarily_unavailable",
}  # fmt: skip


async def test_s13_secret_hashed_and_bad_secret_401(smart: Smart, world: World) -> None:
    """S13: a bad secret → 401 invalid_client with a Basic challenge; the secret is stored
    only as an argon2id hash."""
    done = await smart.authorization(world.symmetric, SCOPE, world.clinician, patient=world.patient)
    answer = await smart.exchange(done, world.symmetric, secret="not-the-secret")
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"
    assert answer.headers["www-authenticate"].lower().startswith("basic")
    record = await smart.auth.records.get("client", world.symmetric)
    assert record is not None and record["secret_hash"].startswith("$argon2id$")
    assert world.secret not in str(record)


async def test_s14_no_store_on_every_token_answer(smart: Smart, world: World) -> None:
    """S14: Cache-Control no-store and Pragma no-cache on successes and errors alike."""
    tokens = await smart.token_request({"grant_type": "refresh_token", "refresh_token": "x"})
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    for answer in (tokens, await smart.exchange(done, world.public)):
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["pragma"] == "no-cache"


async def test_s15_id_token_signed_rs256_never_none(smart: Smart, world: World) -> None:
    """S15: the id_token is RS256 with a kid of the public JWKS (which holds no private
    parameters); the nonce is echoed (verified in full by the OIDC tests)."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user, nonce="abc123")
    token = jwt.decode(tokens["id_token"], smart.auth.keyring().keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.claims["nonce"] == "abc123"
    jwks = (await smart.http.get("/auth/jwks")).json()
    assert token.header["kid"] in {k["kid"] for k in jwks["keys"]}
    assert not any({"d", "p", "q", "dp", "dq", "qi"} & set(k) for k in jwks["keys"])


async def test_s16_revoking_access_token_revokes_grant(smart: Smart, world: World) -> None:
    """S16: revoking the access token (public client, client_id in the form) kills the refresh
    token too (the g10 revocation test revokes by refresh token)."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    answer = await smart.http.post(
        "/auth/revoke", data={"token": tokens["access_token"], "client_id": world.public}
    )
    assert answer.status_code == 200
    read = await smart.fhir("GET", f"Patient/{world.patient}", tokens["access_token"])
    assert read.status_code == 401
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert (await smart.token_request(form)).status_code in (400, 401)


async def test_s17_introspection_of_revoked_and_refresh_tokens(smart: Smart, world: World) -> None:
    """S17: a revoked token introspects as exactly {"active": false}; a refresh token as
    active with its scope and client (endpoint access control: the token tests)."""
    tokens = await smart.tokens(world.symmetric, SCOPE, world.clinician, secret=world.secret,
                                patient=world.patient)  # fmt: skip
    auth = (world.symmetric, world.secret)
    refresh = await smart.http.post(
        "/auth/introspect", data={"token": tokens["refresh_token"]}, auth=auth
    )
    assert refresh.json()["active"] is True and refresh.json()["client_id"] == world.symmetric
    await smart.http.post("/auth/revoke", data={"token": tokens["access_token"]}, auth=auth)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        answer = await smart.http.post("/auth/introspect", data={"token": token}, auth=auth)
        assert answer.json() == {"active": False}


async def test_s18_patient_scope_confined_to_compartment(smart: Smart, world: World) -> None:
    """S18: patient/ scopes see the context patient's compartment only (the HTTP matrix covers
    every interaction)."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    token = tokens["access_token"]
    other = await smart.fhir("GET", f"Patient/{world.other_patient}", token)
    assert other.status_code in (403, 404)
    search = await smart.fhir("GET", "Observation", token, params={"patient": world.other_patient})
    assert search.status_code in (200, 403)
    if search.status_code == 200:
        assert not [e for e in search.json().get("entry", []) if e["search"]["mode"] == "match"]


async def test_s19_cors_registered_origins_only(smart: Smart, world: World) -> None:
    """S19: the token endpoint and FHIR API allow only registered origins; /authorize sends
    no CORS headers at all."""
    tokens = await smart.tokens(world.public, SCOPE, world.patient_user)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    path = f"/fhir/Patient/{world.patient}"
    ok = await smart.http.get(path, headers={**bearer, "Origin": APP_ORIGIN})
    assert ok.headers.get("access-control-allow-origin") == APP_ORIGIN
    evil = await smart.http.get(path, headers={**bearer, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in evil.headers
    preflight = await smart.http.options(
        "/auth/token",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    token = await smart.token_request(
        {"grant_type": "refresh_token", "refresh_token": "x"},
        headers={"Origin": "https://evil.example"},
    )
    assert "access-control-allow-origin" not in token.headers
    async with smart.browser() as browser:
        page, _, _ = await smart.authorize(world.public, SCOPE, browser=browser)
        assert page.status_code == 200
    authorize = await smart.http.get(str(page.url), headers={"Origin": APP_ORIGIN})
    assert not [h for h in authorize.headers if h.startswith("access-control-")]


async def test_s20_pages_cannot_be_framed(smart: Smart, world: World) -> None:
    """S20: the login and consent pages send X-Frame-Options DENY and frame-ancestors 'none'."""
    async with smart.browser() as browser:
        login, _, _ = await smart.authorize(world.public, SCOPE, browser=browser)
        form = page_form(login.text)
        data = Smart._submission(form, world.patient_user, None, "approve", None)
        consent = await browser.post(form.action, content=urlencode(data), headers=FORM)
    assert 'name="decision"' in consent.text
    for answer in (login, consent):
        assert answer.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


async def test_s21_post_answers_303(smart: Smart, world: World) -> None:
    """S21: a redirect answering a POST is 303 (consent, and a POSTed authorize's error)."""
    async with smart.browser() as browser:
        answer, _, _ = await smart.authorize(
            world.public, SCOPE, browser=browser, method="POST", aud="https://x.example/fhir"
        )
    assert answer.status_code == 303
    done = await smart.authorization(world.public, SCOPE, world.patient_user, method="POST")
    assert done.code  # walk() asserts 303 on every redirect after a POST


async def s22_check(smart: Smart, world: World, caplog: pytest.LogCaptureFixture) -> None:
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    assert set(done.params) == {"code", "state"}
    tokens = (await smart.exchange(done, world.public)).json()
    token = tokens["access_token"]
    query = await smart.fhir("GET", f"Patient/{world.patient}?access_token={token}")
    assert query.status_code == 401
    assert (await smart.fhir("GET", f"Patient/{world.patient}", token)).status_code == 200
    await smart.fhir("GET", "Patient/unknown-id", token)
    refreshed = await smart.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    )
    await smart.http.post("/auth/introspect", data={"token": token}, auth=(world.public, "x"))
    secrets = [token, tokens["refresh_token"], tokens["id_token"], done.code, "correct horse",
               refreshed.json()["access_token"], refreshed.json()["refresh_token"]]  # fmt: skip
    access_lines = [r for r in caplog.records if r.name == "fhir_server.access"]
    assert access_lines, "the access log should have lines"
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    for record in server_side:  # the test's own HTTP client logs the URLs it asks for
        line = record.getMessage()
        for secret in secrets:
            assert secret not in line, f"{record.name} logged a secret: {line[:120]}"


async def test_s22_tokens_not_in_urls_or_logs(
    smart: Smart, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """S22 (what the application controls; TLS >= 1.2 is the deployment's): the code redirect
    carries only code and state; a token in the query string is not accepted (RFC 6750 §2.3,
    RFC 9700 §4.3); at the default level (info) no secret, code or token appears in any log
    line, the access log (fhir_server.access) included."""
    caplog.set_level(logging.INFO)
    await s22_check(smart, world, caplog)


async def test_s22_tokens_not_in_debug_logs(
    smart: Smart, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """S22: no token in the log even when the operator runs at debug level."""
    caplog.set_level(logging.DEBUG)
    await s22_check(smart, world, caplog)


async def test_s23_error_format(smart: Smart, world: World) -> None:
    """S23: token-endpoint errors are RFC 6749 §5.2 JSON: a registered ``error`` code and an
    ``error_description`` without CR, LF or TAB."""
    done = await smart.authorization(world.public, SCOPE, world.patient_user)
    answers = [
        await smart.token_request({"grant_type": "nope"}),
        await smart.token_request(
            {"grant_type": "authorization_code", "code": "x", "client_id": world.public}
        ),
        await smart.token_request({"grant_type": "refresh_token", "refresh_token": "x"}),
        await smart.exchange(done, world.public, code_verifier="wrong" * 10),
        await smart.exchange(done, "no-such-client"),
        await smart.http.post("/auth/introspect", data={"token": "x"}),
    ]
    for answer in answers:
        assert answer.status_code in (400, 401)
        body = answer.json()
        assert body["error"] in RFC6749_ERRORS, body
        description = body.get("error_description", "")
        assert not {"\r", "\n", "\t"} & set(description), body


async def launch(smart: Smart, world: World, **context: object) -> str:
    answer = await smart.http.post(
        "/auth/launch", json={"patient": world.patient, **context},
        headers={"Authorization": f"Bearer {smart.admin_token}"},
    )  # fmt: skip
    assert answer.status_code == 201
    return str(answer.json()["launch"])


async def test_s24_launch_handle(smart: Smart, world: World) -> None:
    """S24: the launch handle is opaque (random, no patient id), single-use, short-lived and
    bound to its user; an unknown one gives an error."""
    handle = await launch(smart, world, user=world.clinician)
    assert len(handle) >= 22 and world.patient not in handle
    scope = "launch openid patient/*.rs"
    async with smart.browser() as browser:
        answer, _, _ = await smart.authorize(world.symmetric, scope, browser=browser,
                                             launch="made-up-launch")  # fmt: skip
    assert query_of(answer.headers["location"])["error"] == "invalid_request"
    async with smart.browser() as browser:  # another user cannot use it
        answer, _, _ = await smart.authorize(world.symmetric, scope, browser=browser, launch=handle)
        with pytest.raises(AssertionError, match="401"):
            await smart.walk(answer, browser, world.patient_user)
    done = await smart.authorization(world.symmetric, scope, world.clinician, launch=handle)
    assert done.code
    async with smart.browser() as browser:  # used once
        answer, _, _ = await smart.authorize(world.symmetric, scope, browser=browser, launch=handle)
    assert "code" not in query_of(answer.headers.get("location", "?"))
    late = await launch(smart, world)
    smart.clock.advance(301)
    try:
        async with smart.browser() as browser:
            answer, _, _ = await smart.authorize(world.symmetric, scope, browser=browser,
                                                 launch=late)  # fmt: skip
    finally:
        smart.clock.advance(-301)
    assert query_of(answer.headers["location"])["error"] == "invalid_request"


async def test_s25_consent_page_offers_choices(smart: Smart, world: World) -> None:
    """S25: the consent page lets the user untick resource scopes, discloses offline_access,
    and offers granular category choices for Observation and Condition."""
    scope = "launch/patient openid offline_access patient/Observation.rs patient/Condition.rs"
    done = await smart.authorization(world.public, scope, world.patient_user)
    page = html.unescape(done.pages[-1])
    for value in ("patient/Observation.rs", "patient/Condition.rs"):
        assert f'name="scope" value="{value}"' in page
    assert 'value="patient/Observation.rs?category=' in page
    assert 'value="patient/Condition.rs?category=' in page
    assert "offline" in page.lower()


async def test_s25_deselected_scopes_are_not_granted(smart: Smart, world: World) -> None:
    """S25: a scope the user unticks is not granted."""
    scope = "launch/patient openid patient/Patient.rs patient/Observation.rs"
    done = await smart.authorization(
        world.public, scope, world.patient_user,
        scopes=lambda chosen: [s for s in chosen if s != "patient/Observation.rs"],
    )  # fmt: skip
    tokens = (await smart.exchange(done, world.public)).json()
    assert "patient/Observation.rs" not in tokens["scope"].split()
    assert "patient/Observation.rs" not in unverified_claims(tokens["access_token"])["scope"]


async def test_s25_denial_redirects_access_denied(smart: Smart, world: World) -> None:
    """S25: the user may refuse: access_denied with state, no code."""
    done = await smart.authorization(world.public, SCOPE, world.patient_user, decision="deny")
    assert done.location.startswith(REDIRECT)
    assert done.params["error"] == "access_denied" and done.params["state"] == done.state
    assert "code" not in done.params
