"""Backends the storage contract runs against. A new backend adds one branch here.

MongoDB runs on mongoeco started on loopback for the session (or the real MongoDB of
FHIR_SERVER_TEST_MONGODB_URL); each store gets its own database, named after the path the test
gives (the same path reopens the same database), dropped when the test ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from fhir_server.storage.mongo.store import MongoStore
from fhir_server.storage.port import ResourceStore
from fhir_server.storage.sqlite import SqliteStore
from tests.mongoeco.fixture import database_name, database_url

BACKENDS = ("sqlite", pytest.param("mongodb", marks=pytest.mark.mongo))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[Path], ResourceStore]]:
    if request.param == "sqlite":
        yield lambda path: SqliteStore(path)
        return
    server: str = request.getfixturevalue("mongo_server")
    keys: set[str] = set()

    def mongo(path: Path) -> ResourceStore:
        keys.add(str(path))
        return MongoStore(database_url(server, str(path)))

    yield mongo
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(server)
    try:
        for key in keys:
            await client.drop_database(database_name(key))
    finally:
        await client.close()


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
