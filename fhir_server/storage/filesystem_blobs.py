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
- A small put given whole (a DICOM instance) writes its data file and its temporary record, asks
  the kernel to start writing both back (``posix_fadvise``: on ext4 both then reach the disk in
  one journal commit instead of two), fsyncs both, then renames and fsyncs the directory as
  above: the same steps in the same order, about half the time.
- Fan-out directories are created when first needed; a new directory's entry is made durable
  (its parent fsync'd) before the put that needed it returns, once per directory and process
  (a directory found already there is fsync'd the same way the first time, in case another put
  created it an instant before). A directory that a small put given whole created, under the
  key's lock, holds no previous record of the key, so none is read.
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


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing ``fd``'s dirty pages now (Linux does on DONTNEED), so that
    the fsyncs that follow share one journal commit. A hint only: durability is the fsync's."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


class _Directories:
    """The fan-out directories of one store whose entries are known to be durable (in-process
    memory only: a directory is checked, and its parent fsync'd, once per process)."""

    def __init__(self) -> None:
        self._known: set[Path] = set()

    def make(self, directory: Path) -> tuple[bool, list[Path]]:
        """Create ``directory`` and its parent where missing (the base exists). Returns whether
        ``directory`` was created now, and the directories to fsync (:meth:`settle`) before the
        put returns, so that the entries made or found are durable."""
        if directory in self._known:
            return False, []
        created = False
        parents: list[Path] = []
        for path in (directory.parent, directory):
            if path in self._known:
                continue
            try:
                path.mkdir()
                created = True
            except FileExistsError:
                created = False
            parents.append(path.parent)
        return created, parents

    def settle(self, directory: Path, parents: list[Path]) -> None:
        """Fsync ``parents`` (from :meth:`make`, deepest last) and remember ``directory``."""
        for parent in reversed(parents):
            _fsync_directory(parent)
        if parents:
            self._known.update((directory, directory.parent))


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

    def __init__(self, directory: Path, stem: str, directories: _Directories) -> None:
        self.directory = directory
        self.stem = stem
        self.data = f"{stem}.{secrets.token_hex(8)}{_DATA}"
        self.size = 0
        self.committed = False
        self._sha256 = hashlib.sha256()
        self._file: BinaryIO | None = None
        self._directories = directories
        self._new_directory = False
        self._parents: list[Path] = []

    def create(self) -> None:
        self._new_directory, self._parents = self._directories.make(self.directory)
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
        self._commit(info, None, fresh=False)

    def _commit(self, info: BlobInfo, data_file: BinaryIO | None, *, fresh: bool) -> None:
        """Write and fsync the record (and ``data_file``, still open, whose data is written but
        not yet fsync'd: both start their writeback together), rename it into place, fsync the
        directory and the parents of new directories, unlink the replaced version's data.
        ``fresh``: the directory was created under the key's lock held since, so it holds no
        record of the key (a streamed put creates its directory before it takes the lock)."""
        record = self.directory / f"{self.stem}{_RECORD}"
        previous = None if fresh else _Record.load(record)
        temp = self.directory / f"{self.data.removesuffix(_DATA)}{_TEMP}"
        try:
            with temp.open("xb") as out:
                out.write(_Record(info, self.data).to_json())
                out.flush()
                if data_file is not None:
                    _start_writeback(data_file.fileno())
                    _start_writeback(out.fileno())
                    os.fsync(data_file.fileno())
                os.fsync(out.fileno())
            temp.replace(record)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self.committed = True
        _fsync_directory(self.directory)
        self._directories.settle(self.directory, self._parents)
        if previous is not None and previous.data != self.data:
            (self.directory / previous.data).unlink(missing_ok=True)

    def put_whole(self, data: bytes, key: str, content_type: str) -> BlobInfo:
        """Write, fsync and commit ``data`` in one call (one worker-thread hop, not four)."""
        self.create()
        self.write([data])
        assert self._file is not None
        self._file.flush()
        info = BlobInfo(key, self.size, self._sha256.hexdigest(), content_type, datetime.now(UTC))
        self._commit(info, self._file, fresh=self._new_directory)
        self._file.close()
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
        self._directories = _Directories()

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
        version = _PendingVersion(directory, stem, self._directories)
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
