"""A real HTTP server (uvicorn on a free loopback port, in the test's event loop) serving the
DICOMweb door of a real application (SQLite, filesystem blobs, the imaging ingest), for
third-party clients (dicomweb-client, requests) called from a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from fhir_server.api.app import create_app
from fhir_server.api.dicomweb import Authenticate, DicomWebApi
from fhir_server.bootstrap import Application, make_app
from fhir_server.imaging.gate import GatePolicy
from fhir_server.imaging.query import StudyQuery
from fhir_server.imaging.service import ImagingService
from fhir_server.imaging.wado import Retrieval
from tests.conftest import free_port, running_application


@dataclass
class DicomWeb:
    application: Application
    imaging: ImagingService
    base: str  # http://127.0.0.1:<port>
    url: str  # <base>/dicomweb


def dicomweb_app(
    application: Application, imaging: ImagingService, authenticate: Authenticate | None
) -> Any:
    """The HTTP app: bootstrap's own when it wires the imaging service, else the FHIR app with
    the DICOMweb routes of ``imaging`` added (the same door, the same services)."""
    if getattr(application, "imaging", None) is imaging:
        return make_app(application)
    records = application.store.records
    api = DicomWebApi(
        imaging, StudyQuery(records), Retrieval(records, application.blobs), authenticate,
        base_url=application.settings.base_url,
    )  # fmt: skip
    return create_app(application.service, application, routes=api.routes())


def imaging_of(application: Application, base: str) -> tuple[ImagingService, bool]:
    """The application's imaging service, or a new one (True: the caller starts and stops it)."""
    existing = getattr(application, "imaging", None)
    if isinstance(existing, ImagingService):
        return existing, False
    imaging = ImagingService(
        application.service, application.store.records, application.blobs,
        application.service.clock, policy=GatePolicy.default(), base_url=f"{base}/fhir",
        quiet=0.05, max_delay=0.5,
    )  # fmt: skip
    return imaging, True


async def serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            return server, task
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    raise RuntimeError("uvicorn did not start")


@pytest.fixture
async def dicomweb(tmp_path: Path) -> AsyncIterator[DicomWeb]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running_application(tmp_path / "data", base_url=f"{base}/fhir") as application:
        imaging, own = imaging_of(application, base)
        if own:
            await imaging.start()
        server, task = await serve(dicomweb_app(application, imaging, None), port)
        try:
            yield DicomWeb(application, imaging, base, f"{base}/dicomweb")
        finally:
            server.should_exit = True
            await task
            if own:
                await imaging.stop()
