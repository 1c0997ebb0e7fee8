"""The record port (storage/records.py) on MongoDB: the ``records`` collection of the store's
database, one document per record.

``_id`` is ``kind`` and ``key`` joined by U+001F (a unit separator, never in a kind), so every
call addresses one document and is atomic without a transaction: ``take`` is
``findOneAndDelete`` guarded by the expiry, ``put(if_absent=True)`` an insert (the unique
``_id`` refuses a second one) that, on a duplicate key, replaces the existing document only if
it has expired. Of concurrent calls on one key, exactly one succeeds, across replicas too.

``value`` is kept as its JSON text (orjson), not as a sub-document: it round-trips exactly as
on SQLite (integers beyond 64 bits, field names with dots or a leading ``$``) and is never
queried; ``field`` and ``idx`` are the indexed field's name and value. ``expires`` is a BSON
date (``None``: never). There is no TTL index: :meth:`MongoRecords.purge_expired` removes
expired records, as on SQLite, so that it can say how many (a TTL monitor deleting them behind
its back would make that count meaningless), and every read filters by expiry anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fhir_server.core.clock import Clock
from fhir_server.storage.records import (
    Record,
    RecordPut,
    RecordStore,
    field_paths,
    indexed_value,
    project,
)

Document = dict[str, Any]

RECORDS = "records"
SEPARATOR = "\x1f"
#: How often a put retries when concurrent writers keep changing its document under it.
_ATTEMPTS = 5

INDEXES = [
    IndexModel(
        [("kind", ASCENDING), ("idx", ASCENDING), ("key", ASCENDING)],
        name="kind_idx_key",
    ),
    IndexModel([("expires", ASCENDING)], name="expires"),  # purge_expired
]


def record_id(kind: str, key: str) -> str:
    if SEPARATOR in kind:
        raise ValueError(f"a record kind cannot contain U+001F: {kind!r}")
    return f"{kind}{SEPARATOR}{key}"


def _utc(moment: datetime) -> datetime:
    """A naive datetime is UTC (as BSON dates are)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _live(now: datetime) -> Document:
    return {"$or": [{"expires": None}, {"expires": {"$gt": now}}]}


class MongoRecords(RecordStore):
    """Records beside the resources, on the store's client (usable after ``open``, which
    creates :data:`INDEXES`)."""

    def __init__(
        self, db: AsyncDatabase[Document], clock: Clock, write_lock: asyncio.Lock | None = None
    ) -> None:
        self._records: AsyncCollection[Document] = db[RECORDS]
        self._clock = clock
        # The store's per-process write lock: record writes never interleave with this
        # process's transactions. MongoDB would not need it; mongoeco loses a write made
        # while a transaction of the same client is open (seen: a grant saved during the
        # audit trail's commit was gone a moment later). Writes here are rare and small.
        self._lock = write_lock or asyncio.Lock()

    def _now(self) -> datetime:
        return _utc(self._clock())

    async def put(
        self,
        kind: str,
        key: str,
        value: Record,
        *,
        expires: datetime | None = None,
        index: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        async with self._lock:
            return await self._put(kind, key, value, expires, index, if_absent)

    async def put_many(self, items: Sequence[RecordPut]) -> list[bool]:
        """In order, under the write lock, each item an atomic write of its own (journaled
        with the client's write concern): MongoDB has no cheaper multi-document durable write
        that keeps each item's ``if_absent`` answer, and a crash between two items leaves the
        earlier ones stored, never half an item."""
        for item in items:
            indexed_value(item.value, item.index)  # a bad index: nothing written
        async with self._lock:
            return [
                await self._put(
                    item.kind, item.key, item.value, item.expires, item.index, item.if_absent
                )
                for item in items
            ]

    async def _put(
        self,
        kind: str,
        key: str,
        value: Record,
        expires: datetime | None,
        index: str | None,
        if_absent: bool,
    ) -> bool:
        _id = record_id(kind, key)
        doc: Document = {
            "kind": kind,
            "key": key,
            "value": orjson.dumps(value).decode(),
            "field": index,
            "idx": indexed_value(value, index),
            "expires": None if expires is None else _utc(expires),
        }
        for _ in range(_ATTEMPTS):
            if not if_absent:
                try:  # an upsert racing another on the same _id may fail on the duplicate
                    await self._records.replace_one({"_id": _id}, doc, upsert=True)
                    return True
                except DuplicateKeyError:
                    continue
            try:
                await self._records.insert_one({"_id": _id, **doc})
                return True
            except DuplicateKeyError:
                pass
            expired = {"_id": _id, "expires": {"$ne": None, "$lte": self._now()}}
            replaced = await self._records.find_one_and_replace(
                expired, doc, projection={"_id": 1}, return_document=ReturnDocument.BEFORE
            )
            if replaced is not None:
                return True
            if await self._records.find_one({"_id": _id}, {"_id": 1}) is not None:
                return False  # a live record is there (or one just put by a concurrent call)
        raise RuntimeError(f"record {kind}/{key}: too many concurrent changes")

    async def get(self, kind: str, key: str) -> Record | None:
        doc = await self._records.find_one(
            {"_id": record_id(kind, key), **_live(self._now())}, {"value": 1}
        )
        return None if doc is None else _loads(doc)

    async def take(self, kind: str, key: str) -> Record | None:
        async with self._lock:
            doc = await self._records.find_one_and_delete(
                {"_id": record_id(kind, key), **_live(self._now())}, projection={"value": 1}
            )
        return None if doc is None else _loads(doc)

    async def delete(self, kind: str, key: str) -> bool:
        async with self._lock:
            doc = await self._records.find_one_and_delete(
                {"_id": record_id(kind, key)}, projection={"expires": 1}
            )
        if doc is None:
            return False
        expires = doc.get("expires")
        return expires is None or _utc(expires) > self._now()

    async def find(
        self,
        kind: str,
        value: str | None = None,
        *,
        limit: int = 1000,
        after: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[Record]:
        if fields is not None:
            field_paths(fields)  # a bad path is refused before the query
        if limit <= 0:  # MongoDB reads limit(0) as "no limit"
            return []
        where: Document = {"kind": kind, **_live(self._now())}
        if value is not None:
            where["idx"] = value
        if after is not None:
            where["key"] = {"$gt": after}
        cursor = self._records.find(where, {"value": 1}).sort("key", ASCENDING).limit(limit)
        found = [_loads(doc) for doc in await cursor.to_list()]
        # the values are JSON text (records of any shape): projected once parsed
        return found if fields is None else [project(record, fields) for record in found]

    async def purge_expired(self, now: datetime) -> int:
        async with self._lock:
            where = {"expires": {"$ne": None, "$lte": _utc(now)}}
            result = await self._records.delete_many(where)
        return result.deleted_count


def _loads(doc: Document) -> Record:
    loaded = orjson.loads(doc["value"])
    assert isinstance(loaded, dict)
    return loaded
