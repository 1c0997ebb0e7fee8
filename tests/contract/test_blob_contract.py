"""The blob port's contract (fhir_server/storage/blobs.py), run unchanged on every adapter:
the filesystem store and GridFS (on mongoeco, or the MongoDB of FHIR_SERVER_TEST_MONGODB_URL)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.core.errors import BlobNotFound, InvalidRequest, ResourceNotFound
from fhir_server.storage.blobs import BlobInfo, BlobStore
from tests.contract.blob_backends import (  # noqa: F401 (fixtures)
    BlobBackend,
    blob_backend_fixture,
    blob_store_fixture,
)

DICOM = "application/dicom"
MiB = 1024 * 1024


def content(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


async def read(store: BlobStore, key: str) -> bytes:
    async with await store.stream(key) as stream:
        return await stream.read_all()


def check_info(info: BlobInfo, key: str, data: bytes, content_type: str = DICOM) -> None:
    assert (info.key, info.size, info.content_type) == (key, len(data), content_type)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert info.created.tzinfo is not None and info.created.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - info.created) < timedelta(minutes=1)


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    ("size", "chunk"),
    [(0, None), (0, 1000), (11, None), (11, 3), (5 * MiB + 7, 100_003), (3 * MiB, MiB)],
    ids=["empty", "empty-streamed", "small", "small-streamed", "5MiB-uneven", "3MiB-aligned"],
)
async def test_put_then_info_and_stream_give_back_the_content(
    blob_store: BlobStore, size: int, chunk: int | None
) -> None:
    data = content(size, seed=size)
    put = await blob_store.put(
        "1.2.840.113619.2.1", data if chunk is None else chunked(data, chunk), content_type=DICOM
    )
    check_info(put, "1.2.840.113619.2.1", data)
    assert await blob_store.info("1.2.840.113619.2.1") == put
    async with await blob_store.stream("1.2.840.113619.2.1") as stream:
        assert stream.info == put
        parts = [part async for part in stream]
    assert b"".join(parts) == data
    assert all(parts), "no empty chunks"
    if size >= 2 * MiB:
        assert len(parts) > 1, "a large blob is streamed in several chunks"


async def test_content_type_and_key_are_kept_as_given(blob_store: BlobStore) -> None:
    put = await blob_store.put("Att-01_x.pdf", b"%PDF", content_type="application/pdf; v=1")
    assert put.content_type == "application/pdf; v=1"
    assert await blob_store.info("Att-01_x.pdf") == put


async def test_keys_differing_in_case_are_different_blobs(blob_store: BlobStore) -> None:
    await blob_store.put("abc", b"lower", content_type=DICOM)
    await blob_store.put("ABC", b"upper", content_type=DICOM)
    assert (await read(blob_store, "abc"), await read(blob_store, "ABC")) == (b"lower", b"upper")


# ---------------------------------------------------------------------------- missing keys


async def test_a_missing_key_has_no_info_no_stream_and_no_delete(blob_store: BlobStore) -> None:
    assert await blob_store.info("missing") is None
    with pytest.raises(BlobNotFound) as raised:
        await blob_store.stream("missing")
    assert isinstance(raised.value, ResourceNotFound)
    assert raised.value.key == "missing"
    assert await blob_store.delete("missing") is False


async def test_a_stream_closed_unread_releases_what_it_holds(blob_store: BlobStore) -> None:
    await blob_store.put("k", content(100), content_type=DICOM)
    stream = await blob_store.stream("k")
    await stream.aclose()
    await stream.aclose()
    assert [part async for part in stream] == []


# ---------------------------------------------------------------------------- replace, delete


async def test_a_put_replaces_the_previous_version(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    await blob_store.put("k", content(300_000, 1), content_type=DICOM)
    new = content(200_000, 2)
    put = await blob_store.put("k", chunked(new, 7000), content_type="application/octet-stream")
    check_info(put, "k", new, "application/octet-stream")
    assert await blob_store.info("k") == put
    assert await read(blob_store, "k") == new
    assert await blob_backend.leftovers() == []


async def test_concurrent_puts_of_one_key_leave_one_whole_version(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    versions = [content(150_000 + i, seed=i) for i in range(6)]
    await asyncio.gather(
        *(blob_store.put("k", chunked(v, 20_000), content_type=DICOM) for v in versions)
    )
    info = await blob_store.info("k")
    assert info is not None
    assert await read(blob_store, "k") in versions
    assert info.sha256 == hashlib.sha256(await read(blob_store, "k")).hexdigest()
    assert await blob_backend.leftovers() == []


async def test_delete_removes_the_blob(blob_backend: BlobBackend, blob_store: BlobStore) -> None:
    await blob_store.put("k", content(400_000), content_type=DICOM)
    await blob_store.put("other", b"stays", content_type=DICOM)
    assert await blob_store.delete("k") is True
    assert await blob_store.info("k") is None
    with pytest.raises(BlobNotFound):
        await blob_store.stream("k")
    assert await blob_store.delete("k") is False
    assert await read(blob_store, "other") == b"stays"
    assert await blob_backend.leftovers() == []
    again = await blob_store.put("k", b"new", content_type=DICOM)
    assert await blob_store.info("k") == again


#: Sizes on either side of the tiered filesystem store's inline limit (1,000 bytes); the chunk
#: size of the contract's filesystem stores is 64 KiB.
SMALL, LARGE = 700, 150_000


@pytest.mark.parametrize(
    "steps",
    [
        ["large", "small", "large"],
        ["small", "large", "small"],
        ["small", "streamed-small", "small"],
        ["large", "small", "delete", "small"],
        ["small", "large", "delete", "large"],
    ],
    ids="-then-".join,
)
async def test_a_key_replaced_by_versions_of_every_size_has_one_current_version(
    blob_backend: BlobBackend, blob_store: BlobStore, steps: list[str]
) -> None:
    """Replaces and deletes moving a key between sizes (on the tiered filesystem store: between
    the inline tier and the version files), with a restart after them."""
    current: tuple[BlobInfo, bytes] | None = None
    for step, what in enumerate(steps):
        if what == "delete":
            assert await blob_store.delete("k") is True
            current = None
        else:
            data = content(LARGE if what == "large" else SMALL, seed=step)
            whole = data if what != "streamed-small" else chunked(data, 300)
            current = (await blob_store.put("k", whole, content_type=DICOM), data)
        if current is None:
            assert await blob_store.info("k") is None
        else:
            assert await blob_store.info("k") == current[0]
            assert await read(blob_store, "k") == current[1]
        assert await blob_backend.leftovers() == [], what
    again = await blob_backend.new_store()
    assert current is not None
    assert await again.info("k") == current[0] and await read(again, "k") == current[1]
    assert await again.delete("k") is True and await again.info("k") is None
    assert await blob_backend.leftovers() == []


async def test_small_blobs_stream_in_chunks_and_survive_a_restart(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    blobs = {f"1.2.{i}": content(size, seed=i) for i, size in enumerate([0, 1, 999, 1000, 1001])}
    infos = {
        key: await blob_store.put(key, data, content_type=DICOM) for key, data in blobs.items()
    }
    for key, data in blobs.items():
        async with await blob_store.stream(key) as stream:
            assert stream.info == infos[key]
            parts = [part async for part in stream]
        assert b"".join(parts) == data and all(parts)
    await blob_store.close()
    again = await blob_backend.new_store()
    for key, data in blobs.items():
        assert await again.info(key) == infos[key] and await read(again, key) == data


@pytest.mark.parametrize("size", [2 * MiB, SMALL], ids=["2MiB", "small"])
@pytest.mark.parametrize("change", ["replace", "delete"])
@pytest.mark.parametrize("read_first", [True, False], ids=["after-a-chunk", "before-reading"])
async def test_a_stream_opened_before_a_change_never_mixes_versions(
    blob_store: BlobStore, change: str, read_first: bool, size: int
) -> None:
    old, new = content(size, 1), content(size, 2)
    await blob_store.put("k", old, content_type=DICOM)
    stream = await blob_store.stream("k")
    first = await anext(stream) if read_first else b""
    if change == "replace":
        await blob_store.put("k", new, content_type=DICOM)
    else:
        await blob_store.delete("k")
    try:
        rest = [part async for part in stream]
    except BlobNotFound:  # allowed (GridFS): the old version's chunks were deleted
        pass
    else:
        assert first + b"".join(rest) == old
    finally:
        await stream.aclose()
    if change == "replace":
        assert await read(blob_store, "k") == new
    else:
        assert await blob_store.info("k") is None


# ---------------------------------------------------------------------------- bad input

BAD_KEYS = [
    "",
    ".",
    "..",
    "../etc",
    "a/b",
    "a\\b",
    ".hidden",
    "-rf",
    "a b",
    "é",
    "a\x00",
    "k" * 256,
]
OPERATIONS: dict[str, Callable[[BlobStore, str], Awaitable[object]]] = {
    "put": lambda store, key: store.put(key, b"x", content_type=DICOM),
    "info": lambda store, key: store.info(key),
    "stream": lambda store, key: store.stream(key),
    "delete": lambda store, key: store.delete(key),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_bad_keys_are_refused_with_a_clear_message(
    blob_backend: BlobBackend, blob_store: BlobStore, operation: str
) -> None:
    for key in BAD_KEYS:
        with pytest.raises(InvalidRequest) as raised:
            await OPERATIONS[operation](blob_store, key)
        message = raised.value.diagnostics
        assert message.startswith("invalid blob key: a key is 1 to 255 characters"), message
        assert key not in message or key in {"", ".", "-"}
    assert await blob_backend.leftovers() == []


async def test_the_longest_key_is_accepted(blob_store: BlobStore) -> None:
    key = "1." + "9" * 253
    await blob_store.put(key, b"x", content_type=DICOM)
    assert await read(blob_store, key) == b"x"


@pytest.mark.parametrize("content_type", ["", "dicom", "application/", "text/plain\n", "a/" * 200])
async def test_bad_content_types_are_refused(blob_store: BlobStore, content_type: str) -> None:
    with pytest.raises(InvalidRequest, match="invalid blob content type"):
        await blob_store.put("k", b"x", content_type=content_type)
    assert await blob_store.info("k") is None


# ---------------------------------------------------------------------------- failed puts


class Broken(Exception):
    pass


async def failing(data: bytes, after: int) -> AsyncIterator[bytes]:
    async for chunk in chunked(data[:after], 50_000):
        yield chunk
    raise Broken("the sender went away")


@pytest.mark.parametrize("previous", [None, b"previous version"], ids=["new-key", "existing-key"])
async def test_a_put_whose_chunks_fail_midway_leaves_nothing(
    blob_backend: BlobBackend, blob_store: BlobStore, previous: bytes | None
) -> None:
    if previous is not None:
        before = await blob_store.put("k", previous, content_type="text/plain")
    with pytest.raises(Broken, match="the sender went away"):
        await blob_store.put("k", failing(content(MiB), 700_000), content_type=DICOM)
    if previous is None:
        assert await blob_store.info("k") is None
    else:
        assert await blob_store.info("k") == before
        assert await read(blob_store, "k") == previous
    assert await blob_backend.leftovers() == []


async def test_a_chunk_that_is_not_bytes_fails_the_put(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    async def mixed() -> AsyncIterator[object]:
        yield b"bytes first"
        yield "then text"

    with pytest.raises(TypeError, match="blob chunks must be bytes, not str"):
        await blob_store.put("k", mixed(), content_type=DICOM)  # type: ignore[arg-type]
    assert await blob_store.info("k") is None
    assert await blob_backend.leftovers() == []


@pytest.mark.parametrize("previous", [None, b"previous version"], ids=["new-key", "existing-key"])
async def test_a_cancelled_put_leaves_nothing(
    blob_backend: BlobBackend, blob_store: BlobStore, previous: bytes | None
) -> None:
    if previous is not None:
        await blob_store.put("k", previous, content_type=DICOM)
    sent = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        async for chunk in chunked(content(600_000), 100_000):
            yield chunk
        sent.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(blob_store.put("k", stalls(), content_type=DICOM))
    await sent.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    if previous is None:
        assert await blob_store.info("k") is None
    else:
        assert await read(blob_store, "k") == previous
    assert await blob_backend.leftovers() == []


# ---------------------------------------------------------------------------- concurrency, restart


async def test_concurrent_puts_of_different_keys(blob_store: BlobStore) -> None:
    blobs = {f"1.2.3.{i}": content(50_000 * i, seed=i) for i in range(12)}
    infos = await asyncio.gather(
        *(blob_store.put(k, chunked(v, 30_000), content_type=DICOM) for k, v in blobs.items())
    )
    for info, (key, data) in zip(infos, blobs.items(), strict=True):
        check_info(info, key, data)
    reads = await asyncio.gather(*(read(blob_store, key) for key in blobs))
    assert reads == list(blobs.values())


async def test_blobs_survive_close_and_reopen(blob_backend: BlobBackend) -> None:
    first = await blob_backend.new_store()
    data = content(MiB + 3)
    put = await first.put("1.2.3", chunked(data, 200_000), content_type=DICOM)
    await first.put("gone", b"x", content_type=DICOM)
    await first.delete("gone")
    await first.close()
    second = await blob_backend.new_store()
    assert await second.info("1.2.3") == put
    assert await read(second, "1.2.3") == data
    assert await second.info("gone") is None


async def test_a_closed_store_refuses_to_work(blob_backend: BlobBackend) -> None:
    store = await blob_backend.new_store()
    await store.close()
    with pytest.raises(RuntimeError, match="the blob store is not open"):
        await store.info("k")
