"""Layout 4 of the filesystem blob store: the inline rows in the SQLite resource store's
database, written by its writer (as the server wires them, bootstrap.py); upgrades from the
layouts 2 and 3, and crashes during an upgrade."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.storage.sqlite import blob_layouts as layouts
from fhir_server.storage.sqlite import inline_blobs as inline
from tests.unit.storage.blob_stores import opened, read, sharing

DICOM = "application/dicom"
SMALL = b"\x01" * 500
LARGE = b"\x02" * 5000


def rows(database: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return sorted(key for (key,) in conn.execute("SELECT key FROM blobs"))


async def test_a_new_store_keeps_its_rows_in_the_resource_database(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    assert store.layout.version == 5
    assert (base / "LAYOUT").read_bytes() == b"5\n../fhir.sqlite3\n"
    await store.put("small", SMALL, content_type=DICOM)
    await store.put("large", LARGE, content_type=DICOM)
    assert rows(resources.path) == ["small"] and not (base / inline.DATABASE).exists()
    assert await read(store, "small") == SMALL and await read(store, "large") == LARGE
    await store.close()


async def test_a_third_layout_store_is_upgraded_with_its_rows_and_files(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "blobs"
    old = await opened(base)
    infos = {
        key: await old.put(key, data, content_type=DICOM)
        for key, data in (("a", SMALL), ("b", SMALL[:10]), ("big", LARGE))
    }
    await old.close()
    store = await sharing(base, resources)
    assert store.layout.version == 5
    assert rows(resources.path) == ["a", "b"]
    assert not list(base.glob(f"{inline.DATABASE}*"))
    for key, info in infos.items():
        assert await store.info(key) == info
    assert await read(store, "b") == SMALL[:10] and await read(store, "big") == LARGE
    await store.close()


async def test_an_upgrade_stopped_before_its_marker_is_done_again(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """The rows were copied, the marker still says 3: the database of layout 3 is still the
    current version (here: a put after the copy, a key moved to a file), the next upgrade
    copies it again."""
    base = tmp_path / "blobs"
    old = await opened(base)
    await old.put("a", SMALL, content_type=DICOM)
    await old.put("moved", SMALL, content_type=DICOM)
    layouts.create_table(str(resources.path))
    layouts.move_rows(str(base / inline.DATABASE), str(resources.path), lambda: False)
    await old.put("a", b"newer", content_type=DICOM)
    await old.put("moved", LARGE, content_type=DICOM)
    await old.close()
    store = await sharing(base, resources)
    assert rows(resources.path) == ["a"]
    assert await read(store, "a") == b"newer" and await read(store, "moved") == LARGE
    await store.close()


async def test_an_upgrade_finished_by_another_process_is_not_done_again(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """A second process read the marker 3 and copies late, after the first one upgraded and
    stored rows: its copy (under the write lock) sees the marker 4 (5 since) and leaves the rows
    alone."""
    base = tmp_path / "blobs"
    old = await opened(base)
    await old.put("a", SMALL, content_type=DICOM)
    await old.close()
    late = tmp_path / "late.sqlite3"  # what the second process attached before the removal
    shutil.copy(base / inline.DATABASE, late)
    first = await sharing(base, resources)
    await first.put("new", SMALL, content_type=DICOM)

    def upgraded() -> bool:
        return files.read_marker(str(base)).version >= files.FOURTH.version

    assert layouts.move_rows(str(late), str(resources.path), upgraded) is None
    assert rows(resources.path) == ["a", "new"]
    await first.close()


async def test_a_database_left_by_an_upgrade_stopped_after_its_marker_is_removed(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "blobs"
    await (await sharing(base, resources)).close()
    stale = await opened(tmp_path / "elsewhere")
    await stale.put("a", b"stale", content_type=DICOM)
    await stale.close()
    shutil.copy(tmp_path / "elsewhere" / inline.DATABASE, base / inline.DATABASE)
    store = await sharing(base, resources)
    assert not (base / inline.DATABASE).exists() and await store.info("a") is None
    await store.close()


async def test_a_store_with_rows_in_the_resources_opened_alone_reads_and_writes_them(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """As ``fhir-server migrate`` opens it: no resource store's writer, rows by its own."""
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    put = await store.put("a", SMALL, content_type=DICOM)
    await store.close()
    alone = await opened(base, inline_max=0)
    assert alone.layout.version == 5 and await alone.info("a") == put
    await alone.put("a", b"replaced", content_type=DICOM)
    assert await alone.delete("a") is True and rows(resources.path) == []
    await alone.close()


async def test_the_data_directory_can_move(tmp_path: Path, resources: SqliteStore) -> None:
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    put = await store.put("a", SMALL, content_type=DICOM)
    await store.close()
    await resources.close()
    (tmp_path / "data").rename(tmp_path / "moved")
    alone = await opened(tmp_path / "moved" / "blobs")
    assert await alone.info("a") == put and await read(alone, "a") == SMALL
    await alone.close()
    (tmp_path / "moved").rename(tmp_path / "data")  # for the fixture's close


async def test_a_fourth_layout_store_without_its_database_is_refused(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "blobs"
    await (await sharing(base, resources)).close()
    await resources.close()
    resources.path.unlink()
    with pytest.raises(
        ValueError, match=r"database of its small blobs, .*fhir\.sqlite3, is missing"
    ):
        await opened(base)


async def test_a_third_layout_store_without_its_database_is_not_upgraded(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "blobs"
    await (await opened(base)).close()
    (base / inline.DATABASE).unlink()
    with pytest.raises(ValueError, match=r"LAYOUT file says 3, but its inline\.sqlite3 .*missing"):
        await sharing(base, resources)
    assert (base / "LAYOUT").read_bytes() == b"3\n"
