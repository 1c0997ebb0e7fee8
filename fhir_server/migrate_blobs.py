"""``fhir-server migrate``'s copy of the blob store: the bytes of the stored DICOM instances.

The blob port lists no keys; the instance records name theirs (the ``blob`` field of each
``dicom-instance`` record, copied with the lasting records). Each is read from the source's blob
store (``blobs/`` of the data dir, opened with its inline tier left as it is, so a store of the
second layout is not upgraded: the source is only read) and put into the target's (GridFS in a
MongoDB target, ``blobs/`` of a SQLite target), unless the target already holds the same bytes
(the same SHA-256): a run again copies nothing twice, and one that was interrupted continues.
A copy whose SHA-256 differs from the source's fails the verification; a record whose bytes the
source does not hold (an instance a crash left half-stored, never acknowledged) is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from fhir_server.bootstrap import make_blob_store
from fhir_server.imaging.kinds import INSTANCE, blob_key
from fhir_server.settings import is_mongodb_url
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from fhir_server.storage.port import ResourceStore
from fhir_server.storage.sqlite.export import RecordRow


@dataclass
class BlobCopy:
    """What the copy did: blobs copied, already in the target, and the keys it could not copy
    (``missing``: not in the source; ``differing``: the target's copy has other bytes)."""

    copied: int = 0
    present: int = 0
    missing: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)


async def unindexed(source_dir: Path) -> int:
    """How many DICOM instances of the data dir ``source_dir`` a power failure left without
    their record, not indexed again yet (the server does it when it starts: BlobStore.restored):
    their records are not there to copy, so a migration now would leave them out."""
    base = source_dir / "blobs"
    if not base.is_dir():
        return 0
    source = FilesystemBlobStore(base, inline_max=0)
    await source.open()
    try:
        return len(await source.restored())
    finally:
        await source.close()


def instance_blobs(rows: Iterable[RecordRow]) -> list[str]:
    """The blob keys the instance records among ``rows`` name, sorted, once each."""
    keys = {
        blob_key({"sop_instance": key, **value}) for kind, key, value, _ in rows if kind == INSTANCE
    }  # fmt: skip
    return sorted(keys)


async def copy_blobs(
    source_dir: Path, target: str, store: ResourceStore, keys: list[str]
) -> BlobCopy:
    """Copy the blobs ``keys`` of the data dir ``source_dir`` into the target (``store`` opened
    on it); see the module docstring."""
    result = BlobCopy()
    base = source_dir / "blobs"
    if not keys:
        return result
    if not base.is_dir():  # opening would create it: the source is only read
        result.missing.extend(keys)
        return result
    source = FilesystemBlobStore(base, inline_max=0)
    mongo = is_mongodb_url(target)
    copies = make_blob_store(target if mongo else None, Path(target), store)
    await source.open()
    try:
        await copies.open()
        try:
            for key in keys:
                await _copy(source, copies, key, result)
        finally:
            await copies.close()
    finally:
        await source.close()
    return result


async def _copy(source: BlobStore, copies: BlobStore, key: str, result: BlobCopy) -> None:
    found = await source.info(key)
    if found is None:
        result.missing.append(key)
        return
    there = await copies.info(key)
    if there is not None and there.sha256 == found.sha256:
        result.present += 1
        return
    async with await source.stream(key) as stream:
        put = await copies.put(key, stream, content_type=found.content_type)
    if put.sha256 == found.sha256:
        result.copied += 1
    else:
        result.differing.append(key)
