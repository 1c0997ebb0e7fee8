"""The harness of the SMART conformance suite: one application per test module with
``--auth smart``, driven in-process over HTTP (ASGI) as Inferno drives a server: discovery,
the authorize → login → consent pages filled in from their HTML, the token endpoint, the FHIR
API with the tokens obtained.

The host is a loopback address (authlib refuses plain http elsewhere). Users and clients are
registered through ``application.smart.accounts``; FHIR data is created over HTTP with a
Backend Services token. A movable clock lets expiry be tested without waiting.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest
import pytest_asyncio

from fhir_server.auth.server.accounts import new_client, new_user
from fhir_server.auth.server.smart import SmartAuth
from fhir_server.bootstrap import Application, build, make_app
from fhir_server.settings import Settings
from tests.integration.smart_support import (
    JWT_BEARER,
    Form,
    SigningKey,
    client_assertion,
    make_key,
    page_form,
    public_jwks,
)

BASE = "http://127.0.0.1:8080"
FHIR = f"{BASE}/fhir"
ISSUER = f"{BASE}/auth"
TOKEN_URL = f"{ISSUER}/token"
AUTHORIZE_URL = f"{ISSUER}/authorize"
REDIRECT = "http://127.0.0.1:9999/app/callback"  # the app's page; never contacted
APP_ORIGIN = "http://127.0.0.1:9999"
PASSWORD = "correct horse battery"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

if TYPE_CHECKING:
    from tests.api.smart.world import World

ScopeEdit = Callable[[list[str]], list[str]]


class MovableClock:
    """The application's clock: real time plus an offset the tests may advance."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def unverified_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, read without checking the signature (for comparisons only)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorization:
    """One run of the authorization pages: where they sent the browser, and what was seen."""

    location: str  # the redirect leaving the server (to the app)
    verifier: str
    state: str
    pages: list[str] = field(default_factory=list)  # the HTML of every page shown

    @property
    def params(self) -> dict[str, str]:
        return query_of(self.location)

    @property
    def code(self) -> str:
        assert "code" in self.params, self.location
        return self.params["code"]


@dataclass
class Smart:
    application: Application
    http: httpx.AsyncClient
    transport: httpx.ASGITransport
    clock: MovableClock
    backend_key: SigningKey
    admin_token: str = ""

    @property
    def auth(self) -> SmartAuth:
        assert self.application.smart is not None
        return self.application.smart

    def browser(self) -> httpx.AsyncClient:
        """A fresh user agent (its own cookie jar) on the same application."""
        return httpx.AsyncClient(transport=self.transport, base_url=BASE)

    # -- registration ------------------------------------------------------------------------

    async def add_user(self, username: str, fhir_user: str | None = None) -> str:
        user = new_user(username, PASSWORD, name=username.title(), fhir_user=fhir_user)
        await self.auth.accounts.add_user(user, replace=True)
        return username

    async def add_client(self, client_id: str, kind: str, **options: Any) -> str:
        if kind != "backend":
            options.setdefault("redirect_uris", (REDIRECT,))
        client = new_client(client_id, kind, **options)
        await self.auth.accounts.add_client(client, replace=True)
        self.auth.forget_origins()
        return client_id

    # -- the authorization pages -------------------------------------------------------------

    async def authorize(
        self,
        client_id: str,
        scope: str,
        *,
        browser: httpx.AsyncClient,
        method: str = "GET",
        **params: str,
    ) -> tuple[httpx.Response, str, str]:
        """Starts the authorization; ``params`` add or override request parameters (a value
        "" drops one). Returns the first answer, the code verifier and the state."""
        verifier, challenge = pkce_pair()
        state = secrets.token_urlsafe(24)
        request = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": state,
            "aud": FHIR,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        request |= params
        request = {k: v for k, v in request.items() if v != ""}
        if method == "POST":
            answer = await browser.post("/auth/authorize", data=request)
        else:
            answer = await browser.get("/auth/authorize?" + urlencode(request))
        return answer, verifier, state

    async def walk(
        self,
        answer: httpx.Response,
        browser: httpx.AsyncClient,
        username: str,
        *,
        patient: str | None = None,
        decision: str = "approve",
        scopes: ScopeEdit | None = None,
        seen: list[str] | None = None,
    ) -> str:
        """Fills in the login and consent pages from ``answer`` on, as a browser submits
        them; returns the Location leaving the server. ``scopes`` edits the scope values the
        consent form would send (the user ticking and unticking boxes)."""
        for _ in range(10):
            if answer.is_redirect:
                location = urljoin(str(answer.url), answer.headers["Location"])
                if not location.startswith(BASE + "/"):
                    return location
                answer = await browser.get(location)
                continue
            assert answer.status_code == 200, f"{answer.status_code}: {answer.text[:1500]}"
            if seen is not None:
                seen.append(answer.text)
            form = page_form(answer.text)
            data = self._submission(form, username, patient, decision, scopes)
            action = urljoin(str(answer.url), form.action or str(answer.url))
            answer = await browser.post(action, content=urlencode(data), headers=FORM)
            if answer.is_redirect:
                assert answer.status_code == 303, "a POST is answered 303 (RFC 9700 §4.12)"
        raise AssertionError("the authorization pages never redirected to the app")

    @staticmethod
    def _submission(
        form: Form, username: str, patient: str | None, decision: str, scopes: ScopeEdit | None
    ) -> list[tuple[str, str]]:
        if "password" in form.names:
            fields = [(k, v) for k, v in form.fields if k not in ("username", "password")]
            return [*fields, ("username", username), ("password", PASSWORD)]
        assert "decision" in form.names, "neither a login nor a consent page"
        fields = [(k, v) for k, v in form.fields if k not in ("scope", "patient", "q")]
        chosen = [v for k, v in form.fields if k == "scope"]
        if scopes is not None:
            chosen = scopes(chosen)
        fields += [("scope", v) for v in chosen]
        if "patient" in form.radios:
            assert patient in form.radios["patient"], form.radios
            fields.append(("patient", patient))
        return [*fields, ("decision", decision)]

    async def authorization(
        self,
        client_id: str,
        scope: str,
        username: str,
        *,
        patient: str | None = None,
        scopes: ScopeEdit | None = None,
        decision: str = "approve",
        method: str = "GET",
        **params: str,
    ) -> Authorization:
        """The whole front channel: authorize, log in, consent; the redirect to the app."""
        async with self.browser() as browser:
            answer, verifier, state = await self.authorize(
                client_id, scope, browser=browser, method=method, **params
            )
            seen: list[str] = []
            location = await self.walk(
                answer, browser, username, patient=patient, decision=decision, scopes=scopes,
                seen=seen,
            )  # fmt: skip
        return Authorization(location, verifier, state, seen)

    # -- the token endpoint ------------------------------------------------------------------

    async def token_request(
        self,
        form: dict[str, str],
        *,
        secret: tuple[str, str] | None = None,
        key: SigningKey | None = None,
        client_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST to the token endpoint: ``secret`` (client_id, secret) for HTTP Basic, ``key``
        (with ``client_id``) for private_key_jwt, else the form as given."""
        data = dict(form)
        if key is not None:
            assert client_id is not None
            data |= {
                "client_assertion_type": JWT_BEARER,
                "client_assertion": client_assertion(key, client_id, TOKEN_URL),
            }
        if secret is None:
            return await self.http.post(TOKEN_URL, data=data, headers=headers)
        auth = httpx.BasicAuth(*secret)
        return await self.http.post(TOKEN_URL, data=data, auth=auth, headers=headers)

    async def exchange(
        self,
        authorization: Authorization,
        client_id: str,
        *,
        secret: str | None = None,
        key: SigningKey | None = None,
        **overrides: str,
    ) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": authorization.code,
            "redirect_uri": REDIRECT,
            "code_verifier": authorization.verifier,
        }
        if secret is None:
            form["client_id"] = client_id
        form = {k: v for k, v in (form | overrides).items() if v != "<omit>"}
        return await self.token_request(
            form, secret=(client_id, secret) if secret else None, key=key, client_id=client_id
        )

    async def tokens(
        self,
        client_id: str,
        scope: str,
        username: str,
        *,
        secret: str | None = None,
        key: SigningKey | None = None,
        patient: str | None = None,
        scopes: ScopeEdit | None = None,
        **params: str,
    ) -> dict[str, Any]:
        """An approved authorization exchanged for tokens (the token response's JSON)."""
        done = await self.authorization(
            client_id, scope, username, patient=patient, scopes=scopes, **params
        )
        answer = await self.exchange(done, client_id, secret=secret, key=key)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def backend_token(self, client_id: str, key: SigningKey, scope: str) -> str:
        form = {"grant_type": "client_credentials", "scope": scope}
        answer = await self.token_request(form, key=key, client_id=client_id)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])

    # -- the FHIR API ------------------------------------------------------------------------

    async def fhir(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if "json" in kwargs:
            headers.setdefault("Content-Type", "application/fhir+json")
        url = f"{FHIR}/{path}" if path else FHIR  # "": the base (batch, transaction)
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def create(self, resource: dict[str, Any]) -> str:
        """Creates ``resource`` with the unrestricted backend token; its id."""
        answer = await self.fhir("POST", resource["resourceType"], self.admin_token, json=resource)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])


async def start_smart(data_dir: Path, port: int = 8080) -> tuple[Smart, Callable[[], Any]]:
    """``port``: the one the application is told it listens on (the harness itself is ASGI,
    at :data:`BASE`)."""
    clock = MovableClock()
    application = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=data_dir, auth="smart", port=port),
        clock=clock,
        relay_poll_interval=0.05,
    )
    await application.start()
    transport = httpx.ASGITransport(app=make_app(application), client=("127.0.0.1", 50000))
    http = httpx.AsyncClient(transport=transport, base_url=BASE)
    key = make_key("RS384")
    smart = Smart(application, http, transport, clock, key)
    await smart.add_client(
        "backend-admin", "backend", jwks=public_jwks(key),
        scope="system/*.cruds system/Launch.c system/Admin.cruds",
    )  # fmt: skip
    smart.admin_token = await smart.backend_token(
        "backend-admin", key, "system/*.cruds system/Launch.c"
    )

    async def stop() -> None:
        await http.aclose()
        await application.stop()

    return smart, stop


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def smart(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Smart]:
    """One application per test module (the suite stays fast); tests register their own
    users and clients under distinct names."""
    harness, stop = await start_smart(tmp_path_factory.mktemp("smart") / "data")
    try:
        yield harness
    finally:
        await stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(smart: Smart) -> World:
    from tests.api.smart.world import make_world  # world.py imports this module

    return await make_world(smart)
