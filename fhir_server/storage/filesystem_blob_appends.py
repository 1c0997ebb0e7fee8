"""A write-once blob's put through a segment (layout 5), on the event loop: the bytes appended and
synced in one worker-thread call, the row committed beside the sync with the caller's own write
(:mod:`.filesystem_blob_segments` has the segments and the crash cases, :mod:`.filesystem_blobs`
the layout)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from typing import Any, TypeVar

from fhir_server.core.waiting import in_thread

from . import filesystem_blob_files as files
from . import filesystem_blob_reads as reads
from .blobs import BlobInfo
from .filesystem_blob_segments import Placed, SegmentWriter
from .sqlite import inline_blobs as inline
from .sqlite import job_group

_T = TypeVar("_T")


async def append_beside(
    writer: SegmentWriter,
    tier: inline.InlineTier,
    key: str,
    data: bytes,
    content_type: str,
    record: str,
    beside: Callable[[], Awaitable[_T]],
    note: Mapping[str, Any] | None = None,
) -> tuple[tuple[BlobInfo, bool] | BaseException, _T | BaseException]:
    """``data`` appended to a segment unless ``key`` has a current version (a row, or its
    version file ``record``), its row inserted unless one came meanwhile; and ``beside()``, the
    caller's write, started with the row's insert so that both commit in one transaction. The
    caller holds the key's lock. The row is committed while the bytes, already written, are
    synced (a crash between leaves a row whose bytes may be torn: see the module docstring);
    returns once all are done.

    With a ``note`` (kept in the blob's header) and the rows in the resource store's database,
    the row and ``beside()``'s write commit without a sync of the WAL of their own (relaxed,
    job_group.py): the bytes and the note, synced, are enough to rebuild both after a power
    failure (sqlite/segment_recovery.py), and the segment is not sealed before the WAL is."""
    loop = asyncio.get_running_loop()
    written: asyncio.Future[Placed] = loop.create_future()

    def appended(placed: Placed) -> None:
        if not written.done():
            written.set_result(placed)

    # hashed from now on, while the worker thread starts and looks for the key's version (a
    # 0.5 MB instance: a third of a millisecond; the wasted hash of a duplicate is rare)
    hashing = files.hashing(data) if len(data) >= files.PARALLEL_HASH else None

    def append_and_sync() -> BlobInfo | Placed:
        # one worker-thread call: the loop learns that the bytes are written, and issues the
        # row's insert, while this thread syncs them
        current = reads.current_info(tier, key, record)
        if current is not None:
            return current
        placed = writer.append(key, data, content_type, note, hashing)
        loop.call_soon_threadsafe(appended, placed)
        writer.sync(placed)
        return placed

    work = asyncio.ensure_future(in_thread(append_and_sync))
    try:
        await asyncio.wait((work, written), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await asyncio.gather(work, return_exceptions=True)
        if written.done():  # appended: no row will be committed
            await _release(writer, written.result(), ok=False)
        raise
    if not written.done():  # the key had a version, or the append failed
        try:
            current = work.result()
        except Exception as exc:
            return exc, await _outcome(beside())
        assert isinstance(current, BlobInfo)
        return (current, False), await _outcome(beside())
    placed = written.result()
    pointer = inline.Pointer(placed.segment, placed.offset)
    relaxed = job_group.rebuildable() if note is not None and tier.shared else nullcontext()
    ok = False
    try:
        with relaxed:  # the tasks gather makes for the row and beside() are relaxed
            synced, stored, other = await asyncio.gather(
                work, tier.place_if_absent(placed.info, pointer, record), beside(),
                return_exceptions=True,
            )  # fmt: skip
        if isinstance(synced, BaseException):
            if not isinstance(stored, BaseException) and stored[1]:
                with contextlib.suppress(Exception):  # else the opening's check drops it
                    await tier.delete_row(key)
            return synced, other
        ok = True
        return stored, other
    finally:
        # both commits are over (or the caller gave up: then the segment is never sealed by
        # this writer); the sync releases its own share when it is over
        await _release(writer, placed, ok=ok)


async def _release(writer: SegmentWriter, placed: Placed, *, ok: bool) -> None:
    done = writer.release(placed, ok=ok)
    if done is not None:
        await in_thread(functools.partial(writer.finish, done))


async def nothing() -> None:
    """No write beside (:func:`append_beside` for a put alone)."""


async def _outcome(awaitable: Awaitable[_T]) -> _T | BaseException:
    try:
        return await awaitable
    except Exception as exc:
        return exc
