"""The container files: ``docker-compose.yml`` validates with Compose, and the production rules
hold in it and in the ``Dockerfile``.

No Docker engine runs where these tests run, so nothing here builds or starts an image. The
first test asks Compose itself (``docker compose config -q``, the plugin, or the standalone
``docker-compose``) whether the file is valid; without either tool it is skipped, except under
CI=true, where it fails (``.ci/run`` installs ``docker-compose``). The others read the files
(PyYAML, from ``uvicorn[standard]``) and check what the README promises: a replica set that
initiates itself, a database that is healthy before the server starts, a port published on
loopback only, a non-root image with a healthcheck.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DATA_DIR = "/var/lib/fhir-server"


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


def test_compose_config_is_valid() -> None:
    command = _compose_command()
    if command is None:
        reason = "neither `docker compose` nor `docker-compose` is installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must validate docker-compose.yml (.ci/run installs it)")
        pytest.skip(reason)
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"{' '.join(command)} config -q:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def _healthcheck_script(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def test_mongo_is_a_single_member_replica_set_that_initiates_itself(
    compose: dict[str, Any],
) -> None:
    mongo = compose["services"]["mongo"]
    assert re.fullmatch(r"mongo:8(\.[\d.]+)?", mongo["image"])
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    assert "--bind_ip_all" in command
    script = _healthcheck_script(mongo)
    assert script.split()[:2] == ["CMD", "mongosh"]
    assert "rs.status()" in script and "rs.initiate(" in script
    assert "_id: 'rs0'" in script and "host: 'mongo:27017'" in script  # the service's name
    assert "isWritablePrimary" in script  # healthy only once writes are accepted
    volumes = [v.split(":")[0] for v in mongo["volumes"]]
    assert "mongo-data" in volumes and "mongo-data" in compose["volumes"]
    assert "ports" not in mongo  # reachable from the fhir container only


def test_fhir_waits_for_a_healthy_replica_set(compose: dict[str, Any]) -> None:
    fhir = compose["services"]["fhir"]
    assert fhir["build"] in (".", {"context": "."})
    assert fhir["depends_on"] == {"mongo": {"condition": "service_healthy"}}
    url = fhir["environment"]["FHIR_SERVER_STORE"]
    assert url == "mongodb://mongo:27017/fhir?replicaSet=rs0"
    volumes = fhir["volumes"]
    assert any(v.split(":")[:2] == ["fhir-data", DATA_DIR] for v in volumes)
    assert "fhir-data" in compose["volumes"]


def test_fhir_is_published_on_loopback_only(compose: dict[str, Any]) -> None:
    """SMART authorization stays on (no --auth off, no FHIR_SERVER_INSECURE), and plain HTTP is
    published on the host's loopback only (TLS belongs to a proxy in front)."""
    fhir = compose["services"]["fhir"]
    assert "FHIR_SERVER_INSECURE" not in fhir["environment"]
    assert fhir["environment"].get("FHIR_SERVER_AUTH", "smart") == "smart"
    assert fhir["ports"], "the FHIR port must be published"
    for port in fhir["ports"]:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), port
        assert port.endswith(":8080")
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port}"


def test_dockerfile_is_multi_stage_from_locked_wheels(dockerfile: list[str]) -> None:
    stages = [line for line in dockerfile if line.startswith("FROM ")]
    assert len(stages) >= 2
    assert any(line.startswith("ARG PYTHON_IMAGE=python:3.11-slim") for line in dockerfile)
    runs = " ".join(line for line in dockerfile if line.startswith("RUN "))
    assert "pip wheel --require-hashes" in runs and "-r requirements.lock" in runs
    assert any(line.startswith("COPY --from=build ") for line in dockerfile)


def test_dockerfile_runs_as_a_non_root_user_with_a_healthcheck(dockerfile: list[str]) -> None:
    users = [line.split()[1] for line in dockerfile if line.startswith("USER ")]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "EXPOSE 8080" in dockerfile
    (health,) = [line for line in dockerfile if line.startswith("HEALTHCHECK ")]
    assert "/fhir/metadata" in health and "urllib.request" in health
    assert "curl" not in health and "wget" not in health  # neither is in the slim image
    assert f'VOLUME ["{DATA_DIR}"]' in dockerfile
    assert any(f"FHIR_SERVER_DATA_DIR={DATA_DIR}" in line for line in dockerfile)
    assert dockerfile[-1] == 'CMD ["fhir-server", "serve", "--host", "0.0.0.0"]'
    assert not any("FHIR_SERVER_INSECURE" in line for line in dockerfile)  # the publisher's call


def test_dockerignore_is_an_allow_list() -> None:
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed >= {"pyproject.toml", "README.md", "requirements.lock", "fhir_server"}
    assert not allowed & {".venv", "var", ".git", "tests"}
