"""``fhir-server serve`` as a user runs it: settings from options and FHIR_SERVER_* variables,
refusal to serve unauthenticated on a non-loopback address, data surviving restarts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fhir_server.settings import Settings, is_loopback
from tests.api.test_http_read_write import PATIENT
from tests.conftest import ServerProcess


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "fhir_server", *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_refuses_non_loopback_without_insecure(tmp_path: Path) -> None:
    result = run_cli("serve", "--auth", "off", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr


def test_refuses_non_loopback_from_environment(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        env={
            "FHIR_SERVER_HOST": "10.1.2.3",
            "FHIR_SERVER_DATA_DIR": str(tmp_path),
            "FHIR_SERVER_AUTH": "off",
        },
    )
    assert result.returncode == 2


def test_settings_from_environment_and_overrides() -> None:
    settings = Settings.from_env(
        {"FHIR_SERVER_PORT": "9999", "FHIR_SERVER_DATA_DIR": "/tmp/x", "FHIR_SERVER_INSECURE": "1"}
    )
    assert settings.port == 9999 and settings.data_dir == Path("/tmp/x") and settings.insecure
    assert settings.with_overrides(port=1234, host=None).port == 1234
    assert Settings(host="0.0.0.0", auth="off", insecure=True).check()[0].startswith("INSECURE")
    with pytest.raises(ValueError, match="loopback"):
        Settings(host="192.0.2.1", auth="off").check()
    with pytest.raises(ValueError, match="auth"):
        Settings(auth="bogus").check()
    assert Settings().auth == "smart"  # issue 7.7: SMART authorization is on by default
    assert "TLS" in Settings(host="192.0.2.1").check()[0]
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


def test_insecure_is_said_loudly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked without binding: tests only ever listen on loopback."""
    from fhir_server import cli

    served: list[Settings] = []
    monkeypatch.setattr(cli, "_serve", lambda settings: served.append(settings) or 0)
    assert (
        cli.main(["serve", "--auth", "off", "--host", "0.0.0.0", "--insecure", "--port", "1"]) == 0
    )
    assert served[0].host == "0.0.0.0" and served[0].insecure
    assert "WARNING: INSECURE" in capsys.readouterr().err


def test_cn4_1_4_data_survives_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = ServerProcess(data)
    try:
        first.wait_ready()
        created = httpx.post(f"{first.base}/fhir/Patient", json=PATIENT, timeout=10)
        assert created.status_code == 201
        id = created.json()["id"]
    finally:
        first.stop()
    second = ServerProcess(data, env={"FHIR_SERVER_LOG_LEVEL": "warning"})
    try:
        second.wait_ready()
        read = httpx.get(f"{second.base}/fhir/Patient/{id}", timeout=10)
        assert read.status_code == 200 and read.json()["birthDate"] == "1974-12-25"
    finally:
        second.stop()


def test_ro1_4_no_personal_data_in_the_log(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data")
    try:
        proc.wait_ready()
        httpx.post(f"{proc.base}/fhir/Patient", json=PATIENT, timeout=10)
        httpx.get(f"{proc.base}/fhir/Patient?_id=Chalmers-secret", timeout=10)
        httpx.post(
            f"{proc.base}/fhir/Patient", json={**PATIENT, "birthDate": "Chalmers-bad"}, timeout=10
        )
    finally:
        proc.stop()
    log = proc.log.read_text()
    assert "Chalmers" not in log
    assert "create 201" in log


def test_data_files_are_private(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data")
    try:
        proc.wait_ready()
        assert httpx.post(f"{proc.base}/fhir/Patient", json=PATIENT, timeout=10).status_code == 201
    finally:
        proc.stop()
    files = list((tmp_path / "data").iterdir())
    assert files and all(f.stat().st_mode & 0o077 == 0 for f in files)


def test_body_limit_from_environment_is_413_over_a_socket(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data", env={"FHIR_SERVER_MAX_BODY_BYTES": "200"})
    try:
        proc.wait_ready()
        big = {**PATIENT, "name": [{"family": "x" * 300}]}
        response = httpx.post(f"{proc.base}/fhir/Patient", json=big, timeout=10)
        assert response.status_code == 413
        assert response.json()["issue"][0]["code"] == "too-costly"
        small = httpx.post(
            f"{proc.base}/fhir/Patient", json={"resourceType": "Patient"}, timeout=10
        )
        assert small.status_code == 201
    finally:
        proc.stop()
