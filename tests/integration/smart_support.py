"""Shared pieces of the real-client SMART tests: a ``serve --auth smart`` process, users and
clients registered through the CLI as an operator would, the login and consent forms filled in
by a plain HTTP client (as a browser would submit them), client keys and assertions made with
joserfc, and small loopback HTTP servers (a client's JWKS URL, an app's static pages).

Nothing here reaches into the server: everything goes through its CLI, its HTML and its HTTP API.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from tests.conftest import ServerProcess

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
SigningKey = RSAKey | ECKey


def cli(data_dir: Path, *args: str, stdin: str | None = None) -> str:
    """``python -m fhir_server ARGS --data-dir DATA_DIR``; its standard output, or an error."""
    run = subprocess.run(
        [sys.executable, "-m", "fhir_server", *args, "--data-dir", str(data_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if run.returncode != 0:
        raise RuntimeError(f"fhir_server {' '.join(args)} failed: {run.stderr or run.stdout}")
    return run.stdout


def add_user(
    data_dir: Path, username: str, password: str, *, fhir_user: str | None = None, name: str = ""
) -> None:
    args = ["users", "add", username, "--password-stdin"]
    if fhir_user:
        args += ["--fhir-user", fhir_user]
    if name:
        args += ["--name", name]
    cli(data_dir, *args, stdin=password + "\n")


def add_client(
    data_dir: Path,
    client_id: str,
    kind: str,
    *,
    secret: str | None = None,
    redirect_uris: Iterable[str] = (),
    launch_uri: str | None = None,
    scope: str | None = None,
    jwks_file: Path | None = None,
    jwks_url: str | None = None,
    name: str = "",
) -> None:
    """Registers a client: ``kind`` is public, confidential or backend."""
    args = ["clients", "add", client_id, "--type", kind]
    if secret is not None:
        args.append("--secret-stdin")
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    for option, value in (
        ("--launch-uri", launch_uri),
        ("--scope", scope),
        ("--jwks-file", str(jwks_file) if jwks_file else None),
        ("--jwks-url", jwks_url),
        ("--name", name or None),
    ):
        if value is not None:
            args += [option, value]
    cli(data_dir, *args, stdin=None if secret is None else secret + "\n")


class SmartServer(ServerProcess):
    """``python -m fhir_server serve --auth smart`` on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "--auth", "smart")
        self.fhir = f"{self.base}/fhir"
        self.issuer = f"{self.base}/auth"
        self.token_url = f"{self.base}/auth/token"

    def start(self) -> SmartServer:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self


# Keys and client assertions (RFC 7523 as SMART Backend Services profiles it).


def make_key(alg: str, kid: str | None = None) -> SigningKey:
    """A fresh signing key for ``alg`` (RS384 or ES384) carrying its kid and alg."""
    parameters: dict[str, Any] = {"kid": kid or uuid.uuid4().hex, "alg": alg, "use": "sig"}
    if alg.startswith("ES"):
        return ECKey.generate_key("P-384", parameters=parameters)  # type: ignore[arg-type]
    return RSAKey.generate_key(2048, parameters=parameters)  # type: ignore[arg-type]


def public_jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def client_assertion(
    key: SigningKey, client_id: str, token_url: str, *, jti: str | None = None, lifetime: int = 240
) -> str:
    """A signed ``client_assertion``: iss = sub = client id, aud = the token URL, short exp."""
    alg = str(key.as_dict()["alg"])
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_url,
        "exp": now + lifetime,
        "iat": now,
        "jti": jti or uuid.uuid4().hex,
    }
    header = {"alg": alg, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[alg])


def backend_token_response(
    server: SmartServer, client_id: str, key: SigningKey, scope: str, *, jti: str | None = None
) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion(key, client_id, server.token_url, jti=jti),
    }
    return httpx.post(server.token_url, data=form, timeout=30)


def backend_token(server: SmartServer, client_id: str, key: SigningKey, scope: str) -> str:
    answer = backend_token_response(server, client_id, key, scope)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def verify_id_token(server: SmartServer, id_token: str, client_id: str) -> dict[str, Any]:
    """The id_token's claims once its RS256 signature checks against the server's JWKS."""
    keys = KeySet.import_key_set(httpx.get(f"{server.issuer}/jwks", timeout=30).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header.get("kid")
    assert token.header["kid"] in {key.kid for key in keys.keys}
    claims = dict(token.claims)
    assert claims["iss"] == server.issuer
    audience = claims["aud"]
    assert audience == client_id or (isinstance(audience, list) and client_id in audience)
    assert claims["exp"] > time.time() >= claims["iat"] - 5
    return claims


def create_patient(server: SmartServer, token: str, family: str, given: str) -> str:
    patient = {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}
    headers = {**FHIR_JSON, "Authorization": f"Bearer {token}"}
    created = httpx.post(f"{server.fhir}/Patient", json=patient, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def create_launch(server: SmartServer, token: str, **context: Any) -> str:
    """An EHR launch handle from ``POST /auth/launch`` (a portal's system token)."""
    answer = httpx.post(
        f"{server.base}/auth/launch",
        json=context,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert 0 < answer.json()["expires_in"] <= 300
    return str(answer.json()["launch"])


# The login and consent pages, filled in from their HTML as a browser would submit them.


class AuthorizationPageError(AssertionError):
    """The authorization server answered a page of its own with an error status."""

    def __init__(self, status: int, html: str) -> None:
        super().__init__(f"{status}: {html[:2000]}")
        self.status = status
        self.html = html


@dataclass
class Form:
    action: str = ""
    method: str = "get"
    fields: list[tuple[str, str]] = field(default_factory=list)  # what a browser would send
    radios: dict[str, list[str]] = field(default_factory=dict)  # name -> every offered value
    buttons: list[tuple[str, str]] = field(default_factory=list)  # named submit buttons
    names: set[str] = field(default_factory=set)  # every named control


class FormParser(HTMLParser):
    """The page's forms: every named input with the value it would be submitted with."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
            return
        if not self.forms or "name" not in a:
            return
        form, name = self.forms[-1], a["name"]
        form.names.add(name)
        if tag == "input":
            kind = a.get("type", "text").lower()
            if kind in ("submit", "image", "button"):
                form.buttons.append((name, a.get("value", "")))
            elif kind in ("checkbox", "radio"):
                if kind == "radio":
                    form.radios.setdefault(name, []).append(a.get("value", "on"))
                if "checked" in a:
                    form.fields.append((name, a.get("value", "on")))
            else:
                form.fields.append((name, a.get("value", "")))
        elif tag == "button" and a.get("type", "submit").lower() == "submit":
            form.buttons.append((name, a.get("value", "")))
        elif tag in ("select", "textarea"):
            form.fields.append((name, ""))


def page_form(html: str) -> Form:
    parser = FormParser()
    parser.feed(html)
    forms = [form for form in parser.forms if form.method == "post"]
    assert len(forms) == 1, f"expected one POST form on the page: {html[:2000]}"
    return forms[0]


def fill(
    form: Form, values: Mapping[str, str], button: tuple[str, str] | None
) -> dict[str, list[str]]:
    """The form's submission with ``values`` replacing (or choosing) those controls; a name
    may repeat (the checked ``scope`` boxes), hence the lists."""
    sent: dict[str, list[str]] = {}
    for name, value in form.fields:
        if name not in values:
            sent.setdefault(name, []).append(value)
    for name, value in values.items():
        sent[name] = [value]
    if button is not None:
        sent.setdefault(button[0], []).append(button[1])
    return sent


def login_and_approve(
    authorize_url: str,
    username: str,
    password: str,
    *,
    patient: str | None = None,
    decision: str = "approve",
    on_page: Callable[[str, Form], None] | None = None,
) -> str:
    """Follows the authorization server's pages from ``authorize_url`` (login, then consent,
    picking ``patient`` if asked) and returns the Location that leaves the server, the app's
    redirect URI with its code and state (or error). A page answered with an error status
    raises :class:`AuthorizationPageError`."""
    server = urlsplit(authorize_url)[:2]
    with httpx.Client(timeout=30) as browser:
        answer = browser.get(authorize_url)
        for _ in range(10):
            if answer.is_redirect:
                location = urljoin(str(answer.url), answer.headers["Location"])
                if urlsplit(location)[:2] != server:
                    return location
                answer = browser.get(location)
                continue
            if answer.status_code != 200:
                raise AuthorizationPageError(answer.status_code, answer.text)
            form = page_form(answer.text)
            if on_page is not None:
                on_page(answer.text, form)
            values: dict[str, str] = {}
            button = form.buttons[0] if form.buttons else None
            if "password" in form.names:
                values = {"username": username, "password": password}
            elif "decision" in form.names:
                button = ("decision", decision)
                if "patient" in form.radios:
                    assert patient in form.radios["patient"], form.radios
                    values["patient"] = patient
            else:
                raise AssertionError(f"neither a login nor a consent page: {answer.text[:2000]}")
            action = urljoin(str(answer.url), form.action or str(answer.url))
            answer = browser.post(action, data=fill(form, values, button))
            if answer.is_redirect:
                assert answer.status_code == 303, "a POST must be answered with 303"
    raise AssertionError("the authorization pages never redirected back to the app")


# Loopback HTTP servers standing in for the app's origin and a client's JWKS URL.


Route = tuple[str, bytes]  # content type, body


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 answering GETs from ``routes`` (path -> content)
    and from the files of ``directory``; ``requests`` records the paths asked for."""

    def __init__(self, routes: Mapping[str, Route] | None = None, directory: Path | None = None):
        self.routes: dict[str, Route] = dict(routes or {})
        self.directory = directory
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                owner.requests.append(path)
                found = owner.lookup(path)
                if found is None:
                    self.send_error(404)
                    return
                content_type, body = found
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the tests look at owner.requests instead

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._httpd.server_address[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def lookup(self, path: str) -> Route | None:
        if path in self.routes:
            return self.routes[path]
        if self.directory is None:
            return None
        candidate = (self.directory / path.lstrip("/")).resolve()
        if self.directory.resolve() not in candidate.parents or not candidate.is_file():
            return None
        types = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
        return types.get(candidate.suffix, "application/octet-stream"), candidate.read_bytes()

    def serve_json(self, path: str, document: Any) -> None:
        self.routes[path] = ("application/json", json.dumps(document).encode())

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)
