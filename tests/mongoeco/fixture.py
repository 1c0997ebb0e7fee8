"""A MongoDB for the tests: mongoeco on loopback, or the real one in FHIR_SERVER_TEST_MONGODB_URL.

mongoeco (a MongoDB wire-protocol imitation, Python >= 3.13) runs from its own environment,
``.venv-mongoeco`` (``make mongoeco``), as a child process started once per test session and
stopped with it. Each test gets its own database on it (see :func:`database_url`). Without that
environment the Mongo tests are skipped, except under CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MONGOECO_PYTHON = ROOT / ".venv-mongoeco" / "bin" / "python"
SERVER = Path(__file__).with_name("server.py")
URL_VARIABLE = "FHIR_SERVER_TEST_MONGODB_URL"


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the MongoDB tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of the MongoDB deployment the session's tests use (no database in it)."""
    real = os.environ.get(URL_VARIABLE)
    if real:
        yield real
        return
    if not MONGOECO_PYTHON.exists():
        _missing(f"mongoeco is not installed: run `make mongoeco` or set {URL_VARIABLE}")
    log = tmp_path_factory.mktemp("mongoeco") / "server.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(
            [str(MONGOECO_PYTHON), str(SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline().strip()
        if not line.startswith("mongodb://"):
            process.kill()
            process.wait()
            raise RuntimeError(f"mongoeco did not start: {line} {log.read_text()}")
        yield line
    finally:
        process.stdin.close()  # the server stops when its standard input closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def database_name(key: str) -> str:
    """The test database named after ``key`` (the same key gives the same database)."""
    return "fhir_test_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def database_url(server: str, key: str) -> str:
    """``server`` with the database :func:`database_name` gives for ``key``."""
    name = database_name(key)
    base, _, query = server.partition("?")
    base = base.rstrip("/")
    return f"{base}/{name}" + (f"?{query}" if query else "")
