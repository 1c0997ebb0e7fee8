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
from tests.mongoeco.fixture import database_url

BACKENDS = ("sqlite", pytest.param("mongodb", marks=pytest.mark.mongo))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Callable[[Path], ResourceStore]]:
    if request.param == "sqlite":
        yield lambda path: SqliteStore(path)
        return
    server: str = request.getfixturevalue("mongo_server")
    urls: list[str] = []

    def mongo(path: Path) -> ResourceStore:
        urls.append(database_url(server, str(path)))
        return MongoStore(urls[-1])

    yield mongo
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(server)
    try:
        for url in set(urls):
            await client.drop_database(url.split("/")[3].split("?")[0])
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
