"""Helpers of the filesystem blob store's tests: a store opened over a directory (alone, or with
its rows in a resource store's database), and a blob read whole through the port."""

from __future__ import annotations

from pathlib import Path

from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from fhir_server.storage.sqlite import SqliteStore


async def read(store: FilesystemBlobStore, key: str) -> bytes:
    async with await store.stream(key) as stream:
        return await stream.read_all()


async def opened(base: Path, inline_max: int = 1000) -> FilesystemBlobStore:
    """A store over ``base`` with a 64 KiB chunk size (small enough for streamed puts to take
    several chunks), opened."""
    store = FilesystemBlobStore(base, chunk_size=64 * 1024, inline_max=inline_max)
    await store.open()
    return store


async def sharing(base: Path, resources: SqliteStore) -> FilesystemBlobStore:
    """A store over ``base`` whose rows are in the database of ``resources``, written by its
    writer (as the server wires them, bootstrap.py), opened."""
    store = FilesystemBlobStore(
        base, chunk_size=64 * 1024, inline_max=1000, database=resources.path, jobs=resources.jobs
    )
    await store.open()
    return store
