"""SMART on FHIR's Python client (PyPI ``fhirclient`` 4.4.0, written by no one here) against
``serve --auth smart``: it finds the endpoints only in /metadata's oauth-uris extension, always
sends PKCE S256 and ``aud``, posts the code with Basic auth (confidential) or client_id (public),
refreshes, and sends a pre-signed assertion for Backend Services. The login and consent pages
are filled in from their HTML (smart_support.login_and_approve), as a browser would submit them.
fhirclient ignores the id_token, so the test verifies it with joserfc against /auth/jwks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fhirclient import client
from fhirclient.models.patient import Patient

from tests.integration.smart_support import (
    AuthorizationPageError,
    SigningKey,
    SmartServer,
    add_client,
    add_user,
    backend_token,
    client_assertion,
    create_launch,
    create_patient,
    login_and_approve,
    make_key,
    public_jwks,
    verify_id_token,
)

pytestmark = pytest.mark.socket

REDIRECT = "http://127.0.0.1:9/fhirclient/callback"  # never followed: the test reads Location
SECRET = "a confidential app's secret, long enough"
USER, PASSWORD = "dr-quinn", "correct horse battery staple"
OTHER_USER = "dr-cooper"
BACKEND_SCOPE = "system/Patient.cruds system/Launch.c"  # creates patients, opens EHR launches
APP_SCOPE = "openid fhirUser patient/Patient.rs offline_access"  # fhirclient adds launch/patient


@dataclass
class World:
    server: SmartServer
    patient: str
    backend_key: SigningKey


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("smart-fhirclient")
    data = root / "data"
    add_user(data, USER, PASSWORD, fhir_user="Practitioner/quinn", name="Dr. Michaela Quinn")
    add_user(data, OTHER_USER, PASSWORD, fhir_user="Practitioner/cooper")
    add_client(data, "py-confidential", "confidential", secret=SECRET, redirect_uris=[REDIRECT])
    add_client(data, "py-public", "public", redirect_uris=[REDIRECT], name="Public Python app")
    backend_key = make_key("RS384")
    jwks = root / "py-backend.jwks.json"
    jwks.write_text(json.dumps(public_jwks(backend_key)))
    add_client(data, "py-backend", "backend", jwks_file=jwks, scope=BACKEND_SCOPE, name="EHR")
    server = SmartServer(data).start()
    try:
        token = backend_token(server, "py-backend", backend_key, BACKEND_SCOPE)
        patient = create_patient(server, token, "Sully", "Byron")
        yield World(server, patient, backend_key)
    finally:
        server.stop()


def system_token(world: World) -> str:
    return backend_token(world.server, "py-backend", world.backend_key, BACKEND_SCOPE)


def app(
    world: World, client_id: str, secret: str | None = None, launch: str | None = None
) -> client.FHIRClient:
    settings = {
        "app_id": client_id,
        "api_base": world.server.fhir,
        "redirect_uri": REDIRECT,
        "scope": APP_SCOPE,
    }
    if secret is not None:
        settings["app_secret"] = secret
    if launch is not None:
        settings["launch_token"] = launch  # an EHR launch: fhirclient adds the launch scope
    return client.FHIRClient(settings=settings)


def launch(world: World, smart: client.FHIRClient, username: str = USER) -> None:
    """Standalone launch: authorize URL, the user logs in and picks the patient, the callback."""
    url = smart.authorize_url
    assert url.startswith(world.server.issuer + "/authorize?")
    callback = login_and_approve(url, username, PASSWORD, patient=world.patient)
    assert callback.startswith(REDIRECT + "?")
    smart.handle_callback(callback)


def test_confidential_standalone_launch_id_token_and_refresh(world: World) -> None:
    smart = app(world, "py-confidential", SECRET)
    launch(world, smart)
    assert smart.ready and smart.patient_id == world.patient
    assert smart.patient is not None and smart.patient.name[0].family == "Sully"

    context = smart.launch_context
    assert context["token_type"].lower() == "bearer"
    granted = set(context["scope"].split())
    assert {"launch/patient", "openid", "fhirUser", "offline_access"} <= granted
    claims = verify_id_token(world.server, context["id_token"], "py-confidential")
    assert claims["fhirUser"].endswith("Practitioner/quinn")

    auth = smart.server.auth
    first_access, first_refresh = auth.access_token, auth.refresh_token
    assert first_refresh
    assert smart.reauthorize()
    assert auth.access_token != first_access
    assert auth.refresh_token and auth.refresh_token != first_refresh  # rotated
    assert Patient.read(world.patient, smart.server).id == world.patient

    replay = httpx.post(
        world.server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": first_refresh},
        auth=("py-confidential", SECRET),
        timeout=30,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_public_client_standalone_launch_and_refresh(world: World) -> None:
    smart = app(world, "py-public")
    launch(world, smart)
    assert smart.patient_id == world.patient
    assert Patient.read(world.patient, smart.server).name[0].given == ["Byron"]
    verify_id_token(world.server, smart.launch_context["id_token"], "py-public")
    assert smart.reauthorize()
    assert Patient.read(world.patient, smart.server).id == world.patient


def test_the_token_only_reaches_the_context_patient(world: World) -> None:
    smart = app(world, "py-public")
    launch(world, smart)
    other = create_patient(world.server, system_token(world), "Cooper", "Brian")
    answer = httpx.get(
        f"{world.server.fhir}/Patient/{other}",
        headers={"Authorization": f"Bearer {smart.server.auth.access_token}"},
        timeout=30,
    )
    assert answer.status_code in (403, 404), answer.text


def test_ehr_launch_with_a_launch_token(world: World) -> None:
    patient = create_patient(world.server, system_token(world), "Quinn", "Colleen")
    handle = create_launch(world.server, system_token(world), patient=patient, user=USER)
    smart = app(world, "py-confidential", SECRET, launch=handle)
    url = smart.authorize_url
    assert f"launch={handle}" in url
    seen: list[str] = []
    callback = login_and_approve(
        url, USER, PASSWORD, on_page=lambda _, form: seen.extend(form.radios)
    )
    assert "patient" not in seen  # no picker: the launch names the patient
    smart.handle_callback(callback)
    assert smart.patient_id == patient
    assert "launch" in smart.launch_context["scope"].split()
    assert smart.patient.name[0].given == ["Colleen"]


def test_an_ehr_launch_is_only_for_its_user(world: World) -> None:
    handle = create_launch(world.server, system_token(world), patient=world.patient, user=USER)
    smart = app(world, "py-confidential", SECRET, launch=handle)
    with pytest.raises(AuthorizationPageError) as refused:  # shown as a failed sign-in
        login_and_approve(smart.authorize_url, OTHER_USER, PASSWORD)
    assert refused.value.status == 401
    standalone = app(world, "py-confidential", SECRET)  # the same credentials do sign in
    launch(world, standalone, username=OTHER_USER)
    assert standalone.patient_id == world.patient


def test_backend_services_with_a_presigned_assertion(world: World) -> None:
    assertion = client_assertion(world.backend_key, "py-backend", world.server.token_url)
    smart = client.FHIRClient(
        settings={
            "app_id": "py-backend",
            "api_base": world.server.fhir,
            "jwt_token": assertion,
            "scope": "system/Patient.rs",
        }
    )
    smart.wants_patient = False  # a system client asks for no launch context
    assert not smart.prepare()  # discovered through /metadata, no token yet
    smart.authorize()
    assert smart.ready
    assert set(smart.launch_context["scope"].split()) == {"system/Patient.rs"}
    found = list(Patient.where({"_id": world.patient}).perform_resources_iter(smart.server))
    assert [p.id for p in found] == [world.patient]


def test_without_a_token_the_api_answers_401(world: World) -> None:
    answer = httpx.get(f"{world.server.fhir}/Patient/{world.patient}", timeout=30)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].lower().startswith("bearer")
