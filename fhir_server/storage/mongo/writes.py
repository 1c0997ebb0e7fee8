"""Applying one unit of work inside a MongoDB transaction (the caller owns the transaction).

The unit takes a block of sequence numbers from the ``counters`` document first: every write
transaction updates that one document, so MongoDB orders concurrent transactions on it (the
later one gets a write conflict and is retried by ``with_transaction``), and history and outbox
``seq`` follow commit order, which the per-hook outbox cursors rely on.

Puts are applied in order. Their versions are checked against the current documents (read once
for the whole unit, then tracked in memory as the unit changes them); their writes are buffered
and sent as three bulk calls (history, resources, outbox). A conditional put first writes its
conditional key (two transactions testing the same condition then conflict, and the retry sees
the other's resource) and flushes the buffer, so that its search sees the unit's earlier puts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from pymongo import InsertOne, ReplaceOne, ReturnDocument
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from fhir_server.search.model import Criteria, ResourceIndex
from fhir_server.storage.mongo import documents as d
from fhir_server.storage.mongo import integrity
from fhir_server.storage.mongo.search import MongoSearch
from fhir_server.storage.mongo.search_index import index_fields
from fhir_server.storage.port import (
    ABSENT,
    ConditionalMatch,
    PendingPut,
    PendingWrites,
    check_version,
)

Document = dict[str, Any]


@dataclass(slots=True)
class _Current:
    version: int
    rid: int


@dataclass(slots=True)
class _Buffer:
    history: list[Document] = field(default_factory=list)
    resources: list[InsertOne[Document] | ReplaceOne[Document]] = field(default_factory=list)
    outbox: list[Document] = field(default_factory=list)


class UnitWriter:
    """Applies one unit's puts on ``session`` (inside its transaction)."""

    def __init__(
        self, db: AsyncDatabase[Document], search: MongoSearch, session: AsyncClientSession
    ) -> None:
        self._db = db
        self._search = search
        self._session = session
        self._buffer = _Buffer()
        self._current: dict[str, _Current | None] = {}

    async def apply(self, pending: PendingWrites) -> None:
        puts = pending.puts
        seq = await self._take_sequence(len(puts))
        await self._load_current(puts)
        for offset, put in enumerate(puts):
            if put.unless_exists is not None:
                await self._check_condition(put.unless_exists)
            self._stage(put, seq + offset)
        await self._flush()
        if pending.check_references:
            await integrity.check_unit(self._db, self._session, puts)

    async def _take_sequence(self, count: int) -> int:
        """The first of ``count`` new sequence numbers (the counter holds the last one used)."""
        counter = await self._db[d.COUNTERS].find_one_and_update(
            {"_id": "seq"},
            {"$inc": {"n": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=self._session,
        )
        assert counter is not None
        return int(counter["n"]) - count + 1

    async def _load_current(self, puts: list[PendingPut]) -> None:
        keys = list({d.resource_key(p.version.resource_type, p.version.id) for p in puts})
        self._current = dict.fromkeys(keys)
        found = self._db[d.RESOURCES].find(
            {"_id": {"$in": keys}}, {"version": 1, "rid": 1}, session=self._session
        )
        async for doc in found:
            self._current[doc["_id"]] = _Current(int(doc["version"]), int(doc["rid"]))

    async def _check_condition(self, criteria: Criteria) -> None:
        await self._db[d.CONDITIONAL_KEYS].update_one(
            {"_id": conditional_key(criteria)},
            {"$inc": {"uses": 1}},
            upsert=True,
            session=self._session,
        )
        await self._flush()
        matches = await self._search.first_matches(criteria, 2, self._session)
        if matches:
            raise ConditionalMatch(matches)

    def _stage(self, put: PendingPut, seq: int) -> None:
        v = put.version
        key = d.resource_key(v.resource_type, v.id)
        current = self._current[key]
        check_version(put, ABSENT if current is None else current.version)
        rid = seq if current is None else current.rid
        stamp = d.to_micros(v.last_updated)
        base = {"type": v.resource_type, "id": v.id, "version": v.version, "lastUpdated": stamp}
        base |= {"method": v.method, "body": v.body}
        self._buffer.history.append({"_id": seq, **base})
        doc = {"_id": key, **base, "deleted": v.deleted, "rid": rid}
        if not v.deleted:
            doc |= reference_fields(put)
            doc |= index_fields(put.index or ResourceIndex())
        write = InsertOne(doc) if current is None else ReplaceOne({"_id": key}, doc)
        self._buffer.resources.append(write)
        self._buffer.outbox.append(
            {
                "_id": seq,
                "type": v.resource_type,
                "id": v.id,
                "version": v.version,
                "interaction": put.interaction,
                "occurred": stamp,
            }
        )
        self._current[key] = _Current(v.version, rid)

    async def _flush(self) -> None:
        buffer, self._buffer = self._buffer, _Buffer()
        s = self._session
        if buffer.history:
            await self._db[d.HISTORY].insert_many(buffer.history, ordered=True, session=s)
        if buffer.resources:
            await self._db[d.RESOURCES].bulk_write(buffer.resources, ordered=True, session=s)
        if buffer.outbox:
            await self._db[d.OUTBOX].insert_many(buffer.outbox, ordered=True, session=s)


def reference_fields(put: PendingPut) -> Document:
    """The current version's local references (``refs``) and the keys of its unversioned ones
    (``refkeys``, indexed: who refers to a resource about to be deleted)."""
    refs = [
        {"p": r.path, "t": r.target_type, "i": r.target_id, "v": r.target_version}
        for r in put.references
    ]
    keys = sorted({r.target for r in put.references if r.target_version is None})
    return {"refs": refs, "refkeys": keys}


def conditional_key(criteria: Criteria) -> str:
    """A stable key of a conditional create's criteria: equal criteria give equal keys (the
    AST is frozen dataclasses, whose repr is deterministic)."""
    return hashlib.sha256(repr(criteria).encode()).hexdigest()
