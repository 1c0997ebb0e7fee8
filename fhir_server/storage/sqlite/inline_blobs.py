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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage.blobs import BlobInfo
from fhir_server.storage.sqlite.job_group import JobGroup

log = logging.getLogger(__name__)

#: The database's name in the store's base directory.
DATABASE: Final = "inline.sqlite3"
BUSY_TIMEOUT_MS: Final = 10_000
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS blobs (
    key TEXT PRIMARY KEY NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT NOT NULL,
    created TEXT NOT NULL,
    token BLOB NOT NULL,
    data BLOB NOT NULL
)"""
_UPSERT: Final = """
INSERT INTO blobs (key, size, sha256, content_type, created, token, data)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    size = excluded.size, sha256 = excluded.sha256, content_type = excluded.content_type,
    created = excluded.created, token = excluded.token, data = excluded.data"""
_INFO: Final = "SELECT size, sha256, content_type, created FROM blobs WHERE key = ?"
_FETCH: Final = "SELECT size, sha256, content_type, created, data FROM blobs WHERE key = ?"


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


def create_database(base: str) -> None:
    """Create the (empty) database in ``base`` if it is not there, in WAL mode, and make its
    directory entry durable (before the layout marker that announces it is written)."""
    conn = connect(f"{base}/{DATABASE}", create=True)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(_SCHEMA)
    finally:
        conn.close()
    files.fsync_directory(base)


def open_layout(
    base: str, inline_max: int, database: str | None
) -> tuple[files.Layout, str | None]:
    """Open the store in ``base``, upgrade it if asked (to layout 4 when given a ``database``
    and ``inline_max`` > 0, else to layout 3 from 2 when ``inline_max`` > 0: see
    :mod:`fhir_server.storage.filesystem_blobs`), and name its layout and the database of its
    rows (None if it has none)."""
    layout = files.open_layout(base)
    own = f"{base}/{DATABASE}"
    if layout is files.THIRD and not os.path.isfile(own):  # refused before any upgrade
        raise ValueError(
            f"blob store {base}: its LAYOUT file says 3, but its {DATABASE} (the small "
            "blobs) is missing; restore it from the backup taken with the version files"
        )
    if inline_max > 0 and database is not None and layout in (files.SECOND, files.THIRD):
        create_table(database)

        def upgraded() -> bool:  # by another process, since this one read the marker
            return files.read_marker(base) is files.FOURTH

        if layout is files.SECOND or move_rows(own, database, upgraded) is not None:
            files.write_marker(base, files.FOURTH, database)
        layout = files.FOURTH
        remove_database(base)
    elif inline_max > 0 and layout is files.SECOND:
        create_database(base)
        layout = files.write_marker(base, files.THIRD)
    if layout is files.THIRD:
        return layout, own
    if layout is files.FOURTH:
        remove_database(base)  # left if an upgrade stopped after its marker
        return layout, files.marker_database(base)
    return layout, None


def create_table(path: str) -> None:
    """Create the (empty) table of the rows in the existing database ``path`` (layout 4: the
    resource store's, already in WAL mode) if it is not there."""
    conn = connect(path)
    try:
        conn.execute(_SCHEMA)
    finally:
        conn.close()


def move_rows(source: str, target: str, done: Callable[[], bool]) -> int | None:
    """Make the rows of ``target`` (the table made by :func:`create_table`) exactly those of
    ``source`` (a layout-3 ``inline.sqlite3``), in one transaction of ``target``; the number of
    rows. Run again after a crash, it gives the same result (``source`` is still the current
    version of each of its keys until the marker says 4). ``done``, asked under ``target``'s
    write lock: whether another process finished the upgrade meanwhile (its marker says 4; its
    rows may have changed since): then nothing is done (None)."""
    conn = connect(target)
    try:
        conn.execute("ATTACH DATABASE ? AS old", (f"file:{quote(source)}?mode=rw",))
        conn.execute("BEGIN IMMEDIATE")
        try:
            if done():
                conn.execute("ROLLBACK")
                return None
            conn.execute("DELETE FROM main.blobs")
            moved = conn.execute("INSERT INTO main.blobs SELECT * FROM old.blobs").rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("DETACH DATABASE old")
    finally:
        conn.close()
    return moved


def remove_database(base: str) -> None:
    """Remove ``inline.sqlite3`` (and its WAL and shared-memory files) from ``base``: left by
    an upgrade to layout 4, whose marker no longer names it."""
    for suffix in ("-wal", "-shm", ""):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{base}/{DATABASE}{suffix}")


def _info(key: str, size: int, sha256: str, content_type: str, created: str) -> BlobInfo:
    return BlobInfo(key, size, sha256, content_type, datetime.fromisoformat(created))


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

    def fetch(self, key: str) -> tuple[BlobInfo, bytes] | None:
        """The info and bytes of ``key``'s row (one SELECT), or None if it has none."""
        rows = self._reader().execute(_FETCH, (key,)).fetchall()
        if not rows:
            return None
        size, sha256, content_type, created, data = rows[0]
        return _info(key, size, sha256, content_type, created), bytes(data)

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

        return await self.jobs.run(lambda conn: _write_row(conn, key, data, content_type), after)

    async def put_if_absent(
        self, key: str, data: bytes, content_type: str, record: str
    ) -> tuple[BlobInfo, bool]:
        """Insert ``key``'s row unless the key has a current version, a row or the version file
        ``record``, checked in the insert's transaction (under the database's write lock); the
        key's current version and whether it is the new row."""

        def insert(conn: sqlite3.Connection) -> tuple[BlobInfo, bool]:
            rows = conn.execute(_INFO, (key,)).fetchall()
            if rows:
                return _info(key, *rows[0]), False
            current = files.read_record(record)
            if current is not None:
                return current.info, False
            return _write_row(conn, key, data, content_type)[0], True

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
        """Delete ``key``'s row; True if it had one."""
        return await self.jobs.run(
            lambda conn: conn.execute("DELETE FROM blobs WHERE key = ?", (key,)).rowcount > 0
        )

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


def _write_row(
    conn: sqlite3.Connection, key: str, data: bytes, content_type: str
) -> tuple[BlobInfo, bytes]:
    """Upsert ``key``'s row with ``data`` (in the caller's transaction): its info and the row's
    fresh token (which tells a later version of the row from this one)."""
    created = datetime.now(UTC)
    sha256 = hashlib.sha256(data).hexdigest()
    token = secrets.token_bytes(8)
    conn.execute(_UPSERT, (key, len(data), sha256, content_type, created.isoformat(), token, data))
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
