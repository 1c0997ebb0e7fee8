"""The inline tier of the filesystem blob store: small blobs as rows of one SQLite database.

Blocking methods, called from worker threads by :mod:`fhir_server.storage.filesystem_blobs`
(whose docstring places the tier in the layout and argues the guarantees): the writing ones in
the tier's own writer thread (:attr:`InlineTier.writer`), on one connection; the reading ones in
any worker thread, on a connection of that thread's own (WAL: a reader never waits behind a
writer's fsync). Here, in the SQLite package, as ``sqlite3`` is imported nowhere else. Each
blob is one row of the table ``blobs``: key, size, SHA-256, content type, created (ISO 8601, as
in a version file's header), a random ``token`` naming the put that wrote it, and the bytes.

The database is in WAL mode with ``synchronous = FULL``: a commit returns once the WAL is
synced, so an inline put is durable when it returns. The WAL file is reused after each
checkpoint (SQLite's automatic one, every 1,000 pages), so its sync writes blocks already
allocated (no file system journal commit, unlike a new file's). Writes take the database's write
lock with ``BEGIN IMMEDIATE`` and wait up to :data:`BUSY_TIMEOUT_MS` for another process's.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage.blobs import BlobInfo

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


def _info(key: str, size: int, sha256: str, content_type: str, created: str) -> BlobInfo:
    return BlobInfo(key, size, sha256, content_type, datetime.fromisoformat(created))


class InlineTier:
    """The database of one opened store: its writer thread and connection, and the reader
    connections of the worker threads that have read it (closed by :meth:`close`)."""

    def __init__(self, base: str) -> None:
        self.path = f"{base}/{DATABASE}"
        if not os.path.isfile(self.path):
            raise ValueError(
                f"blob store {base}: its LAYOUT file says 3, but its {DATABASE} (the small "
                "blobs) is missing; restore it from the backup taken with the version files"
            )
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="blob-inline-writer")
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

    # ------------------------------------------------------------------ writing (writer thread)

    def _connection(self) -> sqlite3.Connection:
        if self._writer_conn is None:
            self._writer_conn = connect(self.path)
        return self._writer_conn

    def put(
        self, key: str, data: bytes, content_type: str, directory: str, record: str
    ) -> BlobInfo:
        """Upsert ``key``'s row and commit (the commit point: durable once it returns), then
        remove the key's version file ``record`` if it has one (unlink, fsync ``directory``),
        unless a later put has replaced the row meanwhile (another process)."""
        created = datetime.now(UTC)
        sha256 = hashlib.sha256(data).hexdigest()
        token = secrets.token_bytes(8)
        row = (key, len(data), sha256, content_type, created.isoformat(), token, data)
        self._transaction(_UPSERT, row)
        if os.path.lexists(record):
            self._remove_file(key, token, directory, record)
        return BlobInfo(key, len(data), sha256, content_type, created)

    def _remove_file(self, key: str, token: bytes, directory: str, record: str) -> None:
        """Unlink the version file under the write lock, if ``key``'s row is still the one
        with ``token`` (so a file put by another process since then is not removed)."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT token FROM blobs WHERE key = ?", (key,)).fetchall()
            if rows and rows[0][0] == token:
                files.delete(directory, record)
        finally:
            conn.execute("ROLLBACK")

    def supersede(self, key: str, record: str, inode: int) -> None:
        """Delete ``key``'s row (the commit point of a file put whose version file ``record``
        has the inode ``inode``), unless that file has been replaced or removed meanwhile."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _inode(record) == inode:
                conn.execute("DELETE FROM blobs WHERE key = ?", (key,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def delete(self, key: str, directory: str, record: str) -> bool:
        """Remove ``key``'s version file (first), then its row; True if either was there."""
        removed = files.delete(directory, record)
        return self._transaction("DELETE FROM blobs WHERE key = ?", (key,)) > 0 or removed

    def _transaction(self, sql: str, parameters: tuple[object, ...]) -> int:
        """``sql`` in a transaction of its own, committed; the number of rows it changed."""
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            changed = conn.execute(sql, parameters).rowcount
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return changed

    def close(self) -> None:
        """Let the writer finish, stop it and close every connection (blocking)."""
        self.writer.shutdown(wait=True)
        with self._lock:
            connections, self._readers = self._readers, []
        if self._writer_conn is not None:
            connections.append(self._writer_conn)
            self._writer_conn = None
        for conn in connections:
            conn.close()


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
