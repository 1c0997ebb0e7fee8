"""The blob port on a local directory tree (the default blob store).

Layout under the base directory, fanned out by the SHA-256 of the key (``h``) so that no directory
holds more than a few dozen blobs even with millions stored::

    h[0:2]/h[2:4]/h.json            the record of the current version: the commit point
    h[0:2]/h[2:4]/h.<token>.data    the bytes of one version, exactly as put (no header)
    h[0:2]/h[2:4]/h.<token>.json.tmp  a record being written (exists only during a commit)

How the guarantees of :mod:`fhir_server.storage.blobs` hold:

- A put writes its bytes to a data file of its own (a fresh random token), hashing them on the
  way, then fsyncs it. It commits by writing the record (key, size, sha256, content type, created,
  data file name) to a temporary file, fsyncing it, renaming it over ``h.json`` (atomic on POSIX)
  and fsyncing the directory; only then is the previous version's data file unlinked. A reader
  reads the record first and opens the data file it names, so it sees one whole version or none.
  A put that fails or is cancelled before the rename unlinks its data file: nothing is left.
- A reader that finds the record's data file gone (a put or delete committed in between) reads
  the record again. Once open, a data file stays readable to the end even if it is replaced or
  deleted meanwhile.
- Commits and deletes of one key are serialised within the process (striped locks), so the
  previous data file is always the one to unlink. Several processes sharing one directory stay
  correct (the rename decides), but concurrent puts of one key from two processes may leave an
  unreferenced ``.data`` file; so may a crash (a ``.data`` or ``.json.tmp`` file no record names).
  Such files are never read and can be swept offline.
- File I/O runs in worker threads, one call per chunk of about ``chunk_size`` bytes (1 MiB by
  default: incoming chunks are gathered to that size), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final, TypeVar

import orjson

from fhir_server.core.errors import BlobNotFound

from .blobs import BlobInfo, BlobStore, BlobStream, check_content_type, check_key, chunks_of

DEFAULT_CHUNK_SIZE: Final = 1024 * 1024
_LOCK_STRIPES: Final = 64
_RECORD: Final = ".json"
_DATA: Final = ".data"
_TEMP: Final = ".json.tmp"
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


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_directories(directory: Path) -> None:
    """Create ``directory`` and its parent (the base exists) and make each new entry durable."""
    for path in (directory.parent, directory):
        try:
            path.mkdir()
        except FileExistsError:
            continue
        _fsync_directory(path.parent)


class _Record:
    """The committed record of one version: its info and the name of its data file."""

    def __init__(self, info: BlobInfo, data: str) -> None:
        self.info = info
        self.data = data

    def to_json(self) -> bytes:
        info = self.info
        return orjson.dumps(
            {
                "key": info.key,
                "size": info.size,
                "sha256": info.sha256,
                "content_type": info.content_type,
                "created": info.created.isoformat(),
                "data": self.data,
            }
        )

    @classmethod
    def load(cls, path: Path) -> _Record | None:
        try:
            raw = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        info = BlobInfo(
            key=raw["key"],
            size=raw["size"],
            sha256=raw["sha256"],
            content_type=raw["content_type"],
            created=datetime.fromisoformat(raw["created"]),
        )
        return cls(info, raw["data"])


class _PendingVersion:
    """One version being written (blocking methods, run in worker threads)."""

    def __init__(self, directory: Path, stem: str) -> None:
        self.directory = directory
        self.stem = stem
        self.data = f"{stem}.{secrets.token_hex(8)}{_DATA}"
        self.size = 0
        self.committed = False
        self._sha256 = hashlib.sha256()
        self._file: BinaryIO | None = None

    def create(self) -> None:
        _make_directories(self.directory)
        self._file = (self.directory / self.data).open("xb")

    def write(self, chunks: list[bytes]) -> None:
        assert self._file is not None
        for chunk in chunks:
            self._sha256.update(chunk)
            self._file.write(chunk)
            self.size += len(chunk)

    def finish(self) -> str:
        """Make the data durable and close it; the hex SHA-256 of what was written."""
        assert self._file is not None
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self._sha256.hexdigest()

    def commit(self, info: BlobInfo) -> None:
        """Make this version the current one, then unlink the data of the one it replaces."""
        record = self.directory / f"{self.stem}{_RECORD}"
        previous = _Record.load(record)
        temp = self.directory / f"{self.data.removesuffix(_DATA)}{_TEMP}"
        try:
            with temp.open("xb") as out:
                out.write(_Record(info, self.data).to_json())
                out.flush()
                os.fsync(out.fileno())
            temp.replace(record)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.committed = True
        _fsync_directory(self.directory)
        if previous is not None and previous.data != self.data:
            (self.directory / previous.data).unlink(missing_ok=True)

    def put_whole(self, data: bytes, key: str, content_type: str) -> BlobInfo:
        """Write, fsync and commit ``data`` in one call (one worker-thread hop, not four)."""
        self.create()
        self.write([data])
        sha256 = self.finish()
        info = BlobInfo(key, self.size, sha256, content_type, datetime.now(UTC))
        self.commit(info)
        return info

    def discard(self) -> None:
        """Remove what an unfinished put wrote (nothing once committed)."""
        if self._file is not None:
            self._file.close()
        if not self.committed:
            (self.directory / self.data).unlink(missing_ok=True)


class FilesystemBlobStore(BlobStore):
    """Blobs under ``base`` (created by :meth:`open`), read and written ``chunk_size`` bytes at a
    time in worker threads. The guarantees are those of :mod:`fhir_server.storage.blobs`; how
    they hold is in this module's docstring."""

    def __init__(self, base: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.base = Path(base)
        self.chunk_size = chunk_size
        self._locks: tuple[asyncio.Lock, ...] = ()

    async def open(self) -> None:
        await _in_thread(functools.partial(self.base.mkdir, parents=True, exist_ok=True))
        if not self._locks:
            self._locks = tuple(asyncio.Lock() for _ in range(_LOCK_STRIPES))

    async def close(self) -> None:
        self._locks = ()

    def _where(self, key: str) -> tuple[Path, str]:
        """The directory of ``key`` and the stem of its file names."""
        if not self._locks:
            raise RuntimeError("the blob store is not open")
        digest = hashlib.sha256(check_key(key).encode("ascii")).hexdigest()
        return self.base / digest[:2] / digest[2:4], digest

    def _lock(self, stem: str) -> asyncio.Lock:
        return self._locks[int(stem[:8], 16) % len(self._locks)]

    async def put(
        self, key: str, chunks: AsyncIterable[bytes] | bytes, *, content_type: str
    ) -> BlobInfo:
        directory, stem = self._where(key)
        check_content_type(content_type)
        version = _PendingVersion(directory, stem)
        try:
            if isinstance(chunks, bytes) and len(chunks) <= self.chunk_size:
                # All at hand and small (a DICOM instance, a document): one worker-thread call
                # under the key's lock instead of a hop per step.
                async with self._lock(stem):
                    whole = functools.partial(version.put_whole, chunks, key, content_type)
                    return await _in_thread(whole)
            await _in_thread(version.create)
            await self._write(version, chunks)
            sha256 = await _in_thread(version.finish)
            info = BlobInfo(key, version.size, sha256, content_type, datetime.now(UTC))
            async with self._lock(stem):
                await _in_thread(functools.partial(version.commit, info))
        except BaseException:
            await _in_thread(version.discard)
            raise
        return info

    async def _write(self, version: _PendingVersion, content: AsyncIterable[bytes] | bytes) -> None:
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
        directory, stem = self._where(key)
        record = await _in_thread(functools.partial(_Record.load, directory / f"{stem}{_RECORD}"))
        return None if record is None else record.info

    async def stream(self, key: str) -> BlobStream:
        directory, stem = self._where(key)
        opened = await _in_thread(functools.partial(_open_current, directory, stem))
        if opened is None:
            raise BlobNotFound(key)
        info, file = opened

        async def release() -> None:
            file.close()

        return BlobStream(info, _read_chunks(file, self.chunk_size), release)

    async def delete(self, key: str) -> bool:
        directory, stem = self._where(key)
        async with self._lock(stem):
            return await _in_thread(functools.partial(_delete, directory, stem))


def _open_current(directory: Path, stem: str) -> tuple[BlobInfo, BinaryIO] | None:
    """The current record's info and its data file, opened; None if there is no record. A data
    file unlinked after its record was read means a newer commit: read the record again."""
    missing: str | None = None
    while True:
        record = _Record.load(directory / f"{stem}{_RECORD}")
        if record is None:
            return None
        try:
            return record.info, (directory / record.data).open("rb")
        except FileNotFoundError:
            if record.data == missing:
                raise FileNotFoundError(
                    f"blob store damaged: the data file {record.data} named by the record "
                    f"{stem}{_RECORD} in {directory} is missing"
                ) from None
            missing = record.data


async def _read_chunks(file: BinaryIO, size: int) -> AsyncIterator[bytes]:
    while chunk := await _in_thread(functools.partial(file.read, size)):
        yield chunk


def _delete(directory: Path, stem: str) -> bool:
    record_path = directory / f"{stem}{_RECORD}"
    record = _Record.load(record_path)
    if record is None:
        return False
    try:
        record_path.unlink()
    except FileNotFoundError:
        return False
    _fsync_directory(directory)
    (directory / record.data).unlink(missing_ok=True)
    return True
