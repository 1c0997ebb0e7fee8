"""Helpers of the filesystem blob store's tests: a store opened over a directory (alone, or with
its rows in a resource store's database), a blob read whole through the port, and a writer
process killed after its puts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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


_KILLED_WRITER = """
import asyncio, os, sys
from pathlib import Path
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from fhir_server.storage.sqlite import SqliteStore

async def nothing():
    return None

async def main(data: Path) -> None:
    resources = SqliteStore(data)
    await resources.open()
    store = FilesystemBlobStore(
        data / "blobs", inline_max=1000, database=resources.path, jobs=resources.jobs
    )
    await store.open()
{puts}
    os._exit(0)  # killed: nothing closed, the segment not sealed

asyncio.run(main(Path(sys.argv[1])))
"""


def killed_writer(data: Path, puts: str) -> None:
    """Run ``puts`` (statements of an async function, given ``store``, the blob store of the
    data dir ``data`` as the server opens it, and ``nothing``, a coroutine function returning
    None) in a process that then dies without closing anything, as a crash leaves it."""
    body = textwrap.indent(textwrap.dedent(puts).strip(), "    ")
    script = _KILLED_WRITER.format(puts=body)
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", script, str(data)], check=True, cwd=root, timeout=60)
