"""The layouts of the filesystem blob store that keep rows in SQLite (3, 4 and 5): creating
their database or table, and the upgrades between them (blocking functions, called from a worker
thread when the store is opened). :mod:`fhir_server.storage.filesystem_blobs` describes the
layouts and argues why a crash during an upgrade leaves a store of one layout or the next.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from urllib.parse import quote

from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage import filesystem_blob_segments as segments
from fhir_server.storage.sqlite.inline_blobs import (
    COLUMNS,
    DATABASE,
    SCHEMA,
    SEGMENT_COLUMNS,
    SEGMENT_INDEX,
    connect,
    write_lock,
)
from fhir_server.storage.sqlite.segment_recovery import recover_segments

log = logging.getLogger(__name__)


def create_database(base: str) -> None:
    """Create the (empty) database in ``base`` if it is not there, in WAL mode, and make its
    directory entry durable (before the layout marker that announces it is written)."""
    conn = connect(f"{base}/{DATABASE}", create=True)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(SCHEMA)
    finally:
        conn.close()
    files.fsync_directory(base)


def open_layout(
    base: str, inline_max: int, database: str | None
) -> tuple[files.Layout, str | None]:
    """Open the store in ``base``, upgrade it if asked (to layout 5 when given a ``database``
    and ``inline_max`` > 0, through layout 4 from 2 or 3; else to layout 3 from 2 when
    ``inline_max`` > 0: see :mod:`fhir_server.storage.filesystem_blobs`), and name its layout
    and the database of its rows (None if it has none)."""
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
            return files.read_marker(base).version >= files.FOURTH.version

        if layout is files.SECOND or move_rows(own, database, upgraded) is not None:
            files.write_marker(base, files.FOURTH, database)
        layout = files.FOURTH
        remove_database(base)
    elif inline_max > 0 and layout is files.SECOND:
        create_database(base)
        layout = files.write_marker(base, files.THIRD)
    if inline_max > 0 and database is not None and layout is files.FOURTH:
        # the segment columns and directory first, then the marker that announces them
        add_segment_columns(files.marker_database(base))
        segments.prepare(base)
        layout = files.write_marker(base, files.FIFTH, files.marker_database(base))
    if layout is files.THIRD:
        return layout, own
    if layout in (files.FOURTH, files.FIFTH):
        remove_database(base)  # left if an upgrade stopped after its marker
        rows = files.marker_database(base)
        if layout is files.FIFTH:
            recover_segments(base, rows)
        return layout, rows
    return layout, None


def create_table(path: str) -> None:
    """Create the (empty) table of the rows in the existing database ``path`` (layout 4: the
    resource store's, already in WAL mode) if it is not there."""
    conn = connect(path)
    try:
        conn.execute(SCHEMA)
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
        with write_lock(conn):
            if done():
                return None  # (nothing written: the transaction ends empty)
            conn.execute("DELETE FROM main.blobs")
            moved = conn.execute(
                f"INSERT INTO main.blobs ({COLUMNS}) SELECT {COLUMNS} FROM old.blobs"
            ).rowcount
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


def add_segment_columns(path: str) -> None:
    """Add the columns of layout 5 to the table of the rows in the database ``path`` (under
    its write lock, unless another process has)."""
    conn = connect(path)
    try:
        with write_lock(conn):
            present = {row[1] for row in conn.execute("PRAGMA table_info(blobs)")}
            for name, kind in SEGMENT_COLUMNS:
                if name not in present:
                    conn.execute(f"ALTER TABLE blobs ADD COLUMN {name} {kind}")
            # the rows of one segment, found after a crash without reading the table (its
            # inline rows' bytes, before the segment column, would be read through)
            conn.execute(SEGMENT_INDEX)
    finally:
        conn.close()
