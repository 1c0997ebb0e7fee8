"""The filesystem blob store's durability steps, observed on the real file system.

Every ``os.fsync``, ``os.fdatasync`` and rename the store makes is noted (the synced file found
through ``/proc/self/fd``), so the order its module docstring promises is checked as it happens:
the version file is made durable before the rename that commits it, the directory after it, and
the entries of the fan-out directories when the store is opened (the first layout's, created by
puts, in test_filesystem_blob_layout.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fhir_server.storage.filesystem_blobs import FilesystemBlobStore

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/fd")

DICOM = "application/dicom"


class Journal:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, str]] = []
        fsync, fdatasync, replace = os.fsync, os.fdatasync, os.replace

        def noted_fsync(fd: int) -> None:
            fsync(fd)
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

        def noted_fdatasync(fd: int) -> None:
            fdatasync(fd)
            self.events.append(("fdatasync", os.readlink(f"/proc/self/fd/{fd}")))

        def noted_replace(source: str, target: str) -> None:
            replace(source, target)
            self.events.append(("rename", str(target)))

        monkeypatch.setattr(os, "fsync", noted_fsync)
        monkeypatch.setattr(os, "fdatasync", noted_fdatasync)
        monkeypatch.setattr(os, "replace", noted_replace)

    def take(self) -> list[tuple[str, str]]:
        events, self.events = self.events, []
        return events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FilesystemBlobStore]:
    """A store whose puts all write version files (its inline tier off: SQLite's syncs are its
    own, not ``os`` calls; the inline tier's crash tests are in test_filesystem_blob_inline.py)."""
    store = FilesystemBlobStore(tmp_path / "blobs", inline_max=0)
    await store.open()
    yield store
    await store.close()


def _places(store: FilesystemBlobStore, key: str) -> tuple[Path, Path]:
    directory, stem = store._where(key)
    return directory, directory / f"{stem}.blob"


def _files_of(store: FilesystemBlobStore, key: str) -> list[str]:
    directory, stem = store._where(key)
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(stem))


async def test_opening_a_new_store_makes_its_256_fan_out_directories_durable_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(monkeypatch)
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.open()
    events = journal.take()
    names = sorted(p.name for p in store.base.iterdir() if p.is_dir())
    assert names == [f"{n:02x}" for n in range(256)]
    assert events[-1] == ("fsync", str(store.base)), "one fsync for all their entries"
    fan_out = {str(store.base / name) for name in names}
    assert not [path for _, path in events if path in fan_out], "no fsync per fan-out directory"
    await store.close()


async def test_a_put_makes_every_step_durable_in_order(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(monkeypatch)
    await store.put("1.2.3.4", b"instance bytes", content_type=DICOM)
    events = journal.take()
    directory, record = _places(store, "1.2.3.4")
    assert directory.parent == store.base, "one level of fan-out"
    rename = events.index(("rename", str(record)))
    assert [kind for kind, _ in events[:rename]] == ["fdatasync"], events
    assert events[0][1].startswith(f"{record}.") and events[0][1].endswith(".tmp"), events
    synced_after = [path for kind, path in events[rename:] if kind == "fsync"]
    assert synced_after == [str(directory)], "the rename (the directory's entry: at open)"
    assert _files_of(store, "1.2.3.4") == [record.name], "one file per version"
    head, _, body = record.read_bytes().partition(b"\n")
    assert body == b"instance bytes" and head.startswith(b'{"key":"1.2.3.4","size":14,')


async def test_a_known_directory_is_not_fsynced_again(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put("1.2.3.4", b"first", content_type=DICOM)
    journal = Journal(monkeypatch)
    await store.put("1.2.3.4", b"second", content_type=DICOM)  # same key: same directory
    events = journal.take()
    directory, record = _places(store, "1.2.3.4")
    assert [kind for kind, _ in events] == ["fdatasync", "rename", "fsync"], events
    assert events[-1] == ("fsync", str(directory))
    assert _files_of(store, "1.2.3.4") == [record.name]
    async with await store.stream("1.2.3.4") as stream:
        assert await stream.read_all() == b"second"


async def test_a_reopened_store_makes_the_directories_durable_once_at_open(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put("1.2.3.4", b"first", content_type=DICOM)
    journal = Journal(monkeypatch)
    again = FilesystemBlobStore(store.base, inline_max=0)  # a restart: nothing known in-process
    await again.open()
    assert ("fsync", str(store.base)) in journal.take()
    await again.put("1.2.3.4", b"second", content_type=DICOM)
    await again.put("1.2.3.4", b"third", content_type=DICOM)
    synced = [path for kind, path in journal.take() if kind == "fsync"]
    assert str(store.base) not in synced
    assert _files_of(again, "1.2.3.4") == [_places(again, "1.2.3.4")[1].name]
    await again.close()


async def test_a_streamed_put_keeps_the_same_order(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    journal = Journal(monkeypatch)
    await store.put("stream-1", chunks(), content_type=DICOM)
    events = journal.take()
    directory, record = _places(store, "stream-1")
    rename = events.index(("rename", str(record)))
    before = events[:rename]
    assert [kind for kind, _ in before] == ["fdatasync"], events
    assert before[0][1].endswith(".tmp"), events
    assert events[rename + 1] == ("fsync", str(directory))
    head, _, body = record.read_bytes().partition(b"\n")
    assert body == b"part one, part two" and len(head) == 1023, "header padded to its room"


async def test_whole_and_streamed_puts_of_one_new_key_leave_one_version_file(
    store: FilesystemBlobStore,
) -> None:
    """A streamed put makes its directory before it takes the key's lock: whole and streamed
    puts racing on a new key still leave one version file and no temporary one."""

    async def chunks(text: bytes) -> AsyncIterator[bytes]:
        await asyncio.sleep(0)
        yield text

    for round_ in range(20):
        key = f"race-{round_}"
        puts = [store.put(key, chunks(b"streamed %d" % i), content_type=DICOM) for i in range(3)]
        puts += [store.put(key, b"whole %d" % i, content_type=DICOM) for i in range(3)]
        infos = await asyncio.gather(*puts)
        assert _files_of(store, key) == [_places(store, key)[1].name]
        info = await store.info(key)
        assert info in infos
