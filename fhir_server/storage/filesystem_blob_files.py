"""The files of the filesystem blob store: its layouts, its version files and how one is written.

Blocking functions only, called from worker threads by :mod:`.filesystem_blobs`, whose docstring
describes the layout and argues the guarantees. Paths are plain strings (``os`` calls, no
:mod:`pathlib`): a DICOM instance's put is a handful of system calls and little else.

A version file starts with its *header*, one line of JSON (the :class:`BlobInfo` fields) ending
in ``\\n``. In a version file of its own the bytes follow the newline (a streamed put, and a
whole one of :data:`PARALLEL_HASH` bytes or more, pads the header with spaces to
:data:`HEADER_ROOM` bytes, as it writes the bytes before it knows their size or digest). A
record of the first layout's separate-file form is the JSON line alone (no newline) and names
its data file in a ``data`` field.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from .blobs import BlobInfo

#: The layout marker, in the base directory (absent from stores of the first layout).
LAYOUT_FILE: Final = "LAYOUT"
#: The bytes a streamed put keeps for its header (a header is under 1,000 bytes: a key and a
#: content type are at most 255 characters, the content type's escapes at most double it).
HEADER_ROOM: Final = 1024
#: What a reader reads to find the header (the whole record of the separate-file form).
_HEADER_READ: Final = 4096
_TEMP: Final = ".tmp"
#: Whole puts at least this large are hashed in a thread of :data:`HASHING` while written.
PARALLEL_HASH: Final = 256 * 1024
HASHING: Final = ThreadPoolExecutor(2, thread_name_prefix="blob-hash")


def hashing(data: bytes) -> Future[Any]:
    """The SHA-256 of ``data`` being computed in a thread of :data:`HASHING` (its ``result()``
    a ``hashlib`` object)."""
    return HASHING.submit(hashlib.sha256, data)


_MOUNT_ROOT: Final = "lost+found"
_CREATE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ: Final = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a key's version file lives: ``depth`` levels of fan-out directories named by
    the first two, then the next two, hex digits of the key's SHA-256 ``h``; the file is
    ``h`` + ``suffix``."""

    version: int
    depth: int
    suffix: str

    def directories(self, base: str, digest: str) -> tuple[str, ...]:
        """The fan-out directories of ``digest``, outermost first (the last holds its file)."""
        top = f"{base}/{digest[:2]}"
        return (top,) if self.depth == 1 else (top, f"{top}/{digest[2:4]}")

    def place(self, base: str, key: str) -> tuple[tuple[str, ...], str]:
        """The fan-out directories of ``key`` (outermost first) and the path of its version
        file (``key`` already checked: ASCII)."""
        digest = hashlib.sha256(key.encode("ascii")).hexdigest()
        chain = self.directories(base, digest)
        return chain, f"{chain[-1]}/{digest}{self.suffix}"


#: Written before this module: two levels, a record naming a separate data file.
FIRST: Final = Layout(1, 2, ".json")
#: 256 fan-out directories, each version one file.
SECOND: Final = Layout(2, 1, ".blob")
#: As the second, and small blobs as rows of ``inline.sqlite3`` (:mod:`.sqlite.inline_blobs`).
THIRD: Final = Layout(3, 1, ".blob")
#: As the third, the rows in another database (the resource store's), which the marker names.
FOURTH: Final = Layout(4, 1, ".blob")
#: As the fourth, and rows that point at bytes in segment files (:mod:`.filesystem_blob_segments`).
FIFTH: Final = Layout(5, 1, ".blob")
_LAYOUTS: Final = {layout.version: layout for layout in (FIRST, SECOND, THIRD, FOURTH, FIFTH)}


def open_layout(base: str) -> Layout:
    """The layout of the store in ``base``, created (with the marker of the second layout,
    which the store then upgrades if its inline tier is on) if missing or empty (but for a
    marker left half-written, or ``lost+found`` where ``base`` is a file system of its own).
    Content without a marker is a store of the first layout."""
    os.makedirs(base, exist_ok=True)
    names = os.listdir(base)
    if LAYOUT_FILE in names:
        return read_marker(base)
    if any(not name.startswith(f"{LAYOUT_FILE}.") and name != _MOUNT_ROOT for name in names):
        return FIRST
    write_marker(base, SECOND)
    fsync_directory(os.path.dirname(os.path.abspath(base)))
    return SECOND


def write_marker(base: str, layout: Layout, database: str | None = None) -> Layout:
    """Write (or replace) the marker of ``base`` atomically: a temporary file, fsync'd,
    renamed over the marker, the directory fsync'd. ``database`` (layout 4): the path of the
    database of the rows, kept in the marker's second line relative to ``base``."""
    temp = f"{base}/{LAYOUT_FILE}.{secrets.token_hex(8)}{_TEMP}"
    text = b"%d\n" % layout.version
    if database is not None:
        text += os.path.relpath(database, base).encode() + b"\n"
    fd = os.open(temp, _CREATE, 0o644)
    try:
        write_all(fd, text)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, f"{base}/{LAYOUT_FILE}")
    fsync_directory(base)
    return layout


def marker_database(base: str) -> str:
    """The path of the database that a marker of layout 4 names (absolute)."""
    lines = _marker_lines(base)
    if len(lines) < 2 or not lines[1]:
        raise ValueError(
            f"blob store {base}: its {LAYOUT_FILE} file says 4 but names no database of its "
            "small blobs"
        )
    return os.path.normpath(os.path.join(os.path.abspath(base), lines[1]))


def _marker_lines(base: str) -> list[str]:
    with open(f"{base}/{LAYOUT_FILE}", "rb") as marker:
        return os.fsdecode(marker.read(8192)).strip().splitlines()


def read_marker(base: str) -> Layout:
    """The layout the marker of ``base`` names (ValueError for one this server does not know)."""
    lines = _marker_lines(base)
    text = lines[0].strip() if lines else ""
    layout = _LAYOUTS.get(int(text)) if text.isdigit() else None
    if layout is None:
        raise ValueError(
            f"blob store {base}: its {LAYOUT_FILE} file says {text!r}, but this server knows "
            f"the layouts {', '.join(map(str, _LAYOUTS))}"
        )
    return layout


def fsync_directory(directory: str) -> None:
    fd = os.open(directory, _READ)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_data(fd: int) -> None:
    """Make ``fd``'s bytes and size durable (``fdatasync`` where there is one: a new file's
    size and blocks are part of it; its times are not needed)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS
        os.fsync(fd)


def drop_cached(fd: int, offset: int = 0, length: int = 0) -> None:
    """Drop ``fd``'s pages (``length`` bytes from ``offset``; 0: to the end), clean once
    synced, from the page cache (``POSIX_FADV_DONTNEED``, where there is one). A version file
    or segment is written once and read back later if at all (an image opened for reading,
    minutes or months after it came), while the resource database's pages are read all the
    time: hundreds of MB of instances an hour would otherwise push them out. The freed pages
    are then the next file's (on this project's VMs a page the cache has not used yet costs far
    more to fill than a reused one: 512x512 C-STORE no longer slows to half its rate after a
    few hundred MB, docs/performance.md)."""
    if hasattr(os, "posix_fadvise"):
        with contextlib.suppress(OSError):  # advice only: never a reason to fail a put
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def write_all(fd: int, *parts: bytes) -> None:
    """Write ``parts`` at ``fd``'s position, resuming short writes."""
    pending = [memoryview(part) for part in parts if part]
    while pending:
        written = os.writev(fd, pending)
        while pending and written >= len(pending[0]):
            written -= len(pending.pop(0))
        if pending:
            pending[0] = pending[0][written:]


def header(info: BlobInfo, room: int = 0, note: Mapping[str, Any] | None = None) -> bytes:
    """The header line of ``info``, padded to ``room`` bytes if given; ``note``: the writer's
    own JSON object kept with it (a segment's blob, filesystem_blob_segments.py)."""
    fields: dict[str, Any] = {
        "key": info.key,
        "size": info.size,
        "sha256": info.sha256,
        "content_type": info.content_type,
        "created": info.created.isoformat(),
    }
    if note is not None:
        fields["note"] = note
    line = orjson.dumps(fields)
    if room and len(line) >= room:
        raise ValueError(f"blob header of {len(line)} bytes does not fit in {room}")
    return line + b" " * (room - len(line) - 1) + b"\n" if room else line + b"\n"


@dataclass(frozen=True, slots=True)
class Record:
    """A committed version as its file tells it: the info, and where the bytes are (at
    ``offset`` in the same file, or in the data file ``data`` of the same directory)."""

    info: BlobInfo
    offset: int
    data: str | None
    #: The writer's note kept in the header (a segment's blob), if any.
    note: dict[str, Any] | None = None


def parse(head: bytes, path: str) -> Record:
    """The record whose file starts with ``head`` (at most :data:`_HEADER_READ` bytes)."""
    end = head.find(b"\n")
    damaged = f"blob store damaged: {path} does not start with a blob header"
    try:
        raw = orjson.loads(head if end < 0 else head[:end])
        info = BlobInfo(
            raw["key"], raw["size"], raw["sha256"], raw["content_type"],
            datetime.fromisoformat(raw["created"]),
        )  # fmt: skip
        note = raw.get("note")
        record = Record(info, end + 1, raw.get("data"), note if isinstance(note, dict) else None)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(damaged) from error
    if record.data is None and end < 0:
        raise ValueError(damaged)
    return record


def read_record(path: str) -> Record | None:
    """The record in ``path``, or None if there is no such file."""
    opened = open_record(path)
    if opened is None:
        return None
    record, fd = opened
    os.close(fd)
    return record


def open_record(path: str) -> tuple[Record, int] | None:
    """The record in ``path`` and the file, open (the caller closes it); None if none."""
    try:
        fd = os.open(path, _READ)
    except FileNotFoundError:
        return None
    try:
        return parse(os.pread(fd, _HEADER_READ, 0), path), fd
    except BaseException:
        os.close(fd)
        raise


class Directories:
    """The fan-out directories of one store whose entries are known to be durable (in-process
    memory only: a directory is checked, and its parent fsync'd, once per process)."""

    def __init__(self) -> None:
        self._known: set[str] = set()

    def make(self, chain: tuple[str, ...]) -> list[str]:
        """Create the directories of ``chain`` (outermost first) where missing. Returns the
        directories to fsync (:meth:`settle`) before the put returns, so that the entries made
        or found are durable."""
        if chain[-1] in self._known:
            return []
        parents: list[str] = []
        for path in chain:
            if path in self._known:
                continue
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
            parents.append(os.path.dirname(path))
        return parents

    def prepare(self, base: str) -> None:
        """Create every fan-out directory of the current layout that is missing (256: a new
        store would otherwise create one, and fsync its parent, on most of its first puts),
        make their entries durable with one fsync of ``base``, and remember them."""
        made = [f"{base}/{n:02x}" for n in range(256)]
        for path in made:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path)
        fsync_directory(base)
        self._known.update(made)

    def settle(self, chain: tuple[str, ...], parents: list[str]) -> None:
        """Fsync ``parents`` (from :meth:`make`, deepest first) and remember ``chain``."""
        for parent in reversed(parents):
            fsync_directory(parent)
        if parents:
            self._known.update(chain)


class PendingVersion:
    """One version being written to a temporary file next to the key's version file, then
    renamed over it (blocking methods, run in worker threads)."""

    def __init__(self, chain: tuple[str, ...], record: str, directories: Directories) -> None:
        self.chain = chain
        self.record = record
        self.temp = f"{record}.{secrets.token_hex(8)}{_TEMP}"
        self.size = 0
        self.committed = False
        #: The temporary file's inode (the version file's, once committed).
        self.inode = -1
        self._sha256 = hashlib.sha256()
        self._fd = -1
        self._directories = directories
        self._parents: list[str] = []

    def create(self, offset: int = HEADER_ROOM) -> None:
        """Make the fan-out directories and the temporary file, positioned at ``offset``."""
        self._parents = self._directories.make(self.chain)
        self._fd = os.open(self.temp, _CREATE, 0o644)
        self.inode = os.fstat(self._fd).st_ino
        if offset:
            os.lseek(self._fd, offset, os.SEEK_SET)

    def write(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self._sha256.update(chunk)
            write_all(self._fd, chunk)
            self.size += len(chunk)

    def finish(self, key: str, content_type: str) -> BlobInfo:
        """Write the header into its room, make the file durable and close it."""
        info = self._info(key, content_type)
        line = header(info, HEADER_ROOM)
        if os.pwrite(self._fd, line, 0) != len(line):
            raise OSError(f"short write of the blob header to {self.temp}")
        self._close(sync=True)
        return info

    def put_whole(self, data: bytes, key: str, content_type: str) -> BlobInfo:
        """Write header and ``data``, make them durable and commit, in one call. Large data is
        hashed in another thread while this one writes it (both release the GIL), behind a
        header room filled last, as a streamed put's."""
        if len(data) < PARALLEL_HASH:
            self.create(offset=0)
            self._sha256.update(data)
            self.size = len(data)
            info = self._info(key, content_type)
            write_all(self._fd, header(info), data)
        else:
            hashing = HASHING.submit(hashlib.sha256, data)
            self.create()
            write_all(self._fd, data)
            self._sha256 = hashing.result()
            self.size = len(data)
            info = self._info(key, content_type)
            line = header(info, HEADER_ROOM)
            if os.pwrite(self._fd, line, 0) != len(line):
                raise OSError(f"short write of the blob header to {self.temp}")
        self._close(sync=True)
        self.commit()
        return info

    def commit(self) -> None:
        """Rename the durable temporary file over the key's version file (the commit point),
        make that durable with the entries of new directories, then unlink the data file of the
        version replaced if it had one (first layout). The caller holds the key's lock."""
        previous = read_record(self.record)
        os.replace(self.temp, self.record)
        self.committed = True
        fsync_directory(self.chain[-1])
        self._directories.settle(self.chain, self._parents)
        if previous is not None and previous.data is not None:
            _unlink(f"{self.chain[-1]}/{previous.data}")

    def discard(self) -> None:
        """Remove what an unfinished put wrote (nothing once committed)."""
        self._close(sync=False)
        if not self.committed:
            _unlink(self.temp)

    def _info(self, key: str, content_type: str) -> BlobInfo:
        return BlobInfo(key, self.size, self._sha256.hexdigest(), content_type, datetime.now(UTC))

    def _close(self, *, sync: bool) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                if sync:
                    sync_data(fd)
                    drop_cached(fd)
            finally:
                os.close(fd)


def delete(directory: str, record_path: str) -> bool:
    """Unlink the version file ``record_path`` (then its data file, if separate); False if
    there was none."""
    record = read_record(record_path)
    if record is None:
        return False
    try:
        os.unlink(record_path)
    except FileNotFoundError:
        return False
    fsync_directory(directory)
    if record.data is not None:
        _unlink(f"{directory}/{record.data}")
    return True


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
