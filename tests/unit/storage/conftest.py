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
