"""The blob port: named byte streams too large for a resource row (DICOM instances, attachments).

Every adapter (``filesystem_blobs.py``; ``mongo/blobs.py`` for GridFS) gives the same guarantees,
which ``tests/contract/test_blob_contract.py`` checks on each:

- **Keys** are 1 to 255 characters from ``A-Z a-z 0-9 . _ -`` and start with a letter or a digit
  (a SOP Instance UID, a hex digest, a UUID). Anything else is refused with
  :class:`~fhir_server.core.errors.InvalidRequest` by every method, before any I/O, so a key can
  never name a path outside the store.
- **put streams**: the content is written as it arrives, never held whole in memory; its size and
  SHA-256 are computed while writing and returned in :class:`BlobInfo`.
- **put is atomic**: a blob becomes visible (``info``, ``stream``) only complete, together with its
  info. A put that fails or is cancelled (its chunk iterator raises, the disk or the database
  fails) leaves nothing of itself, and the previous version of the key, if any, stays as it was.
  The commit point is the very end of the put; once it has passed, the put has taken effect even
  if the caller is cancelled at that moment.
- **put replaces**: a put of an existing key replaces the blob atomically; of two concurrent puts
  of one key, the one that commits last wins (GridFS: the newest upload date). Readers see the old
  or the new version, never a mixture (a content-addressed key names the same bytes anyway).
- **put_if_absent** stores whole bytes only if the key has no current version, atomically with
  respect to the store's other puts of the key: of several at once, exactly one stores (GridFS:
  the first committed; a racing loser is deleted again at once). It returns the key's current
  version afterwards and whether this call stored it: the imaging ingest keeps the first copy of
  an instance sent again under its SOP Instance UID, and asks once instead of looking first.
- **stream** returns a :class:`BlobStream` over one complete version, or raises
  :class:`~fhir_server.core.errors.BlobNotFound` before any byte (so a door can still answer 404).
  A version replaced or deleted while it is being read: the filesystem adapter keeps serving it to
  the end (an open file outlives its unlinking); the GridFS adapter may raise ``BlobNotFound``
  part way, as its chunks are deleted. Neither ever yields bytes of two versions.
- **delete** removes every version of the key and says whether there was one.
- **Durability**: ``put`` and ``delete`` return after the change is durable as the backend defines
  it (filesystem: a small blob by the commit of its row in the store's SQLite database, in WAL
  mode with ``synchronous = FULL``; a larger one's file synced before the rename that commits
  it, the directory fsync'd after; a larger write-once one's bytes in a segment synced beside
  the commit of the row that points at them; MongoDB: the write concern of the database), so
  it survives :meth:`BlobStore.close` and a new store over the same place.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from fhir_server.core.errors import InvalidRequest

_T = TypeVar("_T")
#: What a key may look like (see the module docstring).
KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_CONTENT_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(;[ -~]*)?")
_MAX_CONTENT_TYPE = 255
#: Chunks at least this large are hashed in a worker thread (hashlib releases the GIL there).
_THREADED_HASH = 256 * 1024


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows of one stored blob. ``created`` is when this version was committed
    (UTC; millisecond precision on GridFS); ``sha256`` is the lower-case hex digest."""

    key: str
    size: int
    sha256: str
    content_type: str
    created: datetime


def check_key(key: str) -> str:
    """``key`` if it is a valid blob key, else :class:`InvalidRequest` saying what a key may be
    (without echoing the key)."""
    if not isinstance(key, str) or KEY_PATTERN.fullmatch(key) is None:
        raise InvalidRequest(
            "invalid blob key: a key is 1 to 255 characters from A-Z, a-z, 0-9, '.', '_' and '-' "
            "and starts with a letter or a digit"
        )
    return key


def check_content_type(content_type: str) -> str:
    """``content_type`` if it looks like a media type (``type/subtype`` with optional
    parameters, printable ASCII, at most 255 characters), else :class:`InvalidRequest`."""
    if (
        not isinstance(content_type, str)
        or len(content_type) > _MAX_CONTENT_TYPE
        or _CONTENT_TYPE.fullmatch(content_type) is None
    ):
        raise InvalidRequest(
            "invalid blob content type: expected a media type such as 'application/dicom', "
            "printable ASCII, at most 255 characters"
        )
    return content_type


async def chunks_of(content: AsyncIterable[bytes] | bytes) -> AsyncIterator[bytes]:
    """The non-empty chunks of ``content``, which is either the whole content or an async
    iterable of chunks. A chunk that is not bytes raises :class:`TypeError`."""
    if isinstance(content, bytes | bytearray | memoryview):
        if content:
            yield bytes(content)
        return
    async for chunk in content:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise TypeError(f"blob chunks must be bytes, not {type(chunk).__name__}")
        if chunk:
            yield bytes(chunk)


class Digest:
    """Size and SHA-256 of the chunks given to :meth:`update`, large ones hashed off the loop."""

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self.size = 0

    async def update(self, chunk: bytes) -> None:
        if len(chunk) >= _THREADED_HASH:
            await asyncio.to_thread(self._sha256.update, chunk)
        else:
            self._sha256.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self._sha256.hexdigest()


class BlobStream:
    """The chunks of one stored version, with its :attr:`info`. An async iterator of ``bytes``
    and an async context manager; it releases what it holds (a file, a cursor) when exhausted,
    when iteration fails, or on :meth:`aclose`, which may be called any number of times."""

    def __init__(
        self,
        info: BlobInfo,
        chunks: AsyncIterator[bytes],
        release: Callable[[], Awaitable[None]],
    ) -> None:
        self.info = info
        self._chunks = chunks
        self._release = release
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            return await self._chunks.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def read_all(self) -> bytes:
        """The whole content (for small blobs and tests; large ones should be streamed)."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._release()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class BlobStore(ABC):
    """A place for blobs, with the guarantees of the module docstring. Call :meth:`open` before
    use and :meth:`close` after; the methods are safe to call concurrently from one event loop."""

    @abstractmethod
    async def open(self) -> None:
        """Prepare the backing store (create the directory, the indexes). Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release what the store holds; stored blobs stay."""

    @abstractmethod
    async def put(
        self, key: str, chunks: AsyncIterable[bytes] | bytes, *, content_type: str
    ) -> BlobInfo:
        """Store ``chunks`` under ``key`` (replacing any previous version, atomically) and return
        the info of the new version. Exceptions of the chunk iterator propagate unchanged."""

    @abstractmethod
    async def put_if_absent(
        self, key: str, data: bytes, *, content_type: str
    ) -> tuple[BlobInfo, bool]:
        """Store ``data`` under ``key`` unless it has a current version (see the module
        docstring); the info of the key's current version afterwards, and True if it is this
        call's."""

    async def put_if_absent_beside(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        beside: Callable[[], Awaitable[_T]],
        note: Mapping[str, Any] | None = None,
    ) -> tuple[tuple[BlobInfo, bool] | BaseException, _T | BaseException]:
        """:meth:`put_if_absent` and the caller's own write ``beside()``, run at once, each
        outcome returned (or the exception it raised; both are always awaited to the end). A
        store may start ``beside()`` only when its own commit is ready, so that two writes to
        one database commit in one transaction (the filesystem store's segments:
        ``filesystem_blobs.py``); by default both start at once. An invalid key or content
        type is refused (:class:`InvalidRequest`) before either starts.

        ``note``, a small JSON object, says that the caller can rebuild its write beside from
        the blob and the note: a store that keeps the note durably with the bytes may then
        commit its row and that write without waiting for their own sync. If a power failure
        loses them, the store gives the row back when next opened and lists the blob in
        :meth:`restored` (the caller rebuilds its write, then calls :meth:`forget_restored`).
        Stores whose every commit is durable ignore it."""
        check_key(key)
        check_content_type(content_type)
        stored, other = await asyncio.gather(
            self.put_if_absent(key, data, content_type=content_type),
            beside(),
            return_exceptions=True,
        )
        return stored, other

    async def restored(self) -> list[tuple[str, dict[str, Any]]]:
        """The blobs stored with a note whose row the store gave back after a power failure
        (see :meth:`put_if_absent_beside`), with their notes; none by default."""
        return []

    async def forget_restored(self, keys: Iterable[str]) -> None:
        """The caller has rebuilt its writes of these :meth:`restored` blobs."""
        return None

    @abstractmethod
    async def info(self, key: str) -> BlobInfo | None:
        """The info of the current version of ``key``, or None if there is none."""

    @abstractmethod
    async def stream(self, key: str) -> BlobStream:
        """The content of the current version of ``key``, streamed; raises
        :class:`~fhir_server.core.errors.BlobNotFound` if there is none."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if a blob was there."""
