"""The blob port's put_if_absent (storage/blobs.py), run unchanged on every adapter: whole bytes
stored only under a key without a current version, of racing calls exactly one stores, and the
caller learns the key's current version either way."""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.storage.blobs import BlobStore
from tests.contract.blob_backends import (  # noqa: F401 (fixtures)
    BlobBackend,
    blob_backend_fixture,
    blob_store_fixture,
)
from tests.contract.test_blob_contract import DICOM, check_info, content, read

#: A small blob (an inline row where the adapter has rows) and a 512x512 CT's size (a file).
SIZES = [39_000, 525_000]
IDS = ["39KB", "525KB"]


@pytest.mark.parametrize("size", SIZES, ids=IDS)
async def test_a_new_key_is_stored(
    blob_backend: BlobBackend, blob_store: BlobStore, size: int
) -> None:
    data = content(size, seed=size)
    info, stored = await blob_store.put_if_absent("1.2.3", data, content_type=DICOM)
    assert stored
    check_info(info, "1.2.3", data)
    assert await blob_store.info("1.2.3") == info
    assert await read(blob_store, "1.2.3") == data
    assert await blob_backend.leftovers() == []


@pytest.mark.parametrize("first", SIZES, ids=IDS)
@pytest.mark.parametrize("second", SIZES, ids=IDS)
async def test_a_key_with_a_version_keeps_it(
    blob_backend: BlobBackend, blob_store: BlobStore, first: int, second: int
) -> None:
    kept = await blob_store.put("1.2.3", content(first, seed=1), content_type=DICOM)
    info, stored = await blob_store.put_if_absent(
        "1.2.3", content(second, seed=2), content_type="application/octet-stream"
    )
    assert not stored and info == kept
    assert await read(blob_store, "1.2.3") == content(first, seed=1)
    assert await blob_store.info("1.2.3") == kept
    assert await blob_backend.leftovers() == []


async def test_a_deleted_key_is_absent_again(blob_store: BlobStore) -> None:
    await blob_store.put("k", b"first", content_type=DICOM)
    assert await blob_store.delete("k")
    info, stored = await blob_store.put_if_absent("k", b"second", content_type=DICOM)
    assert stored and info.size == len(b"second")
    assert await read(blob_store, "k") == b"second"


async def test_of_racing_calls_exactly_one_stores(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    candidates = [content(SIZES[n % 2], seed=n) for n in range(8)]
    results = await asyncio.gather(
        *(blob_store.put_if_absent("k", data, content_type=DICOM) for data in candidates)
    )
    winners = [n for n, (_, stored) in enumerate(results) if stored]
    assert len(winners) == 1
    [winner] = winners
    assert await read(blob_store, "k") == candidates[winner]
    current = await blob_store.info("k")
    assert current is not None and current.sha256 == results[winner][0].sha256
    assert all(info.sha256 == current.sha256 for info, _ in results)
    assert await blob_backend.leftovers() == []


async def test_bad_keys_and_content_types_are_refused(
    blob_backend: BlobBackend, blob_store: BlobStore
) -> None:
    with pytest.raises(InvalidRequest, match="invalid blob key"):
        await blob_store.put_if_absent("../etc", b"x", content_type=DICOM)
    with pytest.raises(InvalidRequest, match="invalid blob content type"):
        await blob_store.put_if_absent("k", b"x", content_type="dicom")
    assert await blob_store.info("k") is None
    assert await blob_backend.leftovers() == []
