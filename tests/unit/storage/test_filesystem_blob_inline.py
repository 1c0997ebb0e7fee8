"""The filesystem blob store's inline tier (fhir_server/storage/filesystem_blobs.py docstring):
small whole puts as rows of ``inline.sqlite3``, the third layout and the upgrade of a store of
the second, reads that do not wait for the writer, and what a crash can leave when a key moves
between the tiers (a killed subprocess, as in test_filesystem_blob_layout.py)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from fhir_server.storage.sqlite import blob_layouts, inline_blobs
from tests.contract.blob_backends import FilesystemBackend
from tests.unit.storage.blob_stores import opened, read

DICOM = "application/dicom"
SMALL, LARGE = b"s" * 600, b"L" * 5000


def has_file(store: FilesystemBlobStore, key: str) -> bool:
    directory, stem = store._where(key)
    return (directory / f"{stem}.blob").exists()


# ---------------------------------------------------------------------------- tiers and layouts


async def test_small_whole_puts_are_rows_and_the_rest_version_files(tmp_path: Path) -> None:
    backend = FilesystemBackend(tmp_path / "blobs", inline_max=1000)
    store = await opened(backend.base)

    async def streamed() -> AsyncIterator[bytes]:
        yield SMALL

    await store.put("row", SMALL, content_type=DICOM)
    await store.put("file", LARGE, content_type=DICOM)
    await store.put("streamed", streamed(), content_type=DICOM)
    assert backend.inline_keys() == ["row"]
    assert [has_file(store, key) for key in ("row", "file", "streamed")] == [False, True, True]
    with contextlib.closing(sqlite3.connect(backend.base / "inline.sqlite3")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert await backend.leftovers() == []
    await store.close()


async def test_a_second_layout_store_is_upgraded_in_place(tmp_path: Path) -> None:
    base = tmp_path / "blobs"
    old = await opened(base, inline_max=0)
    small = await old.put("small", SMALL, content_type=DICOM)
    large = await old.put("large", LARGE, content_type=DICOM)
    await old.close()
    assert (base / "LAYOUT").read_bytes() == b"2\n"
    assert not (base / "inline.sqlite3").exists(), "inline_max=0 writes the second layout"

    store = await opened(base)
    assert store.layout.version == 3 and (base / "LAYOUT").read_bytes() == b"3\n"
    assert await store.info("small") == small and await read(store, "small") == SMALL
    assert await store.info("large") == large and await read(store, "large") == LARGE
    assert has_file(store, "small"), "its files are left as they are"
    await store.put("new", b"new instance", content_type=DICOM)
    await store.put("small", b"corrected", content_type=DICOM)
    backend = FilesystemBackend(base)
    assert backend.inline_keys() == ["new", "small"]
    assert not has_file(store, "small"), "moved to its row"
    assert await read(store, "small") == b"corrected"
    assert await backend.leftovers() == []
    await store.close()


async def test_an_upgrade_cut_short_after_the_database_is_finished_later(tmp_path: Path) -> None:
    """A crash between creating the database and replacing the marker leaves an empty database
    in a store still marked 2: the second layout's reading ignores it, the upgrade reuses it."""
    base = tmp_path / "blobs"
    old = await opened(base, inline_max=0)
    await old.put("k", SMALL, content_type=DICOM)
    await old.close()
    blob_layouts.create_database(str(base))
    still = await opened(base, inline_max=0)
    assert still.layout.version == 2 and await read(still, "k") == SMALL
    await still.close()
    store = await opened(base)
    assert store.layout.version == 3 and await read(store, "k") == SMALL
    await store.close()


async def test_a_third_layout_store_opened_without_the_tier_still_reads_its_rows(
    tmp_path: Path,
) -> None:
    backend = FilesystemBackend(tmp_path / "blobs")
    tiered = await opened(backend.base)
    for key in ("a", "b", "c"):
        await tiered.put(key, SMALL, content_type=DICOM)
    await tiered.close()
    store = await opened(backend.base, inline_max=0)
    assert store.layout.version == 3
    assert await read(store, "a") == SMALL
    await store.put("a", b"now a file", content_type=DICOM)
    assert await store.delete("b") is True
    assert has_file(store, "a") and backend.inline_keys() == ["c"]
    assert await read(store, "a") == b"now a file" and await store.info("b") is None
    assert await backend.leftovers() == []
    await store.close()


async def test_a_third_layout_store_without_its_database_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "blobs"
    await (await opened(base)).close()
    (base / "inline.sqlite3").unlink()
    with pytest.raises(ValueError, match=r"LAYOUT file says 3, but its inline\.sqlite3 .*missing"):
        await opened(base)


async def test_reads_do_not_wait_for_the_writer(tmp_path: Path) -> None:
    """Neither behind the store's writer thread (busy, as during a commit's fsync) nor behind a
    write transaction of another connection (WAL)."""
    store = await opened(tmp_path / "blobs")
    put = await store.put("k", SMALL, content_type=DICOM)
    tier = store._inline
    assert tier is not None
    release = threading.Event()
    assert tier._own is not None  # its own writer thread (layout 3)
    busy = tier._own.submit(release.wait, 30)
    try:
        with contextlib.closing(
            sqlite3.connect(tmp_path / "blobs" / "inline.sqlite3", isolation_level=None)
        ) as other:
            other.execute("BEGIN IMMEDIATE")
            other.execute("DELETE FROM blobs")
            assert await asyncio.wait_for(store.info("k"), 5) == put
            assert await asyncio.wait_for(read(store, "k"), 5) == SMALL
            assert await asyncio.wait_for(store.info("missing"), 5) is None
            other.execute("ROLLBACK")
    finally:
        release.set()
        busy.result(timeout=30)
    await store.close()


async def test_a_late_step_of_another_process_does_not_undo_a_later_put(tmp_path: Path) -> None:
    """Two stores over one directory stand for two processes (their key locks are their own).
    The second step of a put that moves a key between tiers, come late, after a put of the key
    by the other store: the later put's version stays."""
    backend = FilesystemBackend(tmp_path / "blobs", inline_max=1000)
    first, second = await backend.new_store(), await backend.new_store()
    assert isinstance(first, FilesystemBlobStore) and isinstance(second, FilesystemBlobStore)
    tier = first._inline
    assert tier is not None
    directory, stem = first._where("k")
    record = str(directory / f"{stem}.blob")

    # A file put of the first store, its row delete late: the second's inline put came between.
    await first.put("k", LARGE, content_type=DICOM)
    inode = (directory / f"{stem}.blob").stat().st_ino
    inline = await second.put("k", SMALL, content_type=DICOM)
    await tier.supersede("k", record, inode)
    assert await first.info("k") == inline and await read(first, "k") == SMALL

    # An inline put of the first store, its file removal late: the second's file put came between.
    with contextlib.closing(sqlite3.connect(backend.base / "inline.sqlite3")) as conn:
        (token,) = conn.execute("SELECT token FROM blobs WHERE key = 'k'").fetchone()
    large = await second.put("k", LARGE, content_type=DICOM)
    with contextlib.closing(inline_blobs.connect(str(backend.base / "inline.sqlite3"))) as conn:
        inline_blobs._remove_file(conn, "k", token, str(directory), record)
    assert await first.info("k") == large and await read(first, "k") == LARGE
    assert await backend.leftovers() == []
    await backend.aclose()


# ---------------------------------------------------------------------------- crashes

_CRASHING = """
import asyncio, os, sys
from pathlib import Path
from fhir_server.storage.sqlite import inline_blobs
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore

base, first, second, when = sys.argv[1:]
CONTENT = {"small": b"s" * 600, "large": b"L" * 5000}
armed = False
connect = inline_blobs.connect

def crash(statement: str) -> None:
    if armed and statement.startswith(when):
        os._exit(9)

def traced(*args, **kwargs):
    conn = connect(*args, **kwargs)
    conn.set_trace_callback(crash)
    return conn

inline_blobs.connect = traced

async def main() -> None:
    global armed
    store = FilesystemBlobStore(Path(base), chunk_size=64 * 1024, inline_max=1000)
    await store.open()
    await store.put("1.2.3", CONTENT[first] + b"1", content_type="application/dicom")
    armed = True
    if when == "unlink":
        os.unlink = lambda *args, **kwargs: os._exit(9)
    if second == "delete":
        await store.delete("1.2.3")
    else:
        await store.put("1.2.3", CONTENT[second] + b"2", content_type="application/dicom")

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("first", "second", "when", "survivor", "both"),
    [
        # An inline put killed before its commit: the previous version, a row or a file.
        ("small", "small", "COMMIT", SMALL + b"1", False),
        ("large", "small", "COMMIT", LARGE + b"1", False),
        # ... after its commit, before it removes the key's version file: the new row.
        ("large", "small", "unlink", SMALL + b"2", True),
        # A file put killed after its rename, before it deletes the key's row (its commit
        # point): the row, the previous version.
        ("small", "large", "DELETE", SMALL + b"1", True),
        # A delete of a row killed before the row's delete: the version before the delete.
        ("small", "delete", "DELETE", SMALL + b"1", False),
    ],
    ids=[
        "inline-over-row-before-commit",
        "inline-over-file-before-commit",
        "inline-over-file-before-unlink",
        "file-over-row-before-row-delete",
        "delete-of-row-before-row-delete",
    ],
)
async def test_a_change_killed_mid_way_leaves_one_whole_version(
    tmp_path: Path, first: str, second: str, when: str, survivor: bytes, both: bool
) -> None:
    base = tmp_path / "blobs"
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING, str(base), first, second, when,
        cwd=Path(__file__).parents[3], stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(crashed.communicate(), timeout=60)
    assert crashed.returncode == 9, stderr.decode()
    backend = FilesystemBackend(base, inline_max=1000)
    store = await backend.new_store()
    assert isinstance(store, FilesystemBlobStore)
    info = await store.info("1.2.3")
    assert info is not None and info.size == len(survivor)
    assert await read(store, "1.2.3") == survivor
    assert await backend.leftovers() == (["1.2.3 in both tiers"] if both else [])
    again = await store.put("1.2.3", b"third version", content_type=DICOM)
    assert await store.info("1.2.3") == again and await read(store, "1.2.3") == b"third version"
    assert await backend.leftovers() == [], "the next put leaves the key in one tier"
    await backend.aclose()


async def test_a_put_whose_database_went_away_fails_instead_of_waiting(tmp_path: Path) -> None:
    """The tier's own writer cannot open the database (removed under the running store): the
    put gets the error."""
    store = await opened(tmp_path / "blobs")
    (tmp_path / "blobs" / "inline.sqlite3").unlink()
    with pytest.raises(sqlite3.OperationalError):
        await asyncio.wait_for(store.put("k", SMALL, content_type=DICOM), 10)
    await store.close()
