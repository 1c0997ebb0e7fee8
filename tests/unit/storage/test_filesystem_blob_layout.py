"""The filesystem blob store's layouts and what a crash can leave (fhir_server/storage/
filesystem_blobs.py docstring): a new store is marked with the current layout; a store written
before the marker existed (``first_layout_blobs/``, written by that code) is read and written in
place; a put killed before or after its commit leaves the previous or the new version, whole,
and at most a temporary file that is never read."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.contract.blob_backends import FilesystemBackend
from tests.unit.storage.blob_stores import opened, read

DICOM = "application/dicom"
FIRST_LAYOUT = Path(__file__).parent / "first_layout_blobs"
#: What FIRST_LAYOUT holds (a key put twice keeps its second version only).
FIRST_LAYOUT_BLOBS = {
    "1.2.840.10008.1": (b"DICM first instance\n", DICOM),
    "Att-01_x.pdf": (b"streamed attachment\n", "application/pdf"),
    "1.2.840.10008.2": (b"second version\n", DICOM),
}


# ---------------------------------------------------------------------------- the marker


async def test_a_new_store_is_marked_with_the_current_layout(tmp_path: Path) -> None:
    store = await opened(tmp_path / "blobs")
    assert (tmp_path / "blobs" / "LAYOUT").read_bytes() == b"3\n"
    assert (tmp_path / "blobs" / "inline.sqlite3").is_file()
    await store.put("1.2.3", b"x", content_type=DICOM)
    await store.close()
    again = await opened(tmp_path / "blobs")
    assert again.layout.version == 3 and await read(again, "1.2.3") == b"x"


@pytest.mark.parametrize("leftover", [None, "LAYOUT.0123456789abcdef.tmp", "lost+found"])
async def test_an_empty_base_or_one_with_a_half_written_marker_becomes_a_new_store(
    tmp_path: Path, leftover: str | None
) -> None:
    """Empty but for a marker a crash left half-written, or the ``lost+found`` directory of a
    file system mounted there."""
    (tmp_path / "blobs").mkdir()
    if leftover == "lost+found":
        (tmp_path / "blobs" / leftover).mkdir()
    elif leftover is not None:
        (tmp_path / "blobs" / leftover).write_bytes(b"2")
    store = await opened(tmp_path / "blobs")
    assert store.layout.version == 3
    assert (tmp_path / "blobs" / "LAYOUT").read_bytes() == b"3\n"


@pytest.mark.parametrize("text", [b"6\n", b"two\n", b""])
async def test_an_unknown_layout_is_refused_with_a_clear_message(
    tmp_path: Path, text: bytes
) -> None:
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "LAYOUT").write_bytes(text)
    with pytest.raises(
        ValueError, match=r"blobs: its LAYOUT file says .*knows the layouts 1, 2, 3, 4, 5"
    ):
        await opened(tmp_path / "blobs")


async def test_a_fourth_layout_marker_without_its_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / "LAYOUT").write_bytes(b"4\n")
    with pytest.raises(ValueError, match=r"says 4 but names no database"):
        await opened(tmp_path / "blobs")


# ---------------------------------------------------------------------------- the first layout


@pytest.fixture
def first_layout(tmp_path: Path) -> FilesystemBackend:
    shutil.copytree(FIRST_LAYOUT, tmp_path / "blobs")
    return FilesystemBackend(tmp_path / "blobs")


async def test_a_first_layout_store_is_read_as_written(first_layout: FilesystemBackend) -> None:
    store = await opened(first_layout.base)
    assert store.layout.version == 1
    assert not (first_layout.base / "LAYOUT").exists(), "left as it was"
    for key, (data, content_type) in FIRST_LAYOUT_BLOBS.items():
        info = await store.info(key)
        assert info is not None and (info.size, info.content_type) == (len(data), content_type)
        assert await read(store, key) == data
    assert await first_layout.leftovers() == []


async def test_a_first_layout_store_takes_replaces_deletes_and_new_keys(
    first_layout: FilesystemBackend,
) -> None:
    store = await opened(first_layout.base)
    replaced = await store.put("1.2.840.10008.1", b"corrected", content_type=DICOM)
    assert await store.info("1.2.840.10008.1") == replaced
    assert await read(store, "1.2.840.10008.1") == b"corrected"
    assert await store.delete("Att-01_x.pdf") is True
    assert await store.info("Att-01_x.pdf") is None
    new = await store.put("1.2.840.10008.3", b"new instance", content_type=DICOM)
    directory, stem = store._where("1.2.840.10008.3")
    assert directory.parent.parent == first_layout.base, "two levels, as the store was written"
    assert (directory / f"{stem}.json").is_file()
    assert await first_layout.leftovers() == [], "replaced and deleted data files unlinked"
    assert not (first_layout.base / "inline.sqlite3").exists(), "no inline tier: all files"
    assert not (first_layout.base / "LAYOUT").exists(), "still of the first layout"
    await store.close()
    again = await opened(first_layout.base)
    assert await again.info("1.2.840.10008.3") == new
    assert await read(again, "1.2.840.10008.2") == b"second version\n"
    assert await read(again, "1.2.840.10008.1") == b"corrected"


# ---------------------------------------------------------------------------- damage and crashes


async def test_a_damaged_version_file_is_reported_with_its_path(tmp_path: Path) -> None:
    store = await opened(tmp_path / "blobs", inline_max=0)
    await store.put("k", b"x", content_type=DICOM)
    directory, stem = store._where("k")
    (directory / f"{stem}.blob").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match=rf"damaged: .*{stem}\.blob does not start with a blob"):
        await store.info("k")


async def test_the_longest_header_fits_the_room_a_streamed_put_keeps(tmp_path: Path) -> None:
    store = await opened(tmp_path / "blobs")
    key, content_type = "1." + "9" * 253, "a/b;" + '"\\' * 125 + "x"
    assert len(content_type) == 255

    async def chunks() -> AsyncIterator[bytes]:
        yield b"streamed"

    info = await store.put(key, chunks(), content_type=content_type)
    assert await store.info(key) == info and await read(store, key) == b"streamed"


_CRASHING_PUT = """
import asyncio, os, sys
from pathlib import Path
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore

async def main() -> None:
    store = FilesystemBlobStore(Path(sys.argv[1]), inline_max=0)
    await store.open()
    await store.put("1.2.3", b"first version", content_type="application/dicom")
    replace = os.replace

    def crash(source: str, target: str) -> None:
        if sys.argv[2] == "after-rename":
            replace(source, target)
        os._exit(9)

    os.replace = crash
    await store.put("1.2.3", b"second version", content_type="application/dicom")

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("when", "survivor"),
    [("before-rename", b"first version"), ("after-rename", b"second version")],
)
async def test_a_put_killed_mid_way_leaves_one_whole_version(
    tmp_path: Path, when: str, survivor: bytes
) -> None:
    """The process dies (``os._exit``) with the second version's file written and durable,
    just before or just after the rename that commits it."""
    base = tmp_path / "blobs"
    crashed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CRASHING_PUT, str(base), when,
        cwd=Path(__file__).parents[3], stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(crashed.communicate(), timeout=60)
    assert crashed.returncode == 9, stderr.decode()
    store = await opened(base)
    assert await read(store, "1.2.3") == survivor
    leftovers = await FilesystemBackend(base).leftovers()
    if when == "before-rename":
        (temp,) = leftovers
        assert temp.endswith(".tmp"), "the interrupted put's file, never read as a version"
        header = json.loads((base / temp).read_bytes().partition(b"\n")[0])
        assert header["size"] == len(b"second version"), "whole, but not committed"
    else:
        assert leftovers == []
    again = await store.put("1.2.3", b"third version", content_type=DICOM)
    assert await store.info("1.2.3") == again and await read(store, "1.2.3") == b"third version"
    assert len(await FilesystemBackend(base).leftovers()) == len(leftovers), "still never read"
