"""SMART's JavaScript client (npm ``fhirclient`` 2.6.3, its prebuilt browser bundle) in headless
Chromium, driven through playwright-core by tests/smart_clients/browser-launch.mjs, against
``serve --auth smart``. The app's pages come from a loopback server on another port, so every
call client-js makes (discovery, token, FHIR, refresh) is a cross-origin fetch. Two launches of a
public client with PKCE required: an EHR launch (a portal's ``POST /auth/launch`` handle) and a
standalone launch whose user picks the patient. client-js refreshes without sending client_id.

Needs node, ``make smart-clients`` and Debian's chromium; without them these tests skip, except
under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.integration.smart_support import (
    LoopbackServer,
    SmartServer,
    add_client,
    add_user,
    backend_token,
    create_launch,
    create_patient,
    make_key,
    public_jwks,
)

pytestmark = pytest.mark.socket

CLIENTS = Path(__file__).resolve().parents[1] / "smart_clients"
DRIVER = CLIENTS / "browser-launch.mjs"
BUNDLE = CLIENTS / "node_modules" / "fhirclient" / "build" / "fhir-client.js"
PLAYWRIGHT = CLIENTS / "node_modules" / "playwright-core" / "package.json"
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
USER, PASSWORD = "nurse-joy", "a long and memorable passphrase"
FHIR_USER = "Practitioner/joy"
APP_ID = "browser-app"
PORTAL_SCOPE = "system/Patient.cruds system/Launch.c"
EHR_SCOPE = "launch openid fhirUser patient/Patient.rs offline_access"
STANDALONE_SCOPE = "launch/patient openid fhirUser patient/Patient.rs offline_access"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


def require_browser_tools() -> str:
    """The node executable, once node, the installed clients and Chromium are all there."""
    node = shutil.which("node")
    if node is None:
        _missing("node is not installed")
    if not (PLAYWRIGHT.exists() and BUNDLE.exists()):
        _missing("the SMART browser clients are not installed: run `make smart-clients`")
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"no Chromium at {CHROMIUM} (Debian package chromium)")
    assert node is not None
    return node


@dataclass
class World:
    node: str
    server: SmartServer
    app: LoopbackServer
    portal_token: str
    patients: list[str]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    node = require_browser_tools()
    root = tmp_path_factory.mktemp("smart-browser")
    data = root / "data"
    app = LoopbackServer(
        {"/fhir-client.js": ("text/javascript; charset=utf-8", BUNDLE.read_bytes())},
        directory=CLIENTS / "app",
    )
    try:
        app.serve_json("/style.json", {"color_background": "#edeae3"})
        app.routes["/favicon.ico"] = ("image/x-icon", b"")  # keeps the console free of 404s
        add_user(data, USER, PASSWORD, fhir_user=FHIR_USER, name="Nurse Joy")
        add_client(
            data,
            APP_ID,
            "public",
            redirect_uris=[f"{app.base}/index.html"],
            launch_uri=f"{app.base}/launch.html",
            name="Browser test app",
        )
        portal_key = make_key("ES384")
        portal_jwks = root / "portal.json"
        portal_jwks.write_text(json.dumps(public_jwks(portal_key)))
        add_client(data, "ehr-portal", "backend", jwks_file=portal_jwks, scope=PORTAL_SCOPE)
        server = SmartServer(data).start()
        try:
            token = backend_token(server, "ehr-portal", portal_key, PORTAL_SCOPE)
            patients = [
                create_patient(server, token, "Lovelace", "Ada"),
                create_patient(server, token, "Hopper", "Grace"),
            ]
            yield World(node, server, app, token, patients)
        finally:
            server.stop()
    finally:
        app.stop()


def run_browser(world: World, url: str, patient: str | None = None) -> dict[str, Any]:
    """One launch in Chromium from ``url``; the driver's report, with the app's result."""
    spec: dict[str, Any] = {"url": url, "username": USER, "password": PASSWORD}
    spec |= {"patient": patient, "timeoutMs": 45_000, "executablePath": str(CHROMIUM)}
    run = subprocess.run(
        [world.node, str(DRIVER), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=CLIENTS,
    )
    lines = run.stdout.strip().splitlines()
    assert lines, f"the driver printed nothing (exit {run.returncode}): {run.stderr}"
    report: dict[str, Any] = json.loads(lines[-1])
    result = report.get("result") or {}
    assert run.returncode == 0 and result.get("stage") == "done", json.dumps(report, indent=1)
    return report


def check_app_result(world: World, result: dict[str, Any], patient: str) -> None:
    assert result["serverUrl"] == world.server.fhir
    assert result["patientId"] == patient
    assert result["patient"]["resourceType"] == "Patient" and result["patient"]["id"] == patient
    assert result["fhirUser"].endswith(FHIR_USER)
    id_token = result["idToken"]  # client-js decodes it; test_smart_fhirclient verifies one
    assert id_token["iss"] == world.server.issuer
    assert id_token["aud"] == APP_ID or APP_ID in id_token["aud"]
    assert result["context"]["has_refresh_token"]
    assert result["refreshed"] and result["refreshTokenRotated"]
    assert result["patientAfterRefresh"] == patient


def test_ehr_launch_in_the_browser(world: World) -> None:
    patient = world.patients[0]
    handle = create_launch(
        world.server,
        world.portal_token,
        patient=patient,
        user=USER,
        need_patient_banner=True,
        smart_style_url=f"{world.app.base}/style.json",
    )
    query = {"client_id": APP_ID, "scope": EHR_SCOPE, "iss": world.server.fhir, "launch": handle}
    report = run_browser(world, f"{world.app.base}/launch.html?{urlencode(query)}")
    assert report["steps"][0] == "login"
    assert "consent with patient picker" not in report["steps"]  # the launch names the patient
    result = report["result"]
    check_app_result(world, result, patient)
    assert result["context"]["need_patient_banner"] is True
    assert result["context"]["smart_style_url"] == f"{world.app.base}/style.json"
    assert "launch" in result["context"]["scope"].split()


def test_standalone_launch_with_patient_picker_in_the_browser(world: World) -> None:
    patient = world.patients[1]
    query = {"client_id": APP_ID, "scope": STANDALONE_SCOPE, "fhir_server": world.server.fhir}
    report = run_browser(world, f"{world.app.base}/launch.html?{urlencode(query)}", patient)
    assert report["steps"] == ["login", "consent with patient picker"]
    result = report["result"]
    check_app_result(world, result, patient)
    assert "launch/patient" in result["context"]["scope"].split()
    assert "/index.html" in world.app.requests  # the server sent the browser back to the app
