"""The blob port on a local directory tree (the default blob store).

Layout under the base directory, fanned out by the SHA-256 of the key (``h``), each version one
file that starts with its record (a JSON header line: key, size, sha256, content type, created)
followed by the bytes exactly as put (file formats in :mod:`.filesystem_blob_files`)::

    LAYOUT                          "2": the layout of this store
    h[0:2]/h.blob                   the current version of the key: the commit point
    h[0:2]/h.blob.<token>.tmp       a version being written (exists only during a put)

256 fan-out directories hold everything (ext4, XFS and btrfs index large directories), so that
a new server does not create, and fsync the parent of, a directory for nearly every key.

**Stores of the first layout** (written before the ``LAYOUT`` file existed: a base directory
with content and no ``LAYOUT``) stay readable and writable in place: two levels
``h[0:2]/h[2:4]/``, the commit point ``h.json``, which either is a version file as above or, as
written before, the record alone (the JSON without a newline) naming a data file
``h.<token>.data`` beside it. Readers take both forms; puts write version files; a put or a delete
of a key whose record names a data file unlinks that file after its own commit. A base directory
that is missing or empty (``lost+found`` aside) is given a ``LAYOUT`` file (written to a
temporary name, fsync'd, renamed, the directory fsync'd) before anything else, so a crash never
leaves a store of the current layout that looks like one of the first.

How the guarantees of :mod:`fhir_server.storage.blobs` hold:

- A put writes header and bytes to a temporary file of its own (a fresh random token; a streamed
  put leaves room for the header, hashes the bytes as they come and writes the header last),
  makes it durable (``fdatasync``: its bytes and size; its times are not needed), renames it over
  the key's version file (atomic on POSIX: the commit point) and fsyncs the directory. A reader
  opens the version file once and reads header and bytes through that descriptor, so it sees one
  whole version or none, also if a put or delete replaces or unlinks the file meanwhile.
- A put that fails or is cancelled before the rename unlinks its temporary file: nothing is left.
  After a crash, a ``.tmp`` file may be left: no reader opens one (readers open the version file
  by name), a put never reuses one (fresh token, ``O_EXCL``), and it can be swept offline. A
  crash before the rename leaves the previous version; after it, the new one, whole, since it was
  durable before it was renamed.
- The 256 fan-out directories of the current layout are created when the store is opened
  (those missing), their entries made durable by one fsync of the base. Those of a store of the
  first layout are created when first needed; a new directory's entry is made durable
  (its parent fsync'd) before the put that needed it returns, once per directory and process
  (a directory found already there is fsync'd the same way the first time, in case another put
  created it an instant before).
- Commits and deletes of one key are serialised within the process (striped locks), so the data
  file a first-layout record names is unlinked by exactly one of them. Several processes sharing
  one directory stay correct (the rename decides), but two of them replacing one first-layout
  record at once may leave an unreferenced ``.data`` file; never read, it can be swept offline.
- File I/O runs in worker threads, one call per chunk of about ``chunk_size`` bytes (1 MiB by
  default: incoming chunks are gathered to that size), never on the event loop. A put of bytes
  up to one chunk (a DICOM instance) is one call: write, fdatasync, rename, directory fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

from fhir_server.core.errors import BlobNotFound

from . import filesystem_blob_files as files
from .blobs import BlobInfo, BlobStore, BlobStream, check_content_type, check_key, chunks_of

DEFAULT_CHUNK_SIZE: Final = 1024 * 1024
_LOCK_STRIPES: Final = 64
_T = TypeVar("_T")


async def _in_thread(function: Callable[[], _T]) -> _T:
    """``function()`` in a worker thread. If the caller is cancelled meanwhile, the thread's call
    is still waited for before the cancellation goes on, so that the caller's clean-up (closing,
    unlinking) never runs while a file operation is still in progress."""
    future = asyncio.get_running_loop().run_in_executor(None, function)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


class FilesystemBlobStore(BlobStore):
    """Blobs under ``base`` (created by :meth:`open`), read and written ``chunk_size`` bytes at a
    time in worker threads. The guarantees are those of :mod:`fhir_server.storage.blobs`; how
    they hold is in this module's docstring."""

    def __init__(self, base: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.base = Path(base)
        self.chunk_size = chunk_size
        self.layout = files.SECOND
        self._locks: tuple[asyncio.Lock, ...] = ()
        self._directories = files.Directories()

    async def open(self) -> None:
        self.layout = await _in_thread(functools.partial(files.open_layout, str(self.base)))
        if self.layout is files.SECOND:
            await _in_thread(functools.partial(self._directories.prepare, str(self.base)))
        if not self._locks:
            self._locks = tuple(asyncio.Lock() for _ in range(_LOCK_STRIPES))

    async def close(self) -> None:
        self._locks = ()

    def _place(self, key: str) -> tuple[tuple[str, ...], str]:
        """The fan-out directories of ``key`` (outermost first) and the path of its version."""
        if not self._locks:
            raise RuntimeError("the blob store is not open")
        digest = hashlib.sha256(check_key(key).encode("ascii")).hexdigest()
        chain = self.layout.directories(str(self.base), digest)
        return chain, f"{chain[-1]}/{digest}{self.layout.suffix}"

    def _where(self, key: str) -> tuple[Path, str]:
        """The directory of ``key``'s version file and the stem of its name (for tests)."""
        chain, record = self._place(key)
        return Path(chain[-1]), os.path.basename(record).removesuffix(self.layout.suffix)

    def _lock(self, record: str) -> asyncio.Lock:
        return self._locks[hash(record) % len(self._locks)]

    async def put(
        self, key: str, chunks: AsyncIterable[bytes] | bytes, *, content_type: str
    ) -> BlobInfo:
        chain, record = self._place(key)
        check_content_type(content_type)
        version = files.PendingVersion(chain, record, self._directories)
        try:
            if isinstance(chunks, bytes) and len(chunks) <= self.chunk_size:
                # All at hand and small (a DICOM instance, a document): one worker-thread call
                # under the key's lock instead of a hop per step.
                async with self._lock(record):
                    whole = functools.partial(version.put_whole, chunks, key, content_type)
                    return await _in_thread(whole)
            await _in_thread(version.create)
            await self._write(version, chunks)
            info = await _in_thread(functools.partial(version.finish, key, content_type))
            async with self._lock(record):
                await _in_thread(version.commit)
        except BaseException:
            await _in_thread(version.discard)
            raise
        return info

    async def _write(
        self, version: files.PendingVersion, content: AsyncIterable[bytes] | bytes
    ) -> None:
        """Hand ``content`` to the worker thread in batches of about ``chunk_size`` bytes."""
        batch: list[bytes] = []
        gathered = 0
        async for chunk in chunks_of(content):
            batch.append(chunk)
            gathered += len(chunk)
            if gathered >= self.chunk_size:
                await _in_thread(functools.partial(version.write, batch))
                batch, gathered = [], 0
        if batch:
            await _in_thread(functools.partial(version.write, batch))

    async def info(self, key: str) -> BlobInfo | None:
        _, record_path = self._place(key)
        record = await _in_thread(functools.partial(files.read_record, record_path))
        return None if record is None else record.info

    async def stream(self, key: str) -> BlobStream:
        chain, record_path = self._place(key)
        opened = await _in_thread(functools.partial(_open_current, chain[-1], record_path))
        if opened is None:
            raise BlobNotFound(key)
        info, file = opened

        async def release() -> None:
            file.close()

        return BlobStream(info, _read_chunks(file, self.chunk_size), release)

    async def delete(self, key: str) -> bool:
        chain, record_path = self._place(key)
        async with self._lock(record_path):
            return await _in_thread(functools.partial(files.delete, chain[-1], record_path))


def _open_current(directory: str, record_path: str) -> tuple[BlobInfo, BinaryIO] | None:
    """The current version's info and its bytes, opened at their start; None if there is none.
    A data file (first layout) unlinked after its record was read means a newer commit: read
    the record again."""
    missing: str | None = None
    while True:
        opened = files.open_record(record_path)
        if opened is None:
            return None
        record, fd = opened
        if record.data is None:
            file = os.fdopen(fd, "rb")
            file.seek(record.offset)
            return record.info, file
        os.close(fd)
        try:
            return record.info, open(f"{directory}/{record.data}", "rb")
        except FileNotFoundError:
            if record.data == missing:
                raise FileNotFoundError(
                    f"blob store damaged: the data file {record.data} named by the record "
                    f"{record_path} is missing"
                ) from None
            missing = record.data


async def _read_chunks(file: BinaryIO, size: int) -> AsyncIterator[bytes]:
    while chunk := await _in_thread(functools.partial(file.read, size)):
        yield chunk
