"""SMART Backend Services against ``serve --auth smart``: clients registered with the CLI whose
``client_assertion`` (RFC 7523) is signed with joserfc, RS384 and ES384, their public keys given
by value (``--jwks-file``) or by URL (a loopback JWKS server); the token then searches FHIR.
A replayed ``jti`` is refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.smart_support import (
    LoopbackServer,
    SigningKey,
    SmartServer,
    add_client,
    backend_token_response,
    create_patient,
    make_key,
    public_jwks,
)

pytestmark = pytest.mark.socket

SCOPE = "system/Patient.rs system/Observation.rs"


@dataclass
class World:
    server: SmartServer
    jwks_server: LoopbackServer
    keys: dict[str, SigningKey]  # client id -> its private key
    patient: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("smart-backend")
    data = root / "data"
    jwks_server = LoopbackServer()
    keys: dict[str, SigningKey] = {}
    try:
        for alg in ("RS384", "ES384"):
            by_value, by_url = f"file-{alg.lower()}", f"url-{alg.lower()}"
            keys[by_value], keys[by_url] = make_key(alg), make_key(alg)
            jwks = root / f"{by_value}.json"
            jwks.write_text(json.dumps(public_jwks(keys[by_value])))
            add_client(data, by_value, "backend", jwks_file=jwks, scope=SCOPE)
            jwks_server.serve_json(f"/{by_url}/jwks.json", public_jwks(keys[by_url]))
            url = f"{jwks_server.base}/{by_url}/jwks.json"
            add_client(data, by_url, "backend", jwks_url=url, scope=SCOPE)
        keys["loader"] = make_key("ES384")
        loader_jwks = root / "loader.json"
        loader_jwks.write_text(json.dumps(public_jwks(keys["loader"])))
        add_client(data, "loader", "backend", jwks_file=loader_jwks, scope="system/Patient.c")
        server = SmartServer(data).start()
        try:
            token = token_for(server, "loader", keys["loader"], "system/Patient.c")
            yield World(server, jwks_server, keys, create_patient(server, token, "Kaur", "Amrit"))
        finally:
            server.stop()
    finally:
        jwks_server.stop()


def token_for(server: SmartServer, client_id: str, key: SigningKey, scope: str) -> str:
    answer = backend_token_response(server, client_id, key, scope)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    body = answer.json()
    assert body["token_type"].lower() == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert set(body["scope"].split()) == set(scope.split())
    assert "refresh_token" not in body
    return str(body["access_token"])


@pytest.mark.parametrize("client_id", ["file-rs384", "file-es384", "url-rs384", "url-es384"])
def test_signed_assertion_gets_a_token_that_searches(world: World, client_id: str) -> None:
    token = token_for(world.server, client_id, world.keys[client_id], SCOPE)
    found = httpx.get(
        f"{world.server.fhir}/Patient",
        params={"family": "Kaur"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert found.status_code == 200, found.text
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [world.patient]
    if client_id.startswith("url-"):
        assert f"/{client_id}/jwks.json" in world.jwks_server.requests


def test_the_token_grants_only_its_scopes(world: World) -> None:
    token = token_for(world.server, "file-es384", world.keys["file-es384"], "system/Patient.rs")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    write = httpx.post(
        f"{world.server.fhir}/Patient",
        json={"resourceType": "Patient", "name": [{"family": "Nope"}]},
        headers=headers,
        timeout=30,
    )
    assert write.status_code == 403, write.text


def test_a_replayed_jti_is_refused(world: World) -> None:
    jti = uuid.uuid4().hex
    key = world.keys["file-rs384"]
    first = backend_token_response(world.server, "file-rs384", key, SCOPE, jti=jti)
    assert first.status_code == 200, first.text
    replay = backend_token_response(world.server, "file-rs384", key, SCOPE, jti=jti)
    assert replay.status_code in (400, 401), replay.text
    assert replay.json()["error"] in ("invalid_client", "invalid_grant")


def test_a_key_the_client_did_not_register_is_refused(world: World) -> None:
    stranger = make_key("ES384", kid=world.keys["url-es384"].kid)  # same kid, other key
    answer = backend_token_response(world.server, "url-es384", stranger, SCOPE)
    assert answer.status_code in (400, 401), answer.text
    assert answer.json()["error"] == "invalid_client"
