"""The filesystem blob store's durability steps, observed on the real file system.

Every ``os.fsync`` and rename the store makes is noted (the fsync'd file found through
``/proc/self/fd``), so the order its module docstring promises is checked as it happens: the data
file and the record are fsync'd before the rename that commits, the directory after it, and the
entry of every fan-out directory the put created (or found unknown) before the put returns.
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
        fsync, replace = os.fsync, Path.replace

        def noted_fsync(fd: int) -> None:
            fsync(fd)
            self.events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))

        def noted_replace(path: Path, target: str | os.PathLike[str]) -> Path:
            done = replace(path, target)
            self.events.append(("rename", str(target)))
            return done

        monkeypatch.setattr(os, "fsync", noted_fsync)
        monkeypatch.setattr(Path, "replace", noted_replace)

    def take(self) -> list[tuple[str, str]]:
        events, self.events = self.events, []
        return events


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FilesystemBlobStore]:
    store = FilesystemBlobStore(tmp_path / "blobs")
    await store.open()
    yield store
    await store.close()


def _places(store: FilesystemBlobStore, key: str) -> tuple[Path, Path]:
    directory, stem = store._where(key)
    return directory, directory / f"{stem}.json"


async def test_a_put_in_new_directories_makes_every_step_durable_in_order(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = Journal(monkeypatch)
    await store.put("1.2.3.4", b"instance bytes", content_type=DICOM)
    events = journal.take()
    directory, record = _places(store, "1.2.3.4")
    rename = events.index(("rename", str(record)))
    synced_before = {path for kind, path in events[:rename] if kind == "fsync"}
    assert any(p.endswith(".data") for p in synced_before), events
    assert any(p.endswith(".json.tmp") for p in synced_before), events
    synced_after = [path for kind, path in events[rename:] if kind == "fsync"]
    assert synced_after[0] == str(directory), "the rename is made durable first"
    assert set(synced_after[1:]) == {str(directory.parent), str(store.base)}, events
    data = next(p for p in directory.iterdir() if p.suffix == ".data")
    assert data.read_bytes() == b"instance bytes"


async def test_a_known_directory_is_not_fsynced_again(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put("1.2.3.4", b"first", content_type=DICOM)
    journal = Journal(monkeypatch)
    await store.put("1.2.3.4", b"second", content_type=DICOM)  # same key: same directory
    events = journal.take()
    directory, _ = _places(store, "1.2.3.4")
    assert [kind for kind, _ in events] == ["fsync", "fsync", "rename", "fsync"], events
    assert events[-1] == ("fsync", str(directory))
    assert len([p for p in directory.iterdir() if p.suffix == ".data"]) == 1, "old data unlinked"
    async with await store.stream("1.2.3.4") as stream:
        assert await stream.read_all() == b"second"


async def test_a_directory_left_by_another_store_is_made_durable_once(
    store: FilesystemBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.put("1.2.3.4", b"first", content_type=DICOM)
    again = FilesystemBlobStore(store.base)  # a restart: nothing known in-process
    await again.open()
    journal = Journal(monkeypatch)
    await again.put("1.2.3.4", b"second", content_type=DICOM)
    directory, _ = _places(store, "1.2.3.4")
    synced = [path for kind, path in journal.take() if kind == "fsync"]
    assert str(directory.parent) in synced and str(store.base) in synced
    await again.put("1.2.3.4", b"third", content_type=DICOM)
    synced = [path for kind, path in journal.take() if kind == "fsync"]
    assert str(directory.parent) not in synced and str(store.base) not in synced
    assert len([p for p in directory.iterdir() if p.suffix == ".data"]) == 1, "old data unlinked"
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
    assert [kind for kind, _ in before] == ["fsync", "fsync"], events
    assert before[0][1].endswith(".data") and before[1][1].endswith(".json.tmp"), events
    assert events[rename + 1] == ("fsync", str(directory))


async def test_whole_and_streamed_puts_of_one_new_key_leave_one_data_file(
    store: FilesystemBlobStore,
) -> None:
    """A streamed put creates its directory before it takes the key's lock: the whole put that
    finds the directory must still read the record a streamed put may have committed."""

    async def chunks(text: bytes) -> AsyncIterator[bytes]:
        await asyncio.sleep(0)
        yield text

    for round_ in range(20):
        key = f"race-{round_}"
        puts = [store.put(key, chunks(b"streamed %d" % i), content_type=DICOM) for i in range(3)]
        puts += [store.put(key, b"whole %d" % i, content_type=DICOM) for i in range(3)]
        await asyncio.gather(*puts)
        directory, _ = _places(store, key)
        stem = store._where(key)[1]
        data = [p for p in directory.iterdir() if p.name.startswith(stem) and p.suffix == ".data"]
        assert len(data) == 1, data
