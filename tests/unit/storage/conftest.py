"""Fixtures shared by the SQLite unit tests of this folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.storage.sqlite import SqliteStore


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """An opened SQLite store in a fresh directory, closed after the test."""
    instance = SqliteStore(tmp_path / "store")
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def resources(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A SQLite resource store in ``data`` (whose database a blob store in ``data/blobs`` keeps
    its rows in, as the server wires them), closed after the test."""
    store = SqliteStore(tmp_path / "data")
    await store.open()
    yield store
    await store.close()
