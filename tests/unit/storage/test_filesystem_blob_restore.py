"""Layout 5's relaxed commits: a put with a note (the DICOM ingest's) commits its row and the
write beside it without a sync of the WAL of their own; its bytes and note, synced, rebuild both
after a power failure. The rows such a failure lost are given back when the store is opened
again (not those deleted, nor a blob stored without a note), listed by ``restored()``; a
segment is sealed only once its rows are durable; ``job_group.rebuildable`` relaxes a group of
jobs only when every one of them is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from pathlib import Path

from fhir_server.storage import filesystem_blob_segments as segments
from fhir_server.storage.sqlite import SqliteStore, job_group
from tests.unit.storage.blob_stores import killed_writer, read, sharing

DICOM = "application/dicom"
NOTE = {"ae_title": "CT1", "organization": "Organization/a", "channel": "c-store"}


def synchronous_level(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA synchronous").fetchone()[0])


async def test_a_group_of_jobs_is_relaxed_only_when_every_job_is(
    resources: SqliteStore,
) -> None:
    jobs = resources.jobs

    async def relaxed() -> int:
        with job_group.rebuildable():
            return await jobs.run(synchronous_level)

    both = await asyncio.gather(relaxed(), relaxed())
    assert list(both) == [1, 1]  # NORMAL: no sync of the WAL of their own
    mixed = await asyncio.gather(relaxed(), jobs.run(synchronous_level))
    assert list(mixed) == [2, 2]  # FULL: a durable job is in the group
    assert await jobs.run(synchronous_level) == 2  # and the connection is back to FULL


async def test_a_put_with_a_note_commits_relaxed_and_keeps_the_note_with_its_bytes(
    tmp_path: Path, resources: SqliteStore
) -> None:
    base = tmp_path / "data" / "blobs"
    store = await sharing(base, resources)
    try:
        levels: list[int] = []

        async def beside() -> None:
            levels.append(await resources.jobs.run(synchronous_level))

        data = os.urandom(200_000)
        stored, _ = await store.put_if_absent_beside(
            "noted", data, content_type=DICOM, beside=beside, note=NOTE
        )
        assert not isinstance(stored, BaseException) and stored[1]
        stored, _ = await store.put_if_absent_beside(
            "plain", os.urandom(200_000), content_type=DICOM, beside=beside
        )
        assert levels == [1, 2]
        (seg,) = (base / segments.DIRECTORY).glob("*.seg")
        fd = os.open(seg, os.O_RDONLY)
        try:
            found = {entry.info.key: entry.note for entry in segments.entries(fd)}
        finally:
            os.close(fd)
        assert found == {"noted": NOTE, "plain": None}
        assert await read(store, "noted") == data
    finally:
        await store.close()


def _cut_the_power(data: Path) -> None:
    killed_writer(data, """
        for n in range(4):
            await store.put_if_absent_beside(
                f"k{n}", bytes([n + 1]) * 300_000, content_type="application/dicom",
                beside=nothing,
                note={"ae_title": "CT1", "organization": "Organization/a", "channel": "c-store",
                      "n": n} if n != 3 else None,
            )
        await store.delete("k2")  # deleted: never given back
    """)  # fmt: skip
    with contextlib.closing(sqlite3.connect(data / "fhir.sqlite3")) as conn, conn:
        conn.execute("DELETE FROM blobs WHERE key IN ('k1', 'k3')")


async def test_rows_a_power_failure_lost_are_given_back_when_the_store_is_opened_again(
    tmp_path: Path,
) -> None:
    """Simulated: a writer killed after four puts (three with a note) and a delete, then the
    rows of ``k1`` and ``k3`` removed, as a lost end of the WAL would leave them. Opened again,
    the store gives ``k1`` its row back (whole bytes, a note) and lists it with its note until
    it is forgotten; ``k3`` (no note: its put was durable) and ``k2`` (deleted) stay absent."""
    data = tmp_path / "data"
    _cut_the_power(data)
    base = data / "blobs"
    resources = SqliteStore(data)
    await resources.open()
    store = await sharing(base, resources)
    try:
        assert await read(store, "k0") == b"\x01" * 300_000
        assert await read(store, "k1") == b"\x02" * 300_000
        assert await store.info("k2") is None and await store.info("k3") is None
        assert await store.restored() == [("k1", dict(NOTE, n=1))]
        await store.forget_restored(["k1"])
        assert await store.restored() == []
        assert sorted(p.suffix for p in (base / segments.DIRECTORY).iterdir()) == [
            ".sealed",
            ".seg",
        ]
    finally:
        await store.close()
        await resources.close()


def test_a_segments_blobs_are_found_past_a_torn_one(tmp_path: Path) -> None:
    base = tmp_path / "blobs"
    base.mkdir()
    segments.prepare(str(base))
    writer = segments.SegmentWriter(str(base))
    placed = []
    for n in range(3):
        one = writer.append(f"k{n}", bytes([n + 1]) * 50_000, DICOM, {"n": n})
        writer.sync(one)
        writer.release(one, ok=True)
        placed.append(one)
    with open(base / segments.DIRECTORY / f"{placed[1].segment}.seg", "r+b") as file:
        file.seek(placed[1].offset + 10)
        file.write(b"\xff")  # k1's bytes torn
    fd = os.open(base / segments.DIRECTORY / f"{placed[1].segment}.seg", os.O_RDONLY)
    try:
        found = [(e.info.key, e.offset, e.note) for e in segments.entries(fd)]
        # bytes already checked (a row's) are not read again
        trusted = [e.info.key for e in segments.entries(fd, checked={placed[1].offset})]
    finally:
        os.close(fd)
    assert found == [("k0", placed[0].offset, {"n": 0}), ("k2", placed[2].offset, {"n": 2})]
    assert trusted == ["k0", "k1", "k2"]
    writer.close()


def test_a_segment_is_sealed_only_once_its_rows_are_durable(tmp_path: Path) -> None:
    """Rows may commit without a sync of their own: the writer syncs the database's WAL
    before it marks a segment sealed, and holds a segment open until every put's row is
    committed (or will not be)."""
    base = tmp_path / "blobs"
    base.mkdir()
    segments.prepare(str(base))
    seen: list[list[str]] = []
    directory = base / segments.DIRECTORY

    def rows_durable() -> None:
        seen.append(sorted(p.suffix for p in directory.iterdir()))

    writer = segments.SegmentWriter(str(base), segment_size=150_000, rows_durable=rows_durable)
    first = writer.append("k0", b"a" * 100_000, DICOM)
    writer.sync(first)
    second = writer.append("k1", b"b" * 100_000, DICOM)  # starts a new segment
    assert seen == []  # the first one's row is not committed yet: not sealed
    done = writer.release(first, ok=True)
    assert done is first.held
    writer.finish(done)
    assert seen == [[".seg", ".seg"]]  # synced before the seal was marked
    assert (directory / f"{first.segment}.sealed").exists()
    writer.sync(second)
    writer.release(second, ok=True)
    writer.close()
    assert len(seen) == 2 and (directory / f"{second.segment}.sealed").exists()
