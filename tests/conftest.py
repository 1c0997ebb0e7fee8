"""Shared fixtures: an in-process app per test, and a real server process on 127.0.0.1.

``client`` is parametrised over both, so every HTTP-semantics test runs in-process (ASGI) and
over a real socket against ``fhir-server serve`` started as a user would start it.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.bootstrap import Application, build
from fhir_server.settings import Settings

pytest_plugins = ("tests.mongoeco.fixture",)


#: Ports for test servers: below the kernel's ephemeral range (32768 and up by default), so no
#: outgoing connection is handed one between free_port() and the server's bind (a port the
#: kernel picks for bind(0) can be); each xdist worker in a slice of its own.
PORT_BASE, PORT_SLICE, PORT_SLICES = 20000, 1500, 8
_handed: set[int] = set()


def free_port() -> int:
    """A loopback port free now and not given to another test of this process lately."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    low = PORT_BASE + (int(worker) % PORT_SLICES if worker.isdigit() else 0) * PORT_SLICE
    if len(_handed) > PORT_SLICE // 2:
        _handed.clear()  # long enough ago: those servers have stopped
    for _ in range(PORT_SLICE):
        port = random.randrange(low, low + PORT_SLICE)
        if port in _handed:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {low}-{low + PORT_SLICE - 1}")


class ServerProcess:
    """``python -m fhir_server serve`` on a free loopback port, stopped by the test."""

    def __init__(self, data_dir: Path, *extra: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"server-{self.port}.log"
        self._log_file = self.log.open("wb")
        args = [sys.executable, "-m", "fhir_server", "serve", "--port", str(self.port)]
        args += ["--data-dir", str(data_dir), *extra]
        if "--auth" not in extra:
            args += ["--auth", "off"]  # the FHIR-semantics tests; SMART has its own tests
        for door in ("--dicom-port", "--mllp-port"):  # the DICOM and MLLP doors only if asked
            if door not in extra:
                args += [door, "0"]
        self.process = subprocess.Popen(
            args, stdout=self._log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/fhir/metadata", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("server") / "data")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@asynccontextmanager
async def running_application(data_dir: Path, **settings: Any) -> AsyncIterator[Application]:
    """An application on ``data_dir``; ``settings``: other Settings fields than the defaults
    (authorization off unless asked for: these are the FHIR-semantics tests)."""
    settings.setdefault("auth", "off")
    settings.setdefault("dicom_port", 0)  # the DICOM and MLLP doors only where a test asks
    settings.setdefault("mllp_port", 0)
    app = build(Settings(data_dir=data_dir, **settings), relay_poll_interval=0.05)
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


@asynccontextmanager
async def asgi_client(application: Application) -> AsyncIterator[httpx.AsyncClient]:
    asgi = create_app(application.service, application)
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def application(tmp_path: Path) -> AsyncIterator[Application]:
    async with running_application(tmp_path / "data") as app:
        yield app


@pytest.fixture
async def inproc(application: Application) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(application) as client:
        yield client


@pytest.fixture(params=["inproc", "socket"])
async def client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The same tests in-process (ASGI) and over a real socket to a real server process."""
    if request.param == "inproc":
        async with running_application(tmp_path / "data") as app, asgi_client(app) as c:
            yield c
        return
    proc: ServerProcess = request.getfixturevalue("server")
    async with httpx.AsyncClient(base_url=proc.base, timeout=30) as c:
        yield c
