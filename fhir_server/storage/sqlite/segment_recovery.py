"""Recovering the segments of the filesystem blob store (layout 5) after a crash: blocking
functions, called from a worker thread when the store is opened
(:func:`~fhir_server.storage.sqlite.blob_layouts.open_layout`).

A segment its writer did not seal (the process died, or the machine) is checked once its lock
can be taken (the writer is gone), then sealed:

- a row whose bytes are not whole is dropped: rows commit while their bytes are synced, so a
  crash can leave one whose put never returned (never acknowledged);
- a blob whose bytes are whole and that its writer kept a *note* with, but that has no row, gets
  its row back, and its note is kept in ``blob_restored`` until the store's user has rebuilt its
  own records from it (:meth:`~fhir_server.storage.blobs.BlobStore.restored`): such a put's row
  and its caller's write commit without a sync of the WAL of their own
  (:mod:`~fhir_server.storage.filesystem_blob_appends`), so a power failure can lose them after
  the put returned. Not restored: a blob whose key has a current version (a row elsewhere, or a
  version file: it was stored again), and one whose row was deleted (``blob_erased`` keeps the
  place of every deleted row of a segment).

Before a segment is sealed, the WAL is synced: every row of the segment committed so far, with
or without a sync of its own, is then durable.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import time
from typing import Final

import orjson

from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage import filesystem_blob_segments as segments
from fhir_server.storage.sqlite.inline_blobs import SEGMENT_TABLES, connect, write_lock

log = logging.getLogger(__name__)

_INSERT: Final = """
INSERT INTO blobs (key, size, sha256, content_type, created, token, data, segment, offset)
VALUES (?, ?, ?, ?, ?, ?, x'', ?, ?)"""


def recover_segments(base: str, database: str) -> int:
    """Check every segment whose writer died before sealing it (module docstring), then seal
    it; the number of rows dropped. A segment whose writer is alive (locked) is left alone.
    Segments a writer died creating are removed."""
    if not os.path.isfile(database):  # refused with a clear error by the inline tier
        return 0
    create_tables(database)
    segments.sweep_unfinished(base, time.time())
    dropped = 0
    for segment in segments.unsealed(base):
        fd = segments.claim(base, segment)
        if fd is None:
            continue
        try:
            dropped += _drop_torn_rows(database, segment, fd)
            _restore_rows(base, database, segment, fd)
            sync_wal(database)
            segments.seal(base, segment, fd)
        finally:
            os.close(fd)
    return dropped


def create_tables(database: str) -> None:
    conn = connect(database)
    try:
        for statement in SEGMENT_TABLES:
            conn.execute(statement)
    finally:
        conn.close()


def sync_wal(database: str) -> None:
    """Make every transaction committed to ``database`` so far durable: its WAL synced (with
    or without a sync of their own; none left to sync if there is no WAL file)."""
    try:
        fd = os.open(f"{database}-wal", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _drop_torn_rows(database: str, segment: str, fd: int) -> int:
    conn = connect(database)
    try:
        rows = conn.execute(
            "SELECT key, size, sha256, offset FROM blobs WHERE segment = ?", (segment,)
        ).fetchall()
        torn = [
            (key, segment, offset)
            for key, size, sha256, offset in rows
            if segments.digest_at(fd, offset, size) != sha256
        ]
        if torn:
            with write_lock(conn):
                conn.executemany(
                    "DELETE FROM blobs WHERE key = ? AND segment = ? AND offset = ?", torn
                )
            log.warning(
                "blob rows in %s: %d blob(s) of segment %s whose bytes were not whole after a "
                "crash were dropped (never acknowledged: their senders resend them)",
                database, len(torn), segment,
            )  # fmt: skip
        return len(torn)
    finally:
        conn.close()


def _restore_rows(base: str, database: str, segment: str, fd: int) -> int:
    """Give back their row to the blobs of ``segment`` that have a note and lost their row
    (module docstring); how many."""
    conn = connect(database)
    try:
        placed, erased = (
            {int(offset) for (offset,) in conn.execute(query, (segment,))}
            for query in (
                "SELECT offset FROM blobs WHERE segment = ?",
                "SELECT offset FROM blob_erased WHERE segment = ?",
            )
        )
        known = placed | erased
        # the rows' bytes were checked by _drop_torn_rows: not read again
        lost = [
            entry
            for entry in segments.entries(fd, checked=placed)
            if entry.note is not None and entry.offset not in known
        ]
        if not lost:
            return 0
        restored: list[str] = []
        with write_lock(conn):
            for entry in lost:
                info = entry.info
                if _has_version(conn, base, info.key):
                    continue
                conn.execute(_INSERT, (
                    info.key, info.size, info.sha256, info.content_type,
                    info.created.isoformat(), secrets.token_bytes(8), segment, entry.offset,
                ))  # fmt: skip
                conn.execute(
                    "INSERT OR REPLACE INTO blob_restored (key, note) VALUES (?, ?)",
                    (info.key, orjson.dumps(entry.note).decode()),
                )
                restored.append(info.key)
        if restored:
            log.warning(
                "blob rows in %s: %d blob(s) of segment %s had lost their row (a power failure "
                "after they were stored) and got it back", database, len(restored), segment,
            )  # fmt: skip
        return len(restored)
    finally:
        conn.close()


def _has_version(conn: sqlite3.Connection, base: str, key: str) -> bool:
    """Whether ``key`` has a row, or a version file (layout 5's place of it)."""
    if conn.execute("SELECT 1 FROM blobs WHERE key = ?", (key,)).fetchone() is not None:
        return True
    return os.path.exists(files.FIFTH.place(base, key)[1])
