"""The blob port on MongoDB GridFS (the blob store that goes with the MongoDB storage backend).

Each version of a blob is one GridFS file of the bucket (``<bucket>.files`` and
``<bucket>.chunks``): ``filename`` is the key, ``length`` the size, ``uploadDate`` when it was
committed, and ``metadata`` holds ``sha256`` (hex) and ``contentType``. The current version of a
key is its newest file, by ``uploadDate`` then ``_id`` (a total order every reader and writer
applies alike).

How the guarantees of :mod:`fhir_server.storage.blobs` hold:

- A put uploads under a fresh file id, hashing the chunks on the way. GridFS inserts the files
  document only after every chunk, so a version is invisible until complete. Then the put sets
  ``metadata`` and commits by that insert; a put that fails or is cancelled before it aborts the
  upload (its chunks are deleted; the abort is shielded from a second cancellation). Chunks left
  by a crash have no files document: never read, they can be swept by ``files_id``.
- After committing, a put deletes every file of the key except the newest (shielded too), so two
  concurrent puts of one key converge on the newer one and never delete each other's winner. If
  that clean-up is interrupted, an older version lingers unread until the next put or delete.
- A reader picks the newest file, then reads its chunks by file id: one version only. Deleting a
  version removes its files document first, then its chunks; a reader already past the files
  document may then fail part way, which is reported as
  :class:`~fhir_server.core.errors.BlobNotFound`.
- ``uploadDate`` is stored to the millisecond, so :attr:`BlobInfo.created` is truncated to the
  millisecond here, also in what ``put`` returns. It is the writer's clock: a writer whose clock
  runs behind may lose a concurrent replace to an earlier put.
- Durability is the write concern of the database the store is given (share the storage's client
  and database; GridFS writes cannot be part of its transactions). While uploading, GridFS buffers
  up to 32 MB of chunks per put in memory before inserting them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from bson import ObjectId
from gridfs import DEFAULT_CHUNK_SIZE, AsyncGridFSBucket, AsyncGridIn, AsyncGridOut, NoFile
from gridfs.errors import CorruptGridFile
from pymongo.asynchronous.database import AsyncDatabase

from fhir_server.core.errors import BlobNotFound
from fhir_server.storage.blobs import (
    BlobInfo,
    BlobStore,
    BlobStream,
    Digest,
    check_content_type,
    check_key,
    chunks_of,
)

DEFAULT_BUCKET: Final = "blobs"
#: Newest first: the order that decides which version of a key is current.
_NEWEST_FIRST: Final = [("uploadDate", -1), ("_id", -1)]
#: Oldest first: which of racing put_if_absent calls keeps its version.
_OLDEST_FIRST: Final = [("uploadDate", 1), ("_id", 1)]
_CLAIM_STRIPES: Final = 64


def _utc_millis(moment: datetime) -> datetime:
    """``moment`` in UTC, to the millisecond (what BSON keeps of a datetime)."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond - moment.microsecond % 1000)


def _info(key: str, grid_out: AsyncGridOut) -> BlobInfo:
    metadata: Mapping[str, Any] = grid_out.metadata or {}
    return BlobInfo(
        key=key,
        size=int(grid_out.length),
        sha256=str(metadata["sha256"]),
        content_type=str(metadata["contentType"]),
        created=_utc_millis(grid_out.upload_date),
    )


class GridFSBlobStore(BlobStore):
    """Blobs in the GridFS bucket ``bucket_name`` of ``database``, with the guarantees of
    :mod:`fhir_server.storage.blobs` (how they hold: this module's docstring). The store does not
    own the database's client: closing the store leaves the client open."""

    def __init__(
        self,
        database: AsyncDatabase[Any],
        bucket_name: str = DEFAULT_BUCKET,
        *,
        chunk_size_bytes: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self._database = database
        self._bucket_name = bucket_name
        self._chunk_size = chunk_size_bytes
        self._bucket: AsyncGridFSBucket | None = None
        #: put_if_absent calls of one key in this process run one at a time.
        self._claims = tuple(asyncio.Lock() for _ in range(_CLAIM_STRIPES))

    async def open(self) -> None:
        """Create the bucket's indexes (those the GridFS specification names) if missing."""
        name = self._bucket_name
        await self._database[f"{name}.files"].create_index([("filename", 1), ("uploadDate", 1)])
        await self._database[f"{name}.chunks"].create_index(
            [("files_id", 1), ("n", 1)], unique=True
        )
        self._bucket = AsyncGridFSBucket(
            self._database, bucket_name=name, chunk_size_bytes=self._chunk_size
        )

    async def close(self) -> None:
        self._bucket = None

    def _opened(self, key: str) -> AsyncGridFSBucket:
        check_key(key)
        if self._bucket is None:
            raise RuntimeError("the blob store is not open")
        return self._bucket

    async def put(
        self, key: str, chunks: AsyncIterable[bytes] | bytes, *, content_type: str
    ) -> BlobInfo:
        bucket = self._opened(key)
        check_content_type(content_type)
        info, _ = await self._commit(bucket, key, chunks, content_type)
        await asyncio.shield(self._drop_older(bucket, key))
        return info

    async def put_if_absent(
        self, key: str, data: bytes, *, content_type: str
    ) -> tuple[BlobInfo, bool]:
        """Uploaded unless the key has a version, one call of a key at a time in this process;
        then, of the key's versions, the oldest is kept: one uploaded before this one by another
        process racing it means this one is deleted again at once (the writers' clocks order
        them)."""
        bucket = self._opened(key)
        check_content_type(content_type)
        async with self._claims[hash(key) % _CLAIM_STRIPES]:
            return await self._put_if_absent(bucket, key, data, content_type)

    async def _put_if_absent(
        self, bucket: AsyncGridFSBucket, key: str, data: bytes, content_type: str
    ) -> tuple[BlobInfo, bool]:
        current = await self._newest(bucket, key)
        if current is not None:
            return _info(key, current), False
        info, file_id = await self._commit(bucket, key, data, content_type)
        oldest: list[AsyncGridOut] = await bucket.find(
            {"filename": key}, sort=_OLDEST_FIRST, limit=1
        ).to_list()
        if oldest and oldest[0]._id != file_id:
            with contextlib.suppress(NoFile):
                await asyncio.shield(bucket.delete(file_id))
            return _info(key, oldest[0]), False
        return info, True

    async def _commit(
        self,
        bucket: AsyncGridFSBucket,
        key: str,
        chunks: AsyncIterable[bytes] | bytes,
        content_type: str,
    ) -> tuple[BlobInfo, ObjectId]:
        """Upload a new version of ``key`` (committed by the files document), its file id."""
        file_id = ObjectId()
        upload = bucket.open_upload_stream_with_id(file_id, key)
        try:
            digest = await self._upload(upload, chunks)
            await upload.set(
                "metadata", {"sha256": digest.hexdigest(), "contentType": content_type}
            )
            await upload.close()
        except BaseException:
            await asyncio.shield(upload.abort())
            raise
        created = _utc_millis(upload.upload_date)
        return BlobInfo(key, digest.size, digest.hexdigest(), content_type, created), file_id

    @staticmethod
    async def _upload(upload: AsyncGridIn, content: AsyncIterable[bytes] | bytes) -> Digest:
        digest = Digest()
        async for chunk in chunks_of(content):
            await digest.update(chunk)
            await upload.write(chunk)
        return digest

    @staticmethod
    async def _drop_older(bucket: AsyncGridFSBucket, key: str) -> None:
        """Delete every file of ``key`` but the newest."""
        older = bucket.find({"filename": key}, sort=_NEWEST_FIRST, skip=1)
        stale = [grid_out._id async for grid_out in older]
        for file_id in stale:
            with contextlib.suppress(NoFile):  # a concurrent put or delete removed it first
                await bucket.delete(file_id)

    async def _newest(self, bucket: AsyncGridFSBucket, key: str) -> AsyncGridOut | None:
        newest: list[AsyncGridOut] = await bucket.find(
            {"filename": key}, sort=_NEWEST_FIRST, limit=1
        ).to_list()
        return newest[0] if newest else None

    async def info(self, key: str) -> BlobInfo | None:
        grid_out = await self._newest(self._opened(key), key)
        return None if grid_out is None else _info(key, grid_out)

    async def stream(self, key: str) -> BlobStream:
        grid_out = await self._newest(self._opened(key), key)
        if grid_out is None:
            raise BlobNotFound(key)
        return BlobStream(_info(key, grid_out), self._chunks(key, grid_out), grid_out.close)

    async def _chunks(self, key: str, grid_out: AsyncGridOut) -> AsyncIterator[bytes]:
        files = self._database[f"{self._bucket_name}.files"]
        try:
            while chunk := await grid_out.readchunk():
                yield chunk
        except CorruptGridFile:
            if await files.find_one({"_id": grid_out._id}, {"_id": 1}) is not None:
                raise  # damaged, not deleted
            raise BlobNotFound(key) from None

    async def delete(self, key: str) -> bool:
        bucket = self._opened(key)
        found = False
        for file_id in [grid_out._id async for grid_out in bucket.find({"filename": key})]:
            try:
                await bucket.delete(file_id)
            except NoFile:
                continue
            found = True
        return found
