"""Layout 5 of the filesystem blob store: write-once blobs larger than the inline tier's limit
(the DICOM ingest's ``put_if_absent``) appended to segment files, their rows in the resource
store's database; the upgrade from layout 4; rows whose bytes a crash left torn, dropped when
the store is opened again; the write issued beside a put, committed with its row."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.storage import filesystem_blob_files as files
from fhir_server.storage import filesystem_blob_segments as segments
from fhir_server.storage.sqlite import SqliteStore
from tests.unit.storage.blob_stores import killed_writer, opened, read, sharing

DICOM = "application/dicom"
ROOT = Path(__file__).resolve().parents[3]


def large(n: int, size: int = 200_000) -> bytes:
    return bytes([n % 251]) * 7 + os.urandom(size)


def row_places(database: Path) -> dict[str, tuple[str | None, int | None, int]]:
    with contextlib.closing(sqlite3.connect(database)) as conn:
        return {
            key: (segment, offset, length)
            for key, segment, offset, length in conn.execute(
                "SELECT key, segment, offset, length(data) FROM blobs"
            )
        }


def names(base: Path) -> list[str]:
    return sorted(p.name for p in (base / segments.DIRECTORY).iterdir())


async def test_a_large_write_once_blob_is_appended_to_a_segment(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    data = large(1)
    info, stored = await store.put_if_absent("i1", data, content_type=DICOM)
    assert stored and info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    segment, offset, length = row_places(resources.path)["i1"]
    assert segment is not None and offset == files.HEADER_ROOM and length == 0
    assert not list(base.glob("*/*.blob"))  # no version file
    (seg,) = [p for p in (base / segments.DIRECTORY).iterdir() if p.suffix == ".seg"]
    # the segment holds the header (readable without the database) and the bytes
    assert seg.read_bytes()[offset : offset + len(data)] == data
    assert files.parse(seg.read_bytes()[: files.HEADER_ROOM], str(seg)).info == info
    assert await store.info("i1") == info
    async with await store.stream("i1") as stream:
        chunks = [chunk async for chunk in stream]
    assert len(chunks) > 1 and b"".join(chunks) == data  # streamed in chunks, not whole
    # sent again: the first copy stays, nothing appended
    size = seg.stat().st_size
    again, stored = await store.put_if_absent("i1", large(2), content_type=DICOM)
    assert again == info and not stored and seg.stat().st_size == size
    await store.close()
    assert names(base) == sorted([seg.name, seg.stem + ".sealed"])
    reopened = await sharing(base, resources)
    assert await read(reopened, "i1") == data
    await reopened.close()


async def test_blobs_in_a_segment_are_replaced_and_deleted_like_any(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    for key in ("a", "b", "c"):
        await store.put_if_absent(key, large(3), content_type=DICOM)
    await store.put("a", b"x" * 5000, content_type=DICOM)  # a version file replaces the row
    await store.put("b", b"small", content_type=DICOM)  # an inline row replaces it
    assert await read(store, "a") == b"x" * 5000 and await read(store, "b") == b"small"
    places = row_places(resources.path)
    assert "a" not in places and places["b"] == (None, None, 5)
    assert await store.delete("c") is True and await store.info("c") is None
    assert await store.delete("c") is False
    await store.close()


async def test_a_writer_moves_on_to_a_new_segment_when_one_is_full(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    assert store._segments is not None
    store._segments.segment_size = 450_000  # two blobs of 200 KB each
    blobs = {f"k{n}": large(n) for n in range(5)}
    for key, data in blobs.items():
        await store.put_if_absent(key, data, content_type=DICOM)
    assert len({segment for segment, _, _ in row_places(resources.path).values()}) == 3
    for key, data in blobs.items():
        assert await read(store, key) == data
    # the full ones sealed and closed once their last append was synced, the last one on close
    assert len([name for name in names(base) if name.endswith(".sealed")]) == 2
    await store.close()
    assert len(names(base)) == 6


async def test_a_fourth_layout_store_is_upgraded_with_its_rows(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """A store an older server left: layout 4, the rows' table without the segment columns."""
    base = tmp_path / "data" / "blobs"
    base.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(resources.path)) as conn:
        conn.execute(
            "CREATE TABLE blobs (key TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL, "
            "sha256 TEXT NOT NULL, content_type TEXT NOT NULL, created TEXT NOT NULL, "
            "token BLOB NOT NULL, data BLOB NOT NULL)"
        )
        conn.execute(
            "INSERT INTO blobs VALUES ('old', 3, ?, ?, '2026-12-01T00:00:00+00:00', x'00', "
            "x'616263')",
            (hashlib.sha256(b"abc").hexdigest(), DICOM),
        )
        conn.commit()
    files.write_marker(str(base), files.FOURTH, str(resources.path))
    store = await sharing(base, resources)
    assert store.layout.version == 5
    assert (base / "LAYOUT").read_bytes() == b"5\n../fhir.sqlite3\n"
    with contextlib.closing(sqlite3.connect(resources.path)) as conn:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT key, size, sha256, offset FROM blobs WHERE segment = 'x'"
        ).fetchall()
    assert "USING INDEX blobs_segment" in str(plan)  # a crash's check reads no inline bytes
    assert await read(store, "old") == b"abc"
    await store.put("old", b"abd", content_type=DICOM)  # the upsert clears the new columns
    data = large(4)
    await store.put_if_absent("new", data, content_type=DICOM)
    assert await read(store, "old") == b"abd" and await read(store, "new") == data
    await store.close()


def _kill_a_writer_and_tear_its_segment(data: Path) -> Path:
    killed_writer(data, """
        for n in range(3):
            blob = bytes([n + 1]) * 300_000
            await store.put_if_absent(f"k{n}", blob, content_type="application/dicom")
    """)  # fmt: skip
    (seg,) = list((data / "blobs" / segments.DIRECTORY).iterdir())
    assert seg.suffix == ".seg"
    places = row_places(data / "fhir.sqlite3")
    with open(seg, "r+b") as file:
        file.seek(places["k1"][1] + 1000)  # type: ignore[operator]
        file.write(b"\xff")
        file.truncate(places["k2"][1] + 100_000)  # type: ignore[operator]
    return seg


async def test_rows_whose_bytes_a_crash_tore_are_dropped_when_the_store_is_opened_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A row commits while its bytes sync: a crash between can leave a row of bytes never made
    durable (its put never returned). Simulated: a writer killed after three puts, then the
    bytes of one blob damaged and the last one cut off, as a power cut could leave them."""
    data = tmp_path / "data"
    seg = _kill_a_writer_and_tear_its_segment(data)
    base = data / "blobs"
    resources = SqliteStore(data)
    await resources.open()
    caplog.set_level(logging.WARNING)
    store = await sharing(base, resources)
    try:
        assert await read(store, "k0") == b"\x01" * 300_000
        assert await store.info("k1") is None and await store.info("k2") is None
        assert "2 blob(s) of segment" in caplog.text
        assert names(base) == sorted([seg.name, seg.stem + ".sealed"])
        # resent, they are stored again
        await store.put_if_absent("k1", b"\x02" * 300_000, content_type=DICOM)
        assert await read(store, "k1") == b"\x02" * 300_000
    finally:
        await store.close()
        await resources.close()


async def test_the_segment_of_a_live_writer_is_left_alone(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """Another store opened over the same place (another process) while a writer appends: its
    segment is locked, so it is neither checked nor sealed."""
    base = tmp_path / "data" / "blobs"
    writer = await sharing(base, resources)
    await writer.put_if_absent("w", large(5), content_type=DICOM)
    other = await sharing(base, resources)
    assert [p.suffix for p in (base / segments.DIRECTORY).iterdir()] == [".seg"]
    await other.put_if_absent("o", large(6), content_type=DICOM)  # a segment of its own
    assert len({segment for segment, _, _ in row_places(resources.path).values()}) == 2
    await writer.put_if_absent("w2", large(7), content_type=DICOM)
    assert await read(other, "w2") == await read(writer, "w2")
    await other.close()
    await writer.close()
    assert len([n for n in names(base) if n.endswith(".sealed")]) == 2


async def test_a_blob_hashed_before_its_version_is_looked_for_has_its_own_digest(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """From PARALLEL_HASH bytes the put's hash starts before the worker thread looks for the
    key's version (filesystem_blob_appends.py): the digest is the bytes', for a new key as for
    puts at once, and a key that had a version keeps its own."""
    store = await sharing(tmp_path / "data" / "blobs", resources)
    blobs = {f"h{n}": large(n, files.PARALLEL_HASH + n) for n in range(4)}
    results = await asyncio.gather(
        *(store.put_if_absent(key, data, content_type=DICOM) for key, data in blobs.items())
    )
    for (key, data), (info, stored) in zip(blobs.items(), results, strict=True):
        assert stored and info.sha256 == hashlib.sha256(data).hexdigest()
        assert await read(store, key) == data
    kept, stored = await store.put_if_absent("h0", large(9, 300_000), content_type=DICOM)
    assert not stored and kept.sha256 == hashlib.sha256(blobs["h0"]).hexdigest()
    await store.close()


async def test_a_write_beside_a_put_commits_with_its_row(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """``put_if_absent_beside``: the caller's write starts once the bytes are written and is
    queued with the row's insert to the same writer, so both commit in one transaction."""
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    seen: list[bool] = []

    async def beside() -> str:
        def job(conn: sqlite3.Connection) -> bool:
            # the blob's row is in the same transaction, not yet committed
            return bool(conn.execute("SELECT 1 FROM blobs WHERE key = 'k'").fetchall())

        seen.append(await resources.jobs.run(job))
        return "written"

    data = large(8)
    stored, other = await store.put_if_absent_beside("k", data, content_type=DICOM, beside=beside)
    assert not isinstance(stored, BaseException) and stored[1] and other == "written"
    assert seen == [True]

    async def failing() -> None:
        raise RuntimeError("the record could not be written")

    stored2, failed = await store.put_if_absent_beside(
        "k2", large(9), content_type=DICOM, beside=failing
    )
    assert isinstance(failed, RuntimeError) and not isinstance(stored2, BaseException)
    assert stored2[1] and await store.info("k2") is not None
    # already there: the write beside still runs, alone
    stored, other = await store.put_if_absent_beside("k", data, content_type=DICOM, beside=beside)
    assert stored == ((await store.info("k")), False) and other == "written"
    await store.close()


async def test_the_default_write_beside_runs_with_the_put(tmp_path: Path) -> None:
    store = await opened(tmp_path / "blobs")
    calls: list[str] = []

    async def beside() -> int:
        calls.append("beside")
        return 7

    stored, other = await store.put_if_absent_beside(
        "k", b"bytes", content_type=DICOM, beside=beside
    )
    assert other == 7 and calls == ["beside"]
    assert not isinstance(stored, BaseException) and stored[1]
    await store.close()


async def test_a_failed_sync_stores_nothing_and_the_segment_is_left(
    tmp_path: Path, resources: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync that fails (a disk error): the put raises, its row (committed beside the sync) is
    deleted again, and the writer moves to a new segment, never sealing the failed one (the
    next store opened checks its rows)."""
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    before = large(10)
    await store.put_if_absent("before", before, content_type=DICOM)
    real = files.sync_data

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(files, "sync_data", failing)
    with pytest.raises(OSError, match="Input/output error"):
        await store.put_if_absent("failed", large(11), content_type=DICOM)
    monkeypatch.setattr(files, "sync_data", real)
    assert await store.info("failed") is None
    assert "failed" not in row_places(resources.path)
    data = large(12)
    _, stored = await store.put_if_absent("failed", data, content_type=DICOM)
    assert stored and await read(store, "failed") == data
    places = row_places(resources.path)
    assert places["before"][0] != places["failed"][0]  # a new segment
    await store.close()
    sealed = [name for name in names(base) if name.endswith(".sealed")]
    assert sealed == [f"{places['failed'][0]}.sealed"]
    reopened = await sharing(base, resources)  # checks the unsealed one: its row is whole
    assert await read(reopened, "before") == before
    assert len([name for name in names(base) if name.endswith(".sealed")]) == 2
    await reopened.close()


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
    from fhir_server.storage.sqlite import SqliteStore

    async def main(data: Path, name: str) -> None:
        resources = SqliteStore(data)
        await resources.open()
        store = FilesystemBlobStore(
            data / "blobs", inline_max=1000, database=resources.path, jobs=resources.jobs
        )
        await store.open()
        stored = 0
        for n in range(30):
            # keys of its own, and keys both processes put at once
            key = f"{name}-{n}" if n % 3 else f"both-{n}"
            blob = (name.encode() + bytes([n])) * 50_000
            _, mine = await store.put_if_absent(key, blob, content_type="application/dicom")
            stored += mine
        await store.close()
        await resources.close()
        print(stored)

    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
    """
)


async def test_two_processes_append_to_segments_of_their_own(tmp_path: Path) -> None:
    """Two server processes on one data directory at once: each appends to its own segments,
    every key has one version (the first committed), and each stored blob reads back whole."""
    data = tmp_path / "data"
    first = SqliteStore(data)
    await first.open()  # the schema made once, before the writers start
    await first.close()
    writers = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", _WRITER, str(data), name, cwd=ROOT, stdout=asyncio.subprocess.PIPE
        )
        for name in ("a", "b")
    ]
    outputs = [await writer.communicate() for writer in writers]
    assert all(writer.returncode == 0 for writer in writers)
    # each process stored its own 20 keys; of the 10 shared ones, each stored by one of them
    assert sum(int(out) for out, _ in outputs) == 2 * 20 + 10
    resources = SqliteStore(data)
    await resources.open()
    store = await sharing(data / "blobs", resources)
    try:
        places = row_places(resources.path)
        assert len(places) == 50 and len({segment for segment, _, _ in places.values()}) == 2
        for key in places:
            content = await read(store, key)
            owner = key[0] if not key.startswith("both") else chr(content[0])
            n = int(key.rsplit("-", 1)[1])
            assert content == (owner.encode() + bytes([n])) * 50_000
        assert len([name for name in names(data / "blobs") if name.endswith(".sealed")]) == 2
    finally:
        await store.close()
        await resources.close()


async def test_a_segment_a_writer_died_creating_is_removed_when_old(
    tmp_path: Path, resources: SqliteStore
) -> None:
    """A crash between a new segment's creation and its rename leaves an empty ``.new`` file:
    the next opening removes it once it is a minute old and no writer holds it."""
    base = tmp_path / "data" / "blobs"
    await (await sharing(base, resources)).close()
    directory = base / segments.DIRECTORY
    old, recent, held = (directory / f"{name}.new" for name in ("0a", "0b", "0c"))
    for path in (old, recent, held):
        path.touch()
    os.utime(old, (1_000_000_000, 1_000_000_000))
    os.utime(held, (1_000_000_000, 1_000_000_000))
    writer = os.open(held, os.O_RDONLY)  # a live writer holds its new segment locked
    try:
        fcntl.flock(writer, fcntl.LOCK_EX)
        store = await sharing(base, resources)
        await store.close()
    finally:
        os.close(writer)
    assert sorted(p.name for p in directory.iterdir()) == ["0b.new", "0c.new"]


def test_a_segment_is_closed_after_an_append_the_closing_did_not_wait_for(
    tmp_path: Path,
) -> None:
    """The writer closed while an append is under way: that segment's descriptor stays open
    until the append is synced and its row's commit over (closed under it, its number could be
    reused by another file), then it is closed unsealed (the next opening checks its rows),
    by whichever of the two ends last."""
    base = tmp_path / "blobs"
    base.mkdir()
    segments.prepare(str(base))
    writer = segments.SegmentWriter(str(base))
    placed = writer.append("k", b"x" * 5000, DICOM)
    writer.close()
    os.fstat(placed.held.fd)  # still open
    writer.sync(placed)
    os.fstat(placed.held.fd)  # still open: the row's commit is not over
    done = writer.release(placed, ok=True)
    assert done is placed.held
    writer.finish(done)
    with pytest.raises(OSError):
        os.fstat(placed.held.fd)
    assert names(base) == [f"{placed.segment}.seg"]  # not sealed
    # the other order: released first, then the sync closes it
    other = segments.SegmentWriter(str(base))
    second = other.append("k2", b"y" * 5000, DICOM)
    other.close()
    assert other.release(second, ok=True) is None
    other.sync(second)
    with pytest.raises(OSError):
        os.fstat(second.held.fd)


@pytest.mark.parametrize("size", [10, 5000])
async def test_a_bad_key_is_refused_before_the_write_beside(
    tmp_path: Path, resources: SqliteStore, size: int
) -> None:
    store = await sharing(tmp_path / "data" / "blobs", resources)
    called: list[bool] = []

    async def beside() -> None:
        called.append(True)

    with pytest.raises(InvalidRequest, match="invalid blob key"):
        await store.put_if_absent_beside("../x", b"x" * size, content_type=DICOM, beside=beside)
    assert called == []
    await store.close()
