"""Blob store backends the blob contract (test_blob_contract.py) runs against.

A backend makes stores over one place (a directory, a database): a new store over the same place
stands for a restart. It also lists its *leftovers*: whatever it holds that no current blob
accounts for (a temporary or unreferenced file, a superseded GridFS version, an orphan chunk), so
the suite can check that failed, cancelled and replacing puts clean up after themselves.

The fixtures ``blob_backend`` (one per adapter, the filesystem one three times: every version a
file, with its inline tier for small puts in a database of its own, and with the tier's rows in
a SQLite resource store's database, written by its writer; GridFS is marked ``mongo`` and needs
the session fixture ``mongo_server``) and ``blob_store`` (an opened store of it) are imported by
the test module under their function names.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient

from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.filesystem_blob_segments import DIRECTORY as SEGMENTS
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from fhir_server.storage.mongo.blobs import GridFSBlobStore
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite.inline_blobs import DATABASE as INLINE_DATABASE
from tests.mongoeco.fixture import database_url


class BlobBackend(ABC):
    def __init__(self) -> None:
        self._stores: list[BlobStore] = []

    async def new_store(self) -> BlobStore:
        """A new, opened store over this backend's place."""
        store = self._make()
        await store.open()
        self._stores.append(store)
        return store

    @abstractmethod
    def _make(self) -> BlobStore: ...

    @abstractmethod
    async def leftovers(self) -> list[str]: ...

    async def aclose(self) -> None:
        for store in self._stores:
            await store.close()


class FilesystemBackend(BlobBackend):
    """Filesystem stores over ``base`` with the inline tier for puts up to ``inline_max``
    bytes (0: none, every version a file)."""

    def __init__(self, base: Path, inline_max: int = 0) -> None:
        super().__init__()
        self.base = base
        self.inline_max = inline_max

    def _make(self) -> BlobStore:
        return FilesystemBlobStore(self.base, chunk_size=64 * 1024, inline_max=self.inline_max)

    def rows_database(self) -> Path:
        return self.base / INLINE_DATABASE

    async def leftovers(self) -> list[str]:
        """Every file but the layout marker, the inline database (with its WAL files), the
        version files (``<sha256>.blob``, or ``.json`` in a store of the first layout), the
        data files that first-layout records name and the segments (layout 5: bytes no row
        points at stay in their segment by design, filesystem_blob_segments.py); and every key
        with both an inline row and a version file (a put or delete that did not finish its
        move between the tiers)."""
        files = sorted(
            p
            for p in self.base.rglob("*")
            if p.is_file() and p.name not in _STORE_FILES and p.parent.name != SEGMENTS
        )
        records = [p for p in files if _VERSION_FILE.fullmatch(p.name)]
        referenced = {r.parent / name for r in records if (name := _data_file(r)) is not None}
        extra = [str(p.relative_to(self.base)) for p in files if p not in {*records, *referenced}]
        return extra + [
            f"{key} in both tiers" for key in self.inline_keys() if _has_file(self.base, key)
        ]

    def inline_keys(self) -> list[str]:
        """The keys of the inline database's rows (none without one)."""
        database = self.rows_database()
        if not database.is_file():
            return []
        with contextlib.closing(sqlite3.connect(database)) as conn:
            return sorted(key for (key,) in conn.execute("SELECT key FROM blobs"))


class ResourceDatabaseBackend(FilesystemBackend):
    """Filesystem stores whose inline rows are in the database of a SQLite resource store
    (layout 4), written by that store's writer, as the server wires them (bootstrap.py)."""

    def __init__(self, base: Path, inline_max: int) -> None:
        super().__init__(base, inline_max)
        self.resources = SqliteStore(base.parent / "resources")

    async def new_store(self) -> BlobStore:
        if not self._stores:
            await self.resources.open()
        return await super().new_store()

    def _make(self) -> BlobStore:
        return FilesystemBlobStore(
            self.base, chunk_size=64 * 1024, inline_max=self.inline_max,
            database=self.resources.path, jobs=self.resources.jobs,
        )  # fmt: skip

    def rows_database(self) -> Path:
        return self.resources.path

    async def aclose(self) -> None:
        opened = bool(self._stores)
        await super().aclose()
        if opened:
            await self.resources.close()


#: The inline tier's limit in the contract's tiered configuration.
INLINE_MAX = 1000
_STORE_FILES = {"LAYOUT", *(INLINE_DATABASE + end for end in ("", "-wal", "-shm"))}
_VERSION_FILE = re.compile(r"[0-9a-f]{64}\.(blob|json)")


def _has_file(base: Path, key: str) -> bool:
    digest = hashlib.sha256(key.encode("ascii")).hexdigest()
    return (base / digest[:2] / f"{digest}.blob").exists()


def _data_file(record: Path) -> str | None:
    """The data file a first-layout record names (its header line has a ``data`` field)."""
    name = orjson.loads(record.read_bytes().split(b"\n", 1)[0]).get("data")
    assert name is None or isinstance(name, str)
    return name


class GridFSBackend(BlobBackend):
    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self._clients: list[AsyncMongoClient[dict[str, Any]]] = []

    def _make(self) -> BlobStore:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.url)
        self._clients.append(client)
        return GridFSBlobStore(client.get_default_database())

    async def leftovers(self) -> list[str]:
        database = self._clients[0].get_default_database()
        files = await database["blobs.files"].find({}, {"filename": 1}).to_list()
        ids = {f["_id"] for f in files}
        names = [f["filename"] for f in files]
        extra = sorted({f"version of {n}" for n in names if names.count(n) > 1})
        chunks = await database["blobs.chunks"].find({}, {"files_id": 1}).to_list()
        orphans = sorted({f"chunk of {c['files_id']}" for c in chunks if c["files_id"] not in ids})
        return extra + orphans

    async def aclose(self) -> None:
        await super().aclose()
        if self._clients:
            await self._clients[0].drop_database(self._clients[0].get_default_database().name)
        for client in self._clients:
            await client.close()


@pytest.fixture(
    name="blob_backend",
    params=[
        "filesystem",
        "filesystem-inline",
        "filesystem-resource-db",
        pytest.param("gridfs", marks=pytest.mark.mongo),
    ],
)
async def blob_backend_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BlobBackend]:
    backend: BlobBackend
    if request.param == "gridfs":
        server = request.getfixturevalue("mongo_server")
        backend = GridFSBackend(database_url(server, "blobs " + request.node.nodeid))
    elif request.param == "filesystem-resource-db":
        # As the server runs: the rows in the resource store's database, by its writer.
        backend = ResourceDatabaseBackend(tmp_path / "blobs", inline_max=INLINE_MAX)
    elif request.param == "filesystem-inline":
        # Both tiers: whole puts up to 1,000 bytes as rows, the rest (and streams) as files.
        backend = FilesystemBackend(tmp_path / "blobs", inline_max=INLINE_MAX)
    else:
        backend = FilesystemBackend(tmp_path / "blobs")
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.fixture(name="blob_store")
async def blob_store_fixture(blob_backend: BlobBackend) -> BlobStore:
    return await blob_backend.new_store()
