"""The inline tier of the filesystem blob store: small blobs as rows of one SQLite database.

Used by :mod:`fhir_server.storage.filesystem_blobs` (whose docstring places the tier in the
layout and argues the guarantees). The database is ``inline.sqlite3`` in the store's base
(layout 3), or the resource store's own (layout 4): then the rows are written as jobs of the
resource store's writer (:class:`~fhir_server.storage.sqlite.job_group.JobGroup`), and a DICOM
instance's bytes commit in one transaction with its record. The writes are jobs of a
:class:`JobGroup` in either case (of a writer thread and connection of the tier's own when it
is not given the resource store's); the reads are blocking methods called from worker threads,
each on a connection of that thread's own (WAL: a reader never waits behind a writer's fsync).
Here, in the SQLite package, as ``sqlite3`` is imported nowhere else. Each blob is one row of
the table ``blobs``: key, size, SHA-256, content type, created (ISO 8601, as in a version
file's header), a random ``token`` naming the put that wrote it, and the bytes.

The database is in WAL mode with ``synchronous = FULL`` (the resource store's is shared only
when its commits are as durable, bootstrap.py): a commit returns once the WAL is synced, so an
inline put is durable when it returns. The WAL file is reused after each
checkpoint (SQLite's automatic one, every 1,000 pages), so its sync writes blocks already
allocated (no file system journal commit, unlike a new file's). Writes take the database's write
lock with ``BEGIN IMMEDIATE`` and wait up to :data:`BUSY_TIMEOUT_MS` for another process's.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import orjson

from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage.blobs import BlobInfo
from fhir_server.storage.sqlite.job_group import JobGroup

log = logging.getLogger(__name__)

#: The database's name in the store's base directory.
DATABASE: Final = "inline.sqlite3"
BUSY_TIMEOUT_MS: Final = 10_000
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created TEXT NOT NULL,
    token BLOB NOT NULL,
    data BLOB NOT NULL,
    segment TEXT,
    offset INTEGER
)"""
#: The columns of a row of layout 5 that layout 4 lacks: the bytes' segment and offset there
#: (NULL for a row that holds its bytes in ``data``).
SEGMENT_COLUMNS: Final = (("segment", "TEXT"), ("offset", "INTEGER"))
COLUMNS: Final = "key, size, sha256, content_type, created, token, data"
SEGMENT_INDEX: Final = (
    "CREATE INDEX IF NOT EXISTS blobs_segment ON blobs (segment) WHERE segment IS NOT NULL"
)
#: The places of the rows of segments deleted (never restored), and the notes of blobs
#: restored, until their user has taken them.
SEGMENT_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS blob_erased (segment TEXT NOT NULL, offset INTEGER NOT NULL, "
    "PRIMARY KEY (segment, offset)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS blob_restored (key TEXT PRIMARY KEY NOT NULL, "
    "note TEXT NOT NULL) WITHOUT ROWID",
)
#: An upsert of a row with its bytes; in a table with the segment columns, it clears them.
_UPSERT: Final = """
INSERT INTO blobs (key, size, sha256, content_type, created, token, data)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    size = excluded.size, sha256 = excluded.sha256, content_type = excluded.content_type,
    created = excluded.created, token = excluded.token, data = excluded.data"""
_CLEAR_PLACE: Final = ", segment = NULL, offset = NULL"
_INSERT_PLACED: Final = """
INSERT INTO blobs (key, size, sha256, content_type, created, token, data, segment, offset)
VALUES (?, ?, ?, ?, ?, ?, x'', ?, ?)"""
#: Keeps the place of a row of a segment about to be deleted (layout 5: none else has one).
_ERASE: Final = """
INSERT OR IGNORE INTO blob_erased (segment, offset)
SELECT segment, offset FROM blobs WHERE key = ? AND segment IS NOT NULL"""
_INFO: Final = "SELECT size, sha256, content_type, created FROM blobs WHERE key = ?"
_FETCH: Final = "SELECT size, sha256, content_type, created, data{} FROM blobs WHERE key = ?"


def connect(path: str, *, create: bool = False) -> sqlite3.Connection:
    """A connection to the database ``path`` (created only if ``create``), in autocommit mode
    (transactions are begun explicitly), durable commits, waiting on other writers."""
    uri = f"file:{quote(path)}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


def _info(key: str, size: int, sha256: str, content_type: str, created: str) -> BlobInfo:
    return BlobInfo(key, size, sha256, content_type, datetime.fromisoformat(created))


@dataclass(frozen=True, slots=True)
class Pointer:
    """Where a row of layout 5 keeps its bytes: at ``offset`` of the segment ``segment``."""

    segment: str
    offset: int


class InlineTier:
    """The rows of one opened store in the database ``path``: its writes as jobs of ``jobs``
    (the resource store's writer, whose own writes they then commit with), else of a writer
    thread and connection of the tier's own; its reads on connections of the worker threads that
    read (closed by :meth:`close`)."""

    def __init__(self, path: str, jobs: JobGroup | None = None) -> None:
        if not os.path.isfile(path):
            raise ValueError(
                f"blob store: the database of its small blobs, {path}, is missing; restore it "
                "from the backup taken with the version files"
            )
        self.path = path
        with contextlib.closing(connect(path)) as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(blobs)")}
            #: Whether the table has the segment columns (layout 5, or a table created since).
            self.placed = all(name in columns for name, _ in SEGMENT_COLUMNS)
            if self.placed:
                for statement in SEGMENT_TABLES:
                    conn.execute(statement)
        self._upsert = _UPSERT + _CLEAR_PLACE if self.placed else _UPSERT
        self._fetch = _FETCH.format(", segment, offset" if self.placed else "")
        self._own: ThreadPoolExecutor | None = None
        if jobs is None:
            self._own = ThreadPoolExecutor(1, thread_name_prefix="blob-inline-writer")
            jobs = JobGroup(self._submit)
        self.jobs = jobs
        self._writer_conn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ reading (any thread)

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        return conn

    def info(self, key: str) -> BlobInfo | None:
        """The info of ``key``'s row, or None if it has none."""
        rows = self._reader().execute(_INFO, (key,)).fetchall()
        return _info(key, *rows[0]) if rows else None

    def fetch(self, key: str) -> tuple[BlobInfo, bytes | Pointer] | None:
        """The info and bytes of ``key``'s row (one SELECT), or where they are in a segment;
        None if it has no row."""
        rows = self._reader().execute(self._fetch, (key,)).fetchall()
        if not rows:
            return None
        size, sha256, content_type, created, data, *place = rows[0]
        info = _info(key, size, sha256, content_type, created)
        if place and place[0] is not None:
            return info, Pointer(place[0], place[1])
        return info, bytes(data)

    def has_row(self, key: str) -> bool:
        return bool(self._reader().execute("SELECT 1 FROM blobs WHERE key = ?", (key,)).fetchall())

    # ------------------------------------------------------------------ writing (jobs)

    def _submit(
        self, job: Callable[[sqlite3.Connection], None], failed: Callable[[BaseException], None]
    ) -> None:
        assert self._own is not None
        self._own.submit(self._run_own, job, failed).add_done_callback(_log_failure)

    def _run_own(
        self, job: Callable[[sqlite3.Connection], None], failed: Callable[[BaseException], None]
    ) -> None:
        if self._writer_conn is None:
            try:
                self._writer_conn = connect(self.path)
            except Exception as exc:  # the queued puts learn it (the database went away?)
                failed(exc)
                return
        job(self._writer_conn)

    async def put(
        self, key: str, data: bytes, content_type: str, directory: str, record: str
    ) -> BlobInfo:
        """Upsert ``key``'s row, committed (the commit point: durable once it returns), then
        remove the key's version file ``record`` if it has one (unlink, fsync ``directory``),
        unless a later put has replaced the row meanwhile (another process)."""

        def after(conn: sqlite3.Connection, done: tuple[BlobInfo, bytes]) -> BlobInfo:
            if os.path.lexists(record):
                _remove_file(conn, key, done[1], directory, record)
            return done[0]

        upsert = self._upsert
        return await self.jobs.run(
            lambda conn: _write_row(conn, upsert, key, data, content_type), after
        )

    async def put_if_absent(
        self, key: str, data: bytes, content_type: str, record: str
    ) -> tuple[BlobInfo, bool]:
        """Insert ``key``'s row unless the key has a current version, a row or the version file
        ``record``, checked in the insert's transaction (under the database's write lock); the
        key's current version and whether it is the new row."""

        upsert = self._upsert

        def insert(conn: sqlite3.Connection) -> tuple[BlobInfo, bool]:
            current = _current(conn, key, record)
            if current is not None:
                return current, False
            return _write_row(conn, upsert, key, data, content_type)[0], True

        return await self.jobs.run(insert)

    async def place_if_absent(
        self, info: BlobInfo, pointer: Pointer, record: str
    ) -> tuple[BlobInfo, bool]:
        """Insert a row for bytes already durable in a segment (``info`` and ``pointer``),
        unless the key has a current version (as :meth:`put_if_absent`)."""
        key = info.key

        def insert(conn: sqlite3.Connection) -> tuple[BlobInfo, bool]:
            current = _current(conn, key, record)
            if current is not None:
                return current, False
            conn.execute(_INSERT_PLACED, (
                key, info.size, info.sha256, info.content_type, info.created.isoformat(),
                secrets.token_bytes(8), pointer.segment, pointer.offset,
            ))  # fmt: skip
            return info, True

        return await self.jobs.run(insert)

    async def supersede(self, key: str, record: str, inode: int) -> None:
        """Delete ``key``'s row (the commit point of a file put whose version file ``record``
        has the inode ``inode``), unless that file has been replaced or removed meanwhile (the
        check runs under the database's write lock)."""

        def drop(conn: sqlite3.Connection) -> None:
            if _inode(record) == inode:
                conn.execute("DELETE FROM blobs WHERE key = ?", (key,))

        await self.jobs.run(drop)

    async def delete_row(self, key: str) -> bool:
        """Delete ``key``'s row; True if it had one. The place of a row of a segment is kept in
        ``blob_erased`` (so that no recovery gives the row back: segment_recovery.py)."""

        def drop(conn: sqlite3.Connection) -> bool:
            if self.placed:
                conn.execute(_ERASE, (key,))
            return conn.execute("DELETE FROM blobs WHERE key = ?", (key,)).rowcount > 0

        return await self.jobs.run(drop)

    @property
    def shared(self) -> bool:
        """Whether the rows are written by the resource store's writer (with its writes)."""
        return self._own is None

    def restored(self) -> list[tuple[str, dict[str, Any]]]:
        """The blobs whose row a recovery gave back, with their notes (segment_recovery.py)."""
        rows = self._reader().execute("SELECT key, note FROM blob_restored ORDER BY key")
        return [(str(key), orjson.loads(note)) for key, note in rows.fetchall()]

    async def forget_restored(self, keys: list[str]) -> None:
        def forget(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM blob_restored WHERE key = ?", [(key,) for key in keys])

        await self.jobs.run(forget)

    def close(self) -> None:
        """Let the own writer finish, stop it and close every connection (blocking)."""
        if self._own is not None:
            self._own.shutdown(wait=True)
        with self._lock:
            connections, self._readers = self._readers, []
        if self._writer_conn is not None:
            connections.append(self._writer_conn)
            self._writer_conn = None
        for conn in connections:
            conn.close()


def _current(conn: sqlite3.Connection, key: str, record: str) -> BlobInfo | None:
    """The info of ``key``'s row, else of its version file ``record``; None if neither."""
    rows = conn.execute(_INFO, (key,)).fetchall()
    if rows:
        return _info(key, *rows[0])
    current = files.read_record(record)
    return None if current is None else current.info


def _write_row(
    conn: sqlite3.Connection, upsert: str, key: str, data: bytes, content_type: str
) -> tuple[BlobInfo, bytes]:
    """Upsert ``key``'s row with ``data`` (in the caller's transaction): its info and the row's
    fresh token (which tells a later version of the row from this one)."""
    created = datetime.now(UTC)
    sha256 = hashlib.sha256(data).hexdigest()
    token = secrets.token_bytes(8)
    conn.execute(upsert, (key, len(data), sha256, content_type, created.isoformat(), token, data))
    return BlobInfo(key, len(data), sha256, content_type, created), token


def _remove_file(
    conn: sqlite3.Connection, key: str, token: bytes, directory: str, record: str
) -> None:
    """Unlink the version file under the write lock, if ``key``'s row is still the one with
    ``token`` (so a file put by another process since then is not removed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        rows = conn.execute("SELECT token FROM blobs WHERE key = ?", (key,)).fetchall()
        if rows and rows[0][0] == token:
            files.delete(directory, record)
    finally:
        conn.execute("ROLLBACK")


def _log_failure(done: Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("inline blob writer job failed", exc_info=done.exception())


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def write_lock(conn: sqlite3.Connection) -> Iterator[None]:
    """A transaction of ``conn`` under the database's write lock (``BEGIN IMMEDIATE``, waiting
    for another process's), committed when the block ends, rolled back if it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
