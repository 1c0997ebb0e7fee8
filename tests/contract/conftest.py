"""Backends the storage contract runs against. A new backend adds one factory here."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from fhir_server.storage.port import ResourceStore
from fhir_server.storage.sqlite import SqliteStore

BACKENDS: dict[str, Callable[[Path], ResourceStore]] = {
    "sqlite": lambda path: SqliteStore(path),
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> Callable[[Path], ResourceStore]:
    return BACKENDS[request.param]


@pytest.fixture
async def store(
    backend: Callable[[Path], ResourceStore], tmp_path: Path
) -> AsyncIterator[ResourceStore]:
    instance = backend(tmp_path / "store")
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()
