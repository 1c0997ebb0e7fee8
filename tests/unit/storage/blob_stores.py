"""Helpers of the filesystem blob store's tests: a store opened over a directory, and a blob
read whole through the port."""

from __future__ import annotations

from pathlib import Path

from fhir_server.storage.filesystem_blobs import FilesystemBlobStore


async def read(store: FilesystemBlobStore, key: str) -> bytes:
    async with await store.stream(key) as stream:
        return await stream.read_all()


async def opened(base: Path, inline_max: int = 1000) -> FilesystemBlobStore:
    """A store over ``base`` with a 64 KiB chunk size (small enough for streamed puts to take
    several chunks), opened."""
    store = FilesystemBlobStore(base, chunk_size=64 * 1024, inline_max=inline_max)
    await store.open()
    return store
