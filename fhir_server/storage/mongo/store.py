"""MongoDB implementation of the storage port, through PyMongo's async API.

Layout: documents.py. Every unit of work is one multi-document transaction (snapshot read
concern, majority write concern) run by ``with_transaction``, which retries it whole on a
transient error (a write conflict with another replica's transaction, a primary step-down); a
refusal of ours (version, condition, integrity) aborts it and reaches the caller. Units of one
process commit one at a time: they would all conflict on the sequence counter anyway
(writes.py), and waiting in turn is cheaper than aborting and retrying.

MongoDB gives transactions only on a replica set or through mongos; ``open`` refuses anything
else with :class:`StoreConfigurationError` (a standalone server would silently lose atomicity).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, AsyncMongoClient, IndexModel, WriteConcern
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, OperationFailure, PyMongoError
from pymongo.read_concern import ReadConcern
from pymongo.uri_parser import parse_uri

from fhir_server.core.clock import Clock, system_clock
from fhir_server.core.urls import without_credentials
from fhir_server.search.model import Criteria
from fhir_server.storage.cursors import cursor_key, encode_cursor
from fhir_server.storage.mongo import documents as d
from fhir_server.storage.mongo.indexes import index_models
from fhir_server.storage.mongo.outbox import Outbox
from fhir_server.storage.mongo.records import INDEXES as RECORD_INDEXES
from fhir_server.storage.mongo.records import RECORDS, MongoRecords
from fhir_server.storage.mongo.search import MongoSearch
from fhir_server.storage.mongo.writes import UnitWriter
from fhir_server.storage.port import (
    HistoryQuery,
    OutboxEvent,
    Page,
    PendingWrites,
    ResourceStore,
    ResourceVersion,
    SearchQuery,
    StoreConfigurationError,
    UnitOfWork,
)
from fhir_server.storage.records import RecordStore

Document = dict[str, Any]

#: The database used when the URL names none.
DEFAULT_DATABASE = "fhir"
SCHEMA_VERSION = 1
#: How long to look for a usable server before an operation fails, unless the URL says.
SERVER_SELECTION_TIMEOUT_MS = 10_000

_HISTORY_INDEXES = [
    IndexModel([("type", 1), ("id", 1), ("version", 1)], name="type_id_version", unique=True),
    IndexModel([("type", 1), ("_id", DESCENDING)], name="type_seq"),
    IndexModel([("lastUpdated", 1)], name="lastUpdated"),
]
_RESOURCE_INDEXES = [
    IndexModel([("rid", 1)], name="rid", unique=True),
    IndexModel([("refkeys", 1)], name="refkeys"),
]
_RETRY_INDEXES = [IndexModel([("hook", 1), ("retry_at", 1)], name="hook_retry_at")]


async def create_indexes(db: AsyncDatabase[Document]) -> None:
    """Every index of the store's collections (idempotent: existing ones are kept)."""
    await db[d.RESOURCES].create_indexes(_RESOURCE_INDEXES + index_models())
    await db[d.HISTORY].create_indexes(_HISTORY_INDEXES)
    await db[d.OUTBOX_RETRY].create_indexes(_RETRY_INDEXES)
    await db[RECORDS].create_indexes(RECORD_INDEXES)


class MongoStore(ResourceStore):
    """The store in one MongoDB database (``mongodb://host/db?replicaSet=…``)."""

    def __init__(self, url: str, *, clock: Clock = system_clock) -> None:
        super().__init__()
        try:
            parsed = parse_uri(url)
        except (ConfigurationError, ValueError) as exc:
            raise StoreConfigurationError(f"not a MongoDB connection string: {exc}") from None
        self.url = url
        self._clock = clock
        options: Document = {}
        if "serverselectiontimeoutms" not in parsed["options"]:
            options["serverSelectionTimeoutMS"] = SERVER_SELECTION_TIMEOUT_MS
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(
            url, tz_aware=True, connect=False, **options
        )
        database = parsed.get("database") or DEFAULT_DATABASE
        self.db: AsyncDatabase[Document] = self._client[database]
        self._search = MongoSearch(self.db[d.RESOURCES], clock)
        self._outbox = Outbox(self.db)
        self._write_lock = asyncio.Lock()
        self._records = MongoRecords(self.db, clock, self._write_lock)

    async def open(self) -> None:
        try:
            await self._require_transactions()
            await create_indexes(self.db)
            await self.db[d.META].update_one(
                {"_id": "schema"}, {"$max": {"version": SCHEMA_VERSION}}, upsert=True
            )
        except PyMongoError as exc:
            raise StoreConfigurationError(f"MongoDB at {self._safe_url()}: {exc}") from None

    async def _require_transactions(self) -> None:
        """A replica set member or mongos, or a server that proves it runs transactions."""
        hello = await self._client.admin.command("hello")
        if hello.get("setName") or hello.get("msg") == "isdbgrid":
            return
        try:
            session = self._client.start_session()
            async with session, await session.start_transaction():
                await self.db[d.META].find_one({"_id": "schema"}, session=session)
                await session.abort_transaction()
        except OperationFailure as exc:
            raise StoreConfigurationError(
                f"MongoDB at {self._safe_url()} is a standalone server, which cannot make a "
                "unit of work atomic (no multi-document transactions). Run it as a replica set "
                "(a single member is enough: mongod --replSet rs0, then rs.initiate()) and add "
                f"?replicaSet=<name> to the URL. The server said: {_said(exc)}"
            ) from None

    def _safe_url(self) -> str:
        return without_credentials(self.url)

    async def close(self) -> None:
        await self._client.close()

    @property
    def records(self) -> RecordStore:
        return self._records

    async def read(self, resource_type: str, id: str) -> ResourceVersion | None:
        doc = await self.db[d.RESOURCES].find_one(
            {"_id": d.resource_key(resource_type, id)}, d.VERSION_FIELDS
        )
        return None if doc is None else d.version_from_doc(doc)

    async def vread(self, resource_type: str, id: str, version: int) -> ResourceVersion | None:
        doc = await self.db[d.HISTORY].find_one(
            {"type": resource_type, "id": id, "version": version}
        )
        return None if doc is None else d.version_from_doc(doc)

    async def history(self, query: HistoryQuery) -> Page:
        where: Document = {}
        if query.resource_type is not None:
            where["type"] = query.resource_type
        if query.id is not None:
            where["id"] = query.id
        if query.since is not None:
            where["lastUpdated"] = {"$gte": d.to_micros(query.since)}
        if query.cursor is not None:
            where["_id"] = {"$lt": cursor_key(query.cursor, "before", int)}
        docs = await (
            self.db[d.HISTORY].find(where).sort("_id", DESCENDING).limit(query.count + 1).to_list()
        )
        entries = [d.version_from_doc(doc) for doc in docs[: query.count]]
        next_cursor = None
        if len(docs) > query.count and query.count > 0:
            next_cursor = encode_cursor({"before": int(docs[query.count - 1]["_id"])})
        return Page(entries, next_cursor)

    async def search(self, query: SearchQuery) -> Page:
        return await self._search.page(query)

    async def count(self, criteria: Criteria) -> int:
        return await self._search.count(criteria)

    async def estimate(self, criteria: Criteria) -> int:
        return await self._search.estimate(criteria)

    def unit_of_work(self, *, check_references: bool = False) -> UnitOfWork:
        return _MongoUnitOfWork(self, check_references)

    async def _commit(self, pending: PendingWrites) -> None:
        async def apply(session: AsyncClientSession) -> None:
            await UnitWriter(self.db, self._search, session).apply(pending)

        async with self._write_lock, self._client.start_session() as session:
            await session.with_transaction(
                apply,
                read_concern=ReadConcern("snapshot"),
                write_concern=WriteConcern("majority"),
            )
        self.notify_committed()

    async def pending_events(self, hook: str, limit: int, now: datetime) -> list[OutboxEvent]:
        return await self._outbox.pending(hook, limit, now)

    # The relay's cursor writes take the write lock like every other write of this process: a
    # plain write racing a transaction's commit made it fail with a write conflict (seen on
    # mongoeco once every server ran the relay).
    async def mark_handled(self, hook: str, *seqs: int) -> None:
        if not seqs:
            return
        async with self._write_lock:
            await self._outbox.handled(hook, seqs)

    async def mark_failed(self, hook: str, seq: int, retry_at: datetime, error: str) -> None:
        async with self._write_lock:
            await self._outbox.failed(hook, seq, retry_at, error)


def _said(exc: OperationFailure) -> str:
    message = (exc.details or {}).get("errmsg")
    return f"{message} (code {exc.code})" if message else str(exc)


class _MongoUnitOfWork(UnitOfWork):
    def __init__(self, store: MongoStore, check_references: bool) -> None:
        super().__init__(check_references=check_references)
        self._store = store

    async def _commit(self, pending: PendingWrites) -> None:
        await self._store._commit(pending)
