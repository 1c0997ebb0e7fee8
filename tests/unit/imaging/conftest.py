"""Fixtures of the imaging unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.storage.records import RecordStore
from fhir_server.storage.sqlite import SqliteStore


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[RecordStore]:
    """The record store of a new SQLite store (the imaging index's records)."""
    store = SqliteStore(tmp_path)
    await store.open()
    try:
        yield store.records
    finally:
        await store.close()
