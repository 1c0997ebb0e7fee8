"""Segment files of the filesystem blob store (layout 5): write-once blobs appended to a file
shared by many, instead of a file each.

Blocking functions only, called from worker threads by :mod:`.filesystem_blobs`, whose docstring
places segments in the layout and argues the guarantees. Why: on this project's disks a new
file costs two file system journal commits before it is durable (its ``fdatasync``, then the
fsync of its directory after the rename), bytes appended to an open file one (its
``fdatasync``): for a 0.5 MB DICOM instance 0.9 ms against 0.45 ms (docs/performance.md).

A segment is ``segments/<name>.seg`` under the store's base. Each writer (one per opened store,
so one per process) appends only to segments it created itself (``O_EXCL``, a fresh random
name), so no two processes ever share an append point and no lock between processes is needed;
it starts a new one when the current one would pass :data:`SEGMENT_SIZE`. A blob in a segment
is its header (the JSON line of a version file, padded to
:data:`~.filesystem_blob_files.HEADER_ROOM` bytes: a segment can be read without its database,
to check it or rebuild the rows) followed by its bytes. Appends reserve their place under a
lock and write with ``pwrite`` outside it, so threads append in parallel, and return only once
``fdatasync`` has made the bytes durable: the row that points at them (key, segment, offset) is
committed after that, so a committed row never points at bytes that are not on disk. A crash
between leaves bytes no row points at; they are never read, and the next writer starts a new
segment. Deleted and replaced blobs' bytes stay in their segment too (no compaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, TypeVar

from fhir_server.core.waiting import in_thread

from . import filesystem_blob_files as files
from . import filesystem_blob_reads as reads
from .blobs import BlobInfo
from .sqlite import inline_blobs as inline

#: The directory of the segments, under the store's base.
DIRECTORY: Final = "segments"
SUFFIX: Final = ".seg"
#: Beside a segment whose rows are all good: its writer closed it, or a store opened after the
#: writer died checked its rows.
_SEALED: Final = ".sealed"
_NEW: Final = ".new"
#: A writer starts a new segment rather than let one grow past this size (which also bounds
#: what is read again after a crash).
SEGMENT_SIZE: Final = 256 << 20
_VERIFY_CHUNK: Final = 1 << 20
_CREATE: Final = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ: Final = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Placed:
    """A blob appended (durable once :meth:`SegmentWriter.sync` has returned): its info, where
    its bytes start, and the segment's descriptor with the range written (header included)."""

    info: BlobInfo
    segment: str
    offset: int
    fd: int
    start: int


def prepare(base: str) -> None:
    """Create the segments' directory of the store in ``base`` if missing, its entry durable
    (before the marker of layout 5 announces it)."""
    try:
        os.mkdir(f"{base}/{DIRECTORY}")
    except FileExistsError:
        return
    files.fsync_directory(base)


def check_name(segment: str) -> str:
    """``segment`` if it can be a segment's name (a row names one), else ValueError."""
    if not segment.isalnum() or not segment.isascii() or len(segment) > 64:
        raise ValueError(f"blob store damaged: {segment!r} is not a segment's name")
    return segment


class SegmentWriter:
    """The appends of one opened store to segments of its own, under ``base`` (thread-safe)."""

    def __init__(self, base: str, segment_size: int = SEGMENT_SIZE) -> None:
        self.directory = f"{base}/{DIRECTORY}"
        self.segment_size = segment_size
        self._lock = threading.Lock()
        self._name = ""
        self._fd = -1
        self._end = 0
        #: Every segment opened, kept open (and locked) until close: an append may still be
        #: using a segment the writer has moved on from.
        self._opened: list[tuple[str, int]] = []

    def append(self, key: str, data: bytes, content_type: str) -> Placed:
        """Append ``data`` with its header to the current segment (not yet durable)."""
        hashing = files.HASHING.submit(hashlib.sha256, data)
        try:
            room = files.HEADER_ROOM
            with self._lock:
                if self._fd < 0 or self._end + room + len(data) > self.segment_size:
                    self._start()
                name, fd, start = self._name, self._fd, self._end
                self._end += room + len(data)
            _write_at(fd, data, start + room)
        finally:
            digest = hashing.result()
        info = BlobInfo(key, len(data), digest.hexdigest(), content_type, datetime.now(UTC))
        _write_at(fd, files.header(info, room), start)
        return Placed(info, name, start + room, fd, start)

    @staticmethod
    def sync(placed: Placed) -> None:
        """Make ``placed``'s bytes durable, then drop them from the page cache."""
        files.sync_data(placed.fd)
        files.drop_cached(placed.fd, placed.start, placed.offset - placed.start + placed.info.size)

    def _start(self) -> None:
        """Create a new segment and append to it from now on: made under a temporary name,
        locked (``flock``: its writer is alive), then renamed, the directory fsync'd, so that
        no store opened meanwhile takes it for the segment of a dead writer."""
        name = secrets.token_hex(8)
        temp = f"{self.directory}/{name}{_NEW}"
        fd = os.open(temp, _CREATE, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temp, f"{self.directory}/{name}{SUFFIX}")
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        self._opened.append((name, fd))
        files.fsync_directory(self.directory)
        self._name, self._fd, self._end = name, fd, 0

    def close(self) -> None:
        """Seal every segment written (each put synced its bytes before returning; synced once
        more), then close them, which releases their locks."""
        with self._lock:
            opened, self._opened = self._opened, []
            self._fd = -1
        try:
            for name, fd in opened:
                files.sync_data(fd)
                _mark_sealed(self.directory, name)
            if opened:
                files.fsync_directory(self.directory)
        finally:
            for _, fd in opened:
                os.close(fd)


def unsealed(base: str) -> list[str]:
    """The names of the segments in ``base`` not sealed: written by a live writer, or by one
    that died (a crash, a kill) and whose rows have not been checked since."""
    directory = f"{base}/{DIRECTORY}"
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    sealed = {name.removesuffix(_SEALED) for name in names if name.endswith(_SEALED)}
    return sorted(
        name.removesuffix(SUFFIX)
        for name in names
        if name.endswith(SUFFIX) and name.removesuffix(SUFFIX) not in sealed
    )


def claim(base: str, segment: str) -> int | None:
    """The segment ``segment`` opened for reading and locked, if its writer is gone and it is
    still not sealed (the caller checks its rows, :func:`seal` s it, closes the descriptor);
    None if its writer is alive or another store has sealed it meanwhile."""
    directory = f"{base}/{DIRECTORY}"
    fd = os.open(f"{directory}/{check_name(segment)}{SUFFIX}", _READ)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if os.path.exists(f"{directory}/{segment}{_SEALED}"):
        os.close(fd)
        return None
    return fd


def seal(base: str, segment: str, fd: int) -> None:
    """Make a claimed segment's bytes durable and mark it sealed (its rows were checked)."""
    directory = f"{base}/{DIRECTORY}"
    files.sync_data(fd)
    _mark_sealed(directory, segment)
    files.fsync_directory(directory)


def digest_at(fd: int, offset: int, size: int) -> str | None:
    """The SHA-256 of the ``size`` bytes at ``offset`` of ``fd``; None if the file ends first."""
    sha256 = hashlib.sha256()
    while size > 0:
        chunk = os.pread(fd, min(size, _VERIFY_CHUNK), offset)
        if not chunk:
            return None
        sha256.update(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return sha256.hexdigest()


def _mark_sealed(directory: str, segment: str) -> None:
    fd = os.open(f"{directory}/{segment}{_SEALED}", os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)


def _write_at(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class SegmentSlice:
    """The ``size`` bytes at ``offset`` of a segment, read like a file (``read``, ``close``)."""

    def __init__(self, base: str, segment: str, offset: int, size: int) -> None:
        path = f"{base}/{DIRECTORY}/{check_name(segment)}{SUFFIX}"
        try:
            self._fd = os.open(path, _READ)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"blob store damaged: the segment {path} that a row names is missing"
            ) from None
        self._offset = offset
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        chunk = os.pread(self._fd, want, self._offset)
        if not chunk:
            raise OSError(f"blob store damaged: a segment ends {self._left} bytes early")
        self._offset += len(chunk)
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


async def append_beside(
    writer: SegmentWriter,
    tier: inline.InlineTier,
    key: str,
    data: bytes,
    content_type: str,
    record: str,
    beside: Callable[[], Awaitable[_T]],
) -> tuple[tuple[BlobInfo, bool] | BaseException, _T | BaseException]:
    """``data`` appended to a segment unless ``key`` has a current version (a row, or its
    version file ``record``), its row inserted unless one came meanwhile; and ``beside()``, the
    caller's write, started with the row's insert so that both commit in one transaction. The
    caller holds the key's lock. The row is committed while the bytes, already written, are
    synced (a crash between leaves a row whose bytes may be torn: the store's opening checks the
    rows of a segment whose writer died, :func:`recover`); returns once all are done."""
    loop = asyncio.get_running_loop()
    written: asyncio.Future[Placed] = loop.create_future()

    def appended(placed: Placed) -> None:
        if not written.done():
            written.set_result(placed)

    def append_and_sync() -> BlobInfo | Placed:
        # one worker-thread call: the loop learns that the bytes are written, and issues the
        # row's insert, while this thread syncs them
        current = reads.current_info(tier, key, record)
        if current is not None:
            return current
        placed = writer.append(key, data, content_type)
        loop.call_soon_threadsafe(appended, placed)
        SegmentWriter.sync(placed)
        return placed

    work = asyncio.ensure_future(in_thread(append_and_sync))
    try:
        await asyncio.wait((work, written), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await asyncio.gather(work, return_exceptions=True)
        raise
    if not written.done():  # the key had a version, or the append failed
        try:
            current = work.result()
        except Exception as exc:
            return exc, await _outcome(beside())
        assert isinstance(current, BlobInfo)
        return (current, False), await _outcome(beside())
    placed = written.result()
    pointer = inline.Pointer(placed.segment, placed.offset)
    synced, stored, other = await asyncio.gather(
        work, tier.place_if_absent(placed.info, pointer, record), beside(),
        return_exceptions=True,
    )  # fmt: skip
    if isinstance(synced, BaseException):
        if not isinstance(stored, BaseException) and stored[1]:
            with contextlib.suppress(Exception):  # else the opening's check drops it
                await tier.delete_row(key)
        return synced, other
    return stored, other


def _append_unless_current(
    writer: SegmentWriter,
    tier: inline.InlineTier,
    key: str,
    data: bytes,
    content_type: str,
    record: str,
) -> BlobInfo | Placed:
    current = reads.current_info(tier, key, record)
    return current if current is not None else writer.append(key, data, content_type)


async def nothing() -> None:
    """No write beside (:func:`append_beside` for a put alone)."""


async def _outcome(awaitable: Awaitable[_T]) -> _T | BaseException:
    try:
        return await awaitable
    except Exception as exc:
        return exc
