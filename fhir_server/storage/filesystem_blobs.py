"""The blob port on a local directory tree (the default blob store).

Layout under the base directory: small blobs as rows of one SQLite database (the *inline
tier*, :mod:`.sqlite.inline_blobs`), the others fanned out by the SHA-256 of the key (``h``), each
version one file that starts with its record (a JSON header line: key, size, sha256, content
type, created) followed by the bytes exactly as put (file formats in
:mod:`.filesystem_blob_files`)::

    LAYOUT                          "5" (or "4") and the path of the rows' database, relative
                                    to the base ("3": the rows are in inline.sqlite3)
    inline.sqlite3 (-wal, -shm)     layout 3: a row per small blob (WAL mode): the current
                                    version if any
    h[0:2]/h.blob                   the key's version file: the current version if it has no row
    h[0:2]/h.blob.<token>.tmp       a version being written (exists only during a put)
    segments/<name>.seg             layout 5: bytes of write-once blobs that rows point at
    segments/<name>.sealed          beside a segment whose rows are known whole

In layout 4 the rows are the table ``blobs`` of another database, the SQLite resource store's
(``database``, given with its writer's :class:`~.sqlite.job_group.JobGroup` ``jobs``, as the
server does, bootstrap.py): a row is then written by that writer, in one transaction with the
jobs queued beside it. A DICOM instance's bytes and its record, written at once, take one
commit, one WAL sync, instead of two in parallel, which cost nearly as much as two in a row.

In layout 5 (a store given a ``database``; the server's) a row may instead point at its bytes
in a *segment*: a ``put_if_absent`` larger than the inline tier's limit (a 512x512 DICOM
instance) appends them to a segment file of its writer's own, then commits the row (segment,
offset) while the segment syncs: a file appended to costs one journal commit where a new file
costs two (:mod:`.filesystem_blob_segments`, which argues the crash cases: a row committed
before its bytes were durable belonged to a put that never returned, and is dropped when the
store is next opened; a put with a note commits its row without a WAL sync of its own, and a
row a power failure lost is given back from the segment, :mod:`.sqlite.segment_recovery`).
A row of a segment is read, replaced and deleted as any row; the bytes of a replaced or deleted
one stay in their segment (no compaction yet). :meth:`FilesystemBlobStore.put_if_absent_beside`
starts the caller's write (the DICOM instance's record) once the bytes are written, so it
commits with the row.

256 fan-out directories hold the files (ext4, XFS and btrfs index large directories), so that
a new server does not create, and fsync the parent of, a directory for nearly every key.

**The inline tier** takes the puts of whole ``bytes`` of at most ``inline_max`` bytes (128 KiB
by default: a 128x128 CT slice, 39 KB, is one; a 512x512 one, 0.5 MB, is not). A new file costs
two file system journal commits (the ``fdatasync`` of a new file, the fsync of its directory), a
row one sync of the WAL, whose blocks are reused (about 0.2 ms against 0.5 to 1 ms for 39 KB
here); above a few hundred KB the checkpoints that copy rows into the database cost more than
files do. Bigger puts and streamed ones write version files. A key is in one tier at a time (a
crash may leave it in both for a moment; the row is then the current version, and the next put
or delete of the key removes the other).

**Layouts** (opened and upgraded by :func:`.sqlite.blob_layouts.open_layout`). A new store is of
layout 5 if given a ``database`` (through layout 4: a store of layout 4 given one is upgraded by
adding the segment columns to its table and the segments' directory, then the marker), else of
layout 3 (with ``inline_max=0``: of layout 2, the same without the database, all versions
files). A store of layout 2 opened with the inline tier on is upgraded in place: its files stay
as they are, the database is created (its entry fsync'd; for layout 4 the table), then the
marker is replaced atomically (temporary file, fsync, rename,
directory fsync), so a crash leaves either a store of layout 2 (with an empty database or table,
reused by the next upgrade) or one of the new layout. A store of layout 3 given a ``database``
is upgraded to 4: its rows are copied into the table (which is emptied first, in the same
transaction), then the marker is replaced, then ``inline.sqlite3`` is removed. A crash before
the marker leaves layout 3, whose database is still the current version of its rows (the next
upgrade copies them again); after it, layout 4 and perhaps a stale ``inline.sqlite3``, removed
when the store is next opened. Of two processes upgrading at once, only one copies: the copy
runs under the database's write lock and only if the marker still says 3 (else the other
process's rows, perhaps changed since, stay). The marker names the database relative to the
base, so the data directory can move as a whole. Servers older than a layout refuse its
``LAYOUT`` (they know the layouts before it only) instead of missing its rows; a store whose
rows' database is missing is refused too. A store of layout 3, 4 or 5 opened with
``inline_max=0``, or without the database's writer (``fhir-server migrate`` reading a source),
still reads and replaces its rows, with a writer connection of its own. The upgrade to 5 adds
nullable columns only (a crash before its marker leaves a layout-4 store that reads as before).

**Stores of the first layout** (written before the ``LAYOUT`` file existed: a base directory
with content and no ``LAYOUT``) stay readable and writable in place: two levels
``h[0:2]/h[2:4]/``, the commit point ``h.json``, which either is a version file as above or, as
written before, the record alone (the JSON without a newline) naming a data file
``h.<token>.data`` beside it. They get no inline tier. Readers take both forms; puts write
version files; a put or a delete of a key whose record names a data file unlinks that file after
its own commit. A base directory that is missing or empty (``lost+found`` aside) is given a
``LAYOUT`` file (written to a temporary name, fsync'd, renamed, the directory fsync'd) before
anything else, so a crash never leaves a store of a later layout that looks like one of the
first.

How the guarantees of :mod:`fhir_server.storage.blobs` hold:

- A put writes header and bytes to a temporary file of its own (a fresh random token; a streamed
  put leaves room for the header, hashes the bytes as they come and writes the header last),
  makes it durable (``fdatasync``: its bytes and size; its times are not needed), renames it over
  the key's version file (atomic on POSIX: the commit point) and fsyncs the directory. A reader
  opens the version file once and reads header and bytes through that descriptor, so it sees one
  whole version or none, also if a put or delete replaces or unlinks the file meanwhile.
- An inline put upserts the key's row and commits (``BEGIN IMMEDIATE``, ``synchronous =
  FULL``: the commit point, durable when the commit returns), then, if the key has a version
  file, unlinks it and fsyncs its directory before returning. A crash before the commit leaves
  the previous version (row or file); after it, the row, the new version, whatever is left of
  the file. A failed put rolls back: nothing of it is left.
- A put that writes a version file commits it as above, then deletes the key's row if it has
  one: that delete is the put's commit point. A crash before it leaves the row: the previous
  version. A delete unlinks the version file first, then deletes the row: a crash between leaves
  the row, the version before the delete (the other order could bring back an older file).
- Readers look at the row first, then at the version file; finding neither, at the row once
  more (an inline put may have moved the key from its file to a row in between). A row is read
  whole by one SELECT and streamed from memory in ``chunk_size`` chunks (it is at most
  ``inline_max`` bytes).
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
  file a first-layout record names is unlinked by exactly one of them, and a key's moves between
  the tiers never interleave. Several processes sharing one directory stay correct (the rename
  and SQLite's write lock decide): an inline put unlinks the version file only if its own row is
  still there, and a file put deletes the row only if its own file (by inode) is still the
  version file, both checked under the database's write lock, so of two puts of one key the
  later one's version stays. Two processes replacing one first-layout record at once may leave
  an unreferenced ``.data`` file; never read, it can be swept offline.
- File and SQLite I/O runs in worker threads, never on the event loop: one call per chunk of
  about ``chunk_size`` bytes (1 MiB by default: incoming chunks are gathered to that size). A put
  of bytes up to one chunk (a DICOM instance) is one call: write, fdatasync, rename, directory
  fsync, and the look for a row (then a second call only if there was one). An inline put is one
  call to the tier's writer thread (the one connection that writes); ``info`` and ``stream``
  are one call each, reading the row on a connection of the worker thread's own, so a read never
  waits behind a commit's sync.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from fhir_server.core.errors import BlobNotFound
from fhir_server.core.waiting import in_thread

from . import filesystem_blob_appends as appends
from . import filesystem_blob_files as files
from . import filesystem_blob_reads as reads
from . import filesystem_blob_segments as segments
from .blobs import BlobInfo, BlobStore, BlobStream, check_content_type, check_key, chunks_of
from .sqlite import blob_layouts as layouts
from .sqlite import inline_blobs as inline
from .sqlite import segment_recovery as recovery
from .sqlite.job_group import JobGroup

DEFAULT_CHUNK_SIZE: Final = 1024 * 1024
#: Puts of whole ``bytes`` up to this size go to the inline tier (see the module docstring).
DEFAULT_INLINE_MAX: Final = 128 * 1024
_LOCK_STRIPES: Final = 64
_T = TypeVar("_T")


class FilesystemBlobStore(BlobStore):
    """Blobs under ``base`` (created by :meth:`open`), read and written ``chunk_size`` bytes at a
    time in worker threads; puts of whole ``bytes`` of at most ``inline_max`` bytes as rows of
    the inline tier (0: none, a new store is then of the second layout). The guarantees are
    those of :mod:`fhir_server.storage.blobs`; how they hold is in this module's docstring."""

    def __init__(
        self,
        base: Path,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        inline_max: int = DEFAULT_INLINE_MAX,
        database: Path | None = None,
        jobs: JobGroup | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        if inline_max < 0:
            raise ValueError("inline_max must not be negative")
        self.base = Path(base)
        self.chunk_size = chunk_size
        self.inline_max = inline_max
        self.database = database
        self.jobs = jobs
        self.layout = files.THIRD
        self._locks: tuple[asyncio.Lock, ...] = ()
        self._directories = files.Directories()
        self._inline: inline.InlineTier | None = None
        self._segments: segments.SegmentWriter | None = None

    async def open(self) -> None:
        if self._locks:
            return
        database = None if self.database is None else str(self.database)
        opening = functools.partial(layouts.open_layout, str(self.base), self.inline_max, database)
        self.layout, path = await in_thread(opening)
        if path is not None:
            # the resource store's writer if the rows are in its database: they commit with
            # its writes
            jobs = self.jobs if _same_file(path, self.database) else None
            self._inline = await in_thread(functools.partial(inline.InlineTier, path, jobs))
            if self.layout is files.FIFTH:
                self._segments = segments.SegmentWriter(
                    str(self.base), rows_durable=functools.partial(recovery.sync_wal, path)
                )
        if self.layout is not files.FIRST:
            await in_thread(functools.partial(self._directories.prepare, str(self.base)))
        self._locks = tuple(asyncio.Lock() for _ in range(_LOCK_STRIPES))

    async def close(self) -> None:
        self._locks = ()
        tier, self._inline = self._inline, None
        if tier is not None:
            await in_thread(tier.close)
        writer, self._segments = self._segments, None
        if writer is not None:
            await in_thread(writer.close)

    def _place(self, key: str) -> tuple[tuple[str, ...], str]:
        """The fan-out directories of ``key`` (outermost first) and the path of its version."""
        if not self._locks:
            raise RuntimeError("the blob store is not open")
        return self.layout.place(str(self.base), check_key(key))

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
        tier = self._inline
        if tier is not None and isinstance(chunks, bytes) and len(chunks) <= self.inline_max:
            # One job of the database's writer: upsert and commit (with the jobs queued beside
            # it), then the version file removed.
            async with self._lock(record):
                return await tier.put(key, chunks, content_type, chain[-1], record)
        version = files.PendingVersion(chain, record, self._directories)
        try:
            if isinstance(chunks, bytes) and len(chunks) <= self.chunk_size:
                # All at hand and small (a DICOM instance, a document): one worker-thread call
                # under the key's lock instead of a hop per step.
                async with self._lock(record):
                    whole = functools.partial(self._put_whole, version, chunks, key, content_type)
                    info, has_row = await in_thread(whole)
                    await self._supersede(key, version, has_row)
                    return info
            await in_thread(version.create)
            await self._write(version, chunks)
            info = await in_thread(functools.partial(version.finish, key, content_type))
            async with self._lock(record):
                has_row = await in_thread(functools.partial(self._commit, version, key))
                await self._supersede(key, version, has_row)
        except BaseException:
            await in_thread(version.discard)
            raise
        return info

    async def put_if_absent(
        self, key: str, data: bytes, *, content_type: str
    ) -> tuple[BlobInfo, bool]:
        """Under the key's lock: a row inserted unless the key has a version (checked in the
        insert's transaction); in layout 5 the bytes of a larger one appended to a segment
        first (unless the key has a version, checked in the appending thread); else a version
        file written unless it has one (checked in the writing thread)."""
        chain, record = self._place(key)
        check_content_type(content_type)
        tier = self._inline
        async with self._lock(record):
            if tier is not None and len(data) <= self.inline_max:
                return await tier.put_if_absent(key, data, content_type, record)
            if tier is not None and self._segments is not None:
                stored, _ = await appends.append_beside(
                    self._segments, tier, key, data, content_type, record, appends.nothing
                )
                if isinstance(stored, BaseException):
                    raise stored
                return stored
            version = files.PendingVersion(chain, record, self._directories)
            try:
                return await in_thread(
                    functools.partial(self._put_whole_if_absent, version, data, key, content_type)
                )
            except BaseException:
                await in_thread(version.discard)
                raise

    async def put_if_absent_beside(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        beside: Callable[[], Awaitable[_T]],
        note: Mapping[str, Any] | None = None,
    ) -> tuple[tuple[BlobInfo, bool] | BaseException, _T | BaseException]:
        """In layout 5, for bytes that go to a segment: ``beside()`` starts once the bytes are
        written, with the row's insert (both queued at once to the resource store's writer,
        they commit in one transaction) and the segment's sync; with a ``note``, that commit is
        relaxed (filesystem_blob_appends.py). Smaller bytes: a row with them, durable."""
        tier, writer = self._inline, self._segments
        if tier is None or writer is None or len(data) <= self.inline_max:  # checks key and type
            return await super().put_if_absent_beside(
                key, data, content_type=content_type, beside=beside
            )
        _, record = self._place(key)
        check_content_type(content_type)
        async with self._lock(record):
            return await appends.append_beside(
                writer, tier, key, data, content_type, record, beside, note
            )

    async def restored(self) -> list[tuple[str, dict[str, Any]]]:
        tier = self._inline
        if tier is None or self.layout is not files.FIFTH:
            return []
        return await in_thread(tier.restored)

    async def forget_restored(self, keys: Iterable[str]) -> None:
        tier, keys = self._inline, list(keys)
        if tier is not None and self.layout is files.FIFTH and keys:
            await tier.forget_restored(keys)

    def _put_whole_if_absent(
        self, version: files.PendingVersion, data: bytes, key: str, content_type: str
    ) -> tuple[BlobInfo, bool]:
        current = reads.current_info(self._inline, key, version.record)
        if current is not None:
            return current, False
        return version.put_whole(data, key, content_type), True

    def _put_whole(
        self, version: files.PendingVersion, data: bytes, key: str, content_type: str
    ) -> tuple[BlobInfo, bool]:
        """Write and commit the version file; whether the key also has an inline row."""
        info = version.put_whole(data, key, content_type)
        return info, self._inline is not None and self._inline.has_row(key)

    def _commit(self, version: files.PendingVersion, key: str) -> bool:
        version.commit()
        return self._inline is not None and self._inline.has_row(key)

    async def _supersede(self, key: str, version: files.PendingVersion, has_row: bool) -> None:
        """Delete the inline row that the committed ``version`` replaces (its commit point)."""
        tier = self._inline
        if has_row and tier is not None:
            await tier.supersede(key, version.record, version.inode)

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
                await in_thread(functools.partial(version.write, batch))
                batch, gathered = [], 0
        if batch:
            await in_thread(functools.partial(version.write, batch))

    async def info(self, key: str) -> BlobInfo | None:
        _, record_path = self._place(key)
        return await in_thread(
            functools.partial(reads.current_info, self._inline, key, record_path)
        )

    async def stream(self, key: str) -> BlobStream:
        chain, record_path = self._place(key)
        current = functools.partial(
            reads.open_current, self._inline, key, str(self.base), chain[-1], record_path
        )
        opened = await in_thread(current)
        if opened is None:
            raise BlobNotFound(key)
        info, content = opened
        if isinstance(content, bytes):
            return BlobStream(info, _memory_chunks(content, self.chunk_size), _nothing)
        file = content

        async def release() -> None:
            file.close()

        return BlobStream(info, _read_chunks(file, self.chunk_size), release)

    async def delete(self, key: str) -> bool:
        chain, record_path = self._place(key)
        tier = self._inline
        async with self._lock(record_path):
            # the version file first, then the row (see the module docstring)
            removed = await in_thread(functools.partial(files.delete, chain[-1], record_path))
            if tier is not None:
                return await tier.delete_row(key) or removed
            return removed


def _same_file(path: str, other: Path | None) -> bool:
    try:
        return other is not None and os.path.samefile(path, other)
    except FileNotFoundError:
        return False


async def _read_chunks(file: reads.Readable, size: int) -> AsyncIterator[bytes]:
    while chunk := await in_thread(functools.partial(file.read, size)):
        yield chunk


async def _memory_chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _nothing() -> None:
    """An inline version holds nothing to release."""
