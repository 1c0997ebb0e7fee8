"""The outbox on MongoDB: a per-hook cursor over ``outbox`` plus a retry collection.

``outbox`` ``_id`` values follow commit order (writes.py), so a hook's cursor (the last seq it
handled or gave up on for now) never skips an event committed later with a smaller seq. Every
server replica may read the same hook's events: advancing a cursor is a ``$max``, so two
replicas handling the same event cannot move it backwards, and handling is idempotent per
event (the relay's POST_COMMIT hooks must tolerate an event delivered twice, as they do after a
crash between delivery and ``mark_handled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from fhir_server.storage.mongo import documents as d
from fhir_server.storage.port import OutboxEvent

Document = dict[str, Any]


class Outbox:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._hooks_with_cursor: set[str] = set()

    async def _ensure_cursor(self, hook: str) -> None:
        """A hook seen for the first time starts after the events already in the outbox."""
        if hook in self._hooks_with_cursor:
            return
        last = await self._db[d.OUTBOX].find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
        await self._db[d.OUTBOX_CURSOR].update_one(
            {"_id": hook},
            {"$setOnInsert": {"last_seq": 0 if last is None else int(last["_id"])}},
            upsert=True,
        )
        self._hooks_with_cursor.add(hook)

    async def pending(self, hook: str, limit: int, now: datetime) -> list[OutboxEvent]:
        await self._ensure_cursor(hook)
        retries = await (
            self._db[d.OUTBOX_RETRY]
            .find({"hook": hook, "retry_at": {"$lte": d.to_micros(now)}})
            .sort("seq", 1)
            .limit(limit)
            .to_list()
        )
        events: list[OutboxEvent] = []
        if retries:
            attempts = {int(r["seq"]): int(r["attempts"]) for r in retries}
            found = self._db[d.OUTBOX].find({"_id": {"$in": sorted(attempts)}}).sort("_id", 1)
            events += [d.event_from_doc(doc, attempts[int(doc["_id"])]) async for doc in found]
        cursor = await self._db[d.OUTBOX_CURSOR].find_one({"_id": hook})
        last_seq = 0 if cursor is None else int(cursor["last_seq"])
        fresh = self._db[d.OUTBOX].find({"_id": {"$gt": last_seq}}).sort("_id", 1).limit(limit)
        events += [d.event_from_doc(doc) async for doc in fresh]
        return events

    async def _advance(self, hook: str, seq: int) -> None:
        await self._db[d.OUTBOX_CURSOR].update_one(
            {"_id": hook}, {"$max": {"last_seq": seq}}, upsert=True
        )

    async def handled(self, hook: str, seqs: Sequence[int]) -> None:
        ids = [f"{hook}:{seq}" for seq in seqs]
        await self._db[d.OUTBOX_RETRY].delete_many({"_id": {"$in": ids}})
        await self._advance(hook, max(seqs))

    async def failed(self, hook: str, seq: int, retry_at: datetime, error: str) -> None:
        await self._db[d.OUTBOX_RETRY].update_one(
            {"_id": f"{hook}:{seq}"},
            {
                "$set": {
                    "hook": hook,
                    "seq": seq,
                    "retry_at": d.to_micros(retry_at),
                    "last_error": error[:500],
                },
                "$inc": {"attempts": 1},
            },
            upsert=True,
        )
        await self._advance(hook, seq)
