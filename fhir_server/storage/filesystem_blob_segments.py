"""Segment files of the filesystem blob store (layout 5): write-once blobs appended to a file
shared by many, instead of a file each.

The writer's methods are blocking, called from worker threads; :mod:`.filesystem_blob_appends`
has the put's flow on the event loop (:mod:`.filesystem_blobs` places segments in the layout).
Why: on this project's disks a new file costs two file system journal commits before it is durable
(its ``fdatasync``, then the fsync of its directory after the rename), bytes appended to an
open file one (its ``fdatasync``); and the row pointing at them commits with the instance's
record, in one transaction, while the segment syncs (docs/performance.md, dicom_store).

A segment is ``segments/<name>.seg`` under the store's base. Each writer (one per opened store,
so one per process) appends only to segments it created itself (a fresh random name, created
``O_EXCL`` under a temporary name, locked with ``flock`` for as long as the writer holds it,
then renamed), so no two processes ever share an append point; it starts a new one when the
current one would pass :data:`SEGMENT_SIZE`. A blob in a segment is its header (the JSON line
of a version file, padded to :data:`~.filesystem_blob_files.HEADER_ROOM` bytes: a segment can
be read without its database, to check it or rebuild the rows) followed by its bytes. Appends
reserve their place under a lock and write with ``pwrite`` outside it, so threads append in
parallel.

**Crashes.** A put returns only once its bytes are synced and its row committed, but the row
may commit first: a crash between can leave a committed row whose bytes are not whole. Such a
put never returned (its instance was never acknowledged). A put with a *note* (the caller's
JSON object, kept in the header: who sent a DICOM instance, when) may also commit its row, and
the caller's write beside it, without a sync of the WAL of their own
(:mod:`.filesystem_blob_appends`): a power failure can then lose them after the put returned,
and the bytes with their note rebuild them. A segment is *sealed* (an empty ``<name>.sealed``
beside it) when its writer closes it with every append synced and every row committed, once
the database's WAL is synced (``rows_durable``); a store opened later checks every unsealed
segment whose lock it can take (its writer is gone): it drops the rows whose bytes are not
whole, gives their row back to the noted blobs that lost it, then seals it
(:mod:`.sqlite.segment_recovery`): at most :data:`SEGMENT_SIZE` bytes read per segment a
crash left. A crash can also leave bytes no row points at (appended, the row never committed:
given back if noted, else never read). Deleted and replaced blobs' bytes stay in their segment
too (no compaction yet); a deleted row's place is kept so that no recovery gives it back.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Container, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from . import filesystem_blob_files as files
from .blobs import BlobInfo

#: The directory of the segments, under the store's base.
DIRECTORY: Final = "segments"
SUFFIX: Final = ".seg"
#: Beside a segment whose rows are all good: its writer closed it, or a store opened after the
#: writer died checked its rows.
_SEALED: Final = ".sealed"
_NEW: Final = ".new"
#: How old a ``.new`` segment must be before :func:`sweep_unfinished` removes it (seconds).
UNFINISHED_AGE: Final = 60.0
#: A writer starts a new segment rather than let one grow past this size (which also bounds
#: what is read again after a crash).
SEGMENT_SIZE: Final = 256 << 20
_VERIFY_CHUNK: Final = 1 << 20
#: How every blob's header in a segment starts (files.header).
_MAGIC: Final = b'{"key":'
_CREATE: Final = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ: Final = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


@dataclass(slots=True, eq=False)
class _Segment:
    """A segment its writer holds open (and locked): where the next append goes, and how many
    appends are not yet synced."""

    name: str
    fd: int
    end: int = 0
    pending: int = 0
    full: bool = False
    #: A sync failed: never sealed by this writer (the next store opened checks its rows).
    failed: bool = False


@dataclass(frozen=True, slots=True)
class Placed:
    """A blob appended (durable once :meth:`SegmentWriter.sync` has returned): its info, where
    its bytes start, and the segment and range written (header included)."""

    info: BlobInfo
    segment: str
    offset: int
    start: int
    held: _Segment


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
    """The appends of one opened store to segments of its own, under ``base`` (thread-safe).
    A segment stays open (and locked) while the writer appends to it or an append to it is not
    yet synced; then it is sealed and closed (unless a sync of it failed)."""

    def __init__(
        self,
        base: str,
        segment_size: int = SEGMENT_SIZE,
        rows_durable: Callable[[], None] = lambda: None,
    ) -> None:
        self.directory = f"{base}/{DIRECTORY}"
        self.segment_size = segment_size
        #: Makes every row committed so far durable (the database's WAL synced): called
        #: before a segment is sealed, as rows may have been committed without a sync
        #: (filesystem_blob_appends.py).
        self.rows_durable = rows_durable
        self._lock = threading.Lock()
        self._current: _Segment | None = None
        self._open: list[_Segment] = []

    def append(
        self,
        key: str,
        data: bytes,
        content_type: str,
        note: Mapping[str, Any] | None = None,
        hashing: Future[Any] | None = None,
    ) -> Placed:
        """Append ``data`` with its header (``note`` in it, if given) to the current segment
        (not yet durable: the caller calls :meth:`sync`, then, once its row is committed or
        not, :meth:`release`, whatever happens). ``hashing``: its SHA-256 being computed
        (:func:`~.filesystem_blob_files.hashing`, started by the caller before it looked for
        the key's version), else computed in a thread while the bytes are written."""
        if hashing is None:
            hashing = files.HASHING.submit(hashlib.sha256, data)
        room = files.HEADER_ROOM
        try:
            with self._lock:
                held = self._current
                if held is None or held.end + room + len(data) > self.segment_size:
                    held = self._start()
                start = held.end
                held.end += room + len(data)
                held.pending += 2  # released by sync() and by release()
        except BaseException:
            hashing.cancel()
            raise
        try:
            try:
                _write_at(held.fd, data, start + room)
            finally:
                digest = hashing.result()
            info = BlobInfo(key, len(data), digest.hexdigest(), content_type, datetime.now(UTC))
            _write_at(held.fd, files.header(info, room, note), start)
        except BaseException:
            self._done(held, ok=False, count=2)
            raise
        return Placed(info, held.name, start + room, start, held)

    def sync(self, placed: Placed) -> None:
        """Make ``placed``'s bytes durable, then drop them from the page cache."""
        held = placed.held
        ok = False
        try:
            files.sync_data(held.fd)
            ok = True
            length = placed.offset - placed.start + placed.info.size
            files.drop_cached(held.fd, placed.start, length)
        finally:
            self._done(held, ok=ok)  # last: it may close the segment

    def release(self, placed: Placed, *, ok: bool) -> _Segment | None:
        """``placed``'s row is committed, or will not be (``ok``: it is): the segment, if it is
        to be closed now (the caller passes it to :meth:`finish`, in a worker thread), else
        None. A segment is sealed only once every put to it is over, its sync (:meth:`sync`
        releases that) and its row's commit, which may come after the sync."""
        return self._done(placed.held, ok=ok, close=False)

    def finish(self, held: _Segment) -> None:
        """Seal (unless a sync of it failed) and close a segment :meth:`release` returned."""
        self._close(held)

    def _done(
        self, held: _Segment, *, ok: bool, close: bool = True, count: int = 1
    ) -> _Segment | None:
        with self._lock:
            held.pending -= count
            if not ok:
                # a failed write or sync (after which Linux may report the next sync clean
                # though pages were lost): no more appends to it, and it is never sealed
                held.failed = held.full = True
                if self._current is held:
                    self._current = None
            finished = held.full and held.pending == 0 and held in self._open
            if finished:
                self._open.remove(held)
        if finished and close:
            self._close(held)
        return held if finished and not close else None

    def _start(self) -> _Segment:
        """(Under the lock.) Create a new segment and append to it from now on: made under a
        temporary name, locked (``flock``: its writer is alive), then renamed, the directory
        fsync'd, so that no store opened meanwhile takes it for the segment of a dead writer.
        The segment before is closed once its last append is synced."""
        name = secrets.token_hex(8)
        temp = f"{self.directory}/{name}{_NEW}"
        fd = os.open(temp, _CREATE, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(temp, f"{self.directory}/{name}{SUFFIX}")
            files.fsync_directory(self.directory)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise
        before, self._current = self._current, _Segment(name, fd)
        self._open.append(self._current)
        if before is not None:
            before.full = True
            if before.pending == 0:
                self._open.remove(before)
                self._close(before)
        return self._current

    def _close(self, held: _Segment) -> None:
        """Seal ``held`` (every put to it synced its bytes before returning) unless a sync of
        it failed, then close it, which releases its lock."""
        try:
            if not held.failed:
                files.sync_data(held.fd)
                self.rows_durable()
                _mark_sealed(self.directory, held.name)
                files.fsync_directory(self.directory)
        finally:
            os.close(held.fd)

    def close(self) -> None:
        """Seal and close every segment still open. One with an append still under way (a put
        the store's closing did not wait for) is closed when that append is done, never under
        it (its descriptor's number could be reused by another file meanwhile), and not sealed:
        the next store opened checks its rows."""
        with self._lock:
            idle = [held for held in self._open if not held.pending]
            for held in self._open:
                held.full = True
                held.failed = held.failed or held.pending > 0
            self._open = [held for held in self._open if held.pending]
            self._current = None
        for held in idle:
            self._close(held)


def sweep_unfinished(base: str, now: float, age: float = UNFINISHED_AGE) -> int:
    """Remove the segments a writer died creating (``<name>.new``, empty: a crash between their
    creation and their rename), older than ``age`` seconds and unlocked; how many. (A live
    writer holds its new segment's lock, and renames it within microseconds.)"""
    directory = f"{base}/{DIRECTORY}"
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            path = f"{directory}/{name}"
            if not name.endswith(_NEW):
                continue
            try:
                fd = os.open(path, _READ)
            except FileNotFoundError:
                continue
            try:
                if now - os.fstat(fd).st_mtime < age:
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)
                removed += 1
            except (BlockingIOError, FileNotFoundError):
                pass
            finally:
                os.close(fd)
    return removed


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


@dataclass(frozen=True, slots=True)
class Entry:
    """A whole blob found in a segment by its header: its info, where its bytes start, and the
    note its writer kept with it (None if none)."""

    info: BlobInfo
    offset: int
    note: dict[str, Any] | None


def entries(fd: int, checked: Container[int] = ()) -> Iterator[Entry]:
    """The whole blobs of a segment (header readable, bytes matching its digest), in order;
    those whose bytes start at an offset in ``checked`` are taken as whole without reading
    them again. A range that is not one (an append torn or never written by a crash; the
    next one's bytes may have been synced) is stepped over by looking for the next header."""
    room = files.HEADER_ROOM
    end = os.fstat(fd).st_size
    at = 0
    while at + room <= end:
        entry = _entry_at(fd, at, end, checked)
        if entry is not None:
            yield entry
            at = entry.offset + entry.info.size
        else:
            at = _next_header(fd, at + 1, end)


def _entry_at(fd: int, at: int, end: int, checked: Container[int]) -> Entry | None:
    room = files.HEADER_ROOM
    head = os.pread(fd, room, at)
    if not head.startswith(_MAGIC):
        return None
    try:
        record = files.parse(head, "segment")
    except ValueError:
        return None
    info = record.info
    if record.data is not None or not isinstance(info.size, int):
        return None
    if not 0 <= info.size <= end - at - room:
        return None
    if at + room not in checked and digest_at(fd, at + room, info.size) != info.sha256:
        return None
    return Entry(info, at + room, record.note)


def _next_header(fd: int, at: int, end: int) -> int:
    """Where the next possible header at or after ``at`` starts (``end`` if none)."""
    overlap = len(_MAGIC) - 1
    while at < end:
        chunk = os.pread(fd, _VERIFY_CHUNK, at)
        if not chunk:
            break
        found = chunk.find(_MAGIC)
        if found >= 0:
            return at + found
        at += max(len(chunk) - overlap, 1)
    return end


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
