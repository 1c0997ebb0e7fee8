"""The HL7 v2 message log: every inbound and outbound message with its state, on the record port.

Records (``application.store.records``, so both backends):

- kind ``hl7-message``, key = the message id (time-ordered hex: key order is arrival order),
  ``index="state"``; the value is described in :class:`MessageLog`'s docstring.
- kind ``hl7-control-id``, key ``f"{MSH-3}|{MSH-4}|{MSH-10}"`` → ``{"message": id, "ack": raw}``:
  the duplicate claim, put with ``if_absent`` in the same durable write as the message.
- kind ``hl7-outbound-key``, key = the caller's idempotency key → ``{"message": id}``.

Persist-then-ACK with group commit: :meth:`MessageLog.accept` queues the message; one flush at a
time writes everything queued so far in one :meth:`RecordStore.put_many` (one fsync), so messages
that arrive together (pipelined on one connection, or on several) share one durable write.
``accept`` returns only once the message and its claim are durable; only then may the caller
write the ACK. No HL7 library here: the few MSH fields an outbound message needs are split out.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.storage.records import Record, RecordPut, RecordStore

MESSAGE = "hl7-message"
CONTROL_ID = "hl7-control-id"
OUTBOUND_KEY = "hl7-outbound-key"
STATES = ("received", "mapped", "failed", "rejected", "queued", "sent", "acknowledged")
#: How many records :meth:`MessageLog.search` reads at most (in pages) to filter in memory.
SCAN_LIMIT = 100_000
PAGE = 500


@dataclass(frozen=True, slots=True)
class InboundMeta:
    """What the listener read from MSH before storing the message."""

    control_id: str  # MSH-10
    application: str  # MSH-3
    facility: str  # MSH-4
    type: str  # MSH-9, e.g. "ORM^O01"
    version: str  # MSH-12
    organization: str | None = None  # "Organization/x": the sender's, from the allow-list

    @property
    def claim_key(self) -> str:
        return f"{self.application}|{self.facility}|{self.control_id}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """``duplicate_ack``: the ACK first sent for this MSH-3/MSH-4/MSH-10 (resend it), or None
    when the message is new and now durable under ``id``."""

    id: str
    duplicate_ack: str | None


@dataclass(frozen=True, slots=True)
class Mark:
    """A state change for :meth:`MessageLog.mark_many`: ``record`` as read from the log."""

    record: Record
    state: str
    error: Record | None = None
    resources: Sequence[str] | None = None


@dataclass(slots=True)
class _Pending:
    id: str
    raw: str
    meta: InboundMeta
    ack: str
    state: str
    error: Record | None
    claim: bool
    done: asyncio.Future[Accepted] = field(repr=False)


class MessageLog:
    """Message records: ``{"id", "direction": "in"|"out", "state", "received", "updated",
    "sender": {"application", "facility", "organization"}, "destination", "control_id",
    "type", "version", "raw" (exactly as received), "ack", "error": {segment, field, code,
    text} | None, "resources": [...], "attempts", "source"}``."""

    def __init__(self, records: RecordStore, clock: Clock) -> None:
        self._records = records
        self._clock = clock
        self._queue: list[_Pending] = []
        self._flushing: asyncio.Task[None] | None = None
        self._last_id = 0
        self._node = os.urandom(4).hex()  # ids stay unique across processes on one store

    def new_id(self) -> str:
        """Time-ordered (microseconds, strictly increasing in this process) + a process tag."""
        now = int(self._clock().timestamp() * 1_000_000)
        self._last_id = max(now, self._last_id + 1)
        return f"{self._last_id:014x}{self._node}"

    def _now(self) -> str:
        return to_instant(self._clock())

    # ---------------------------------------------------------------- inbound

    async def accept(
        self,
        raw: str,
        meta: InboundMeta,
        *,
        ack: str,
        message_id: str | None = None,
        state: str = "received",
        error: Record | None = None,
        claim: bool = True,
    ) -> Accepted:
        """Store ``raw`` and its control-id claim (with ``ack``, the ACK about to be sent)
        durably, grouped with whatever else is being accepted now; a duplicate stores nothing
        and gets the original ACK. ``state``: "received" (the worker maps it), "failed" (AE:
        kept, not mapped) or "rejected" (AR, kept for audit). ``claim`` False: no duplicate
        check, no claim (an AE/AR message: its corrected resend must be checked again)."""
        loop = asyncio.get_running_loop()
        pending = _Pending(
            message_id or self.new_id(), raw, meta, ack, state, error, claim, loop.create_future()
        )
        self._queue.append(pending)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await pending.done

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await self._write(batch)
            except Exception as exc:  # every waiter hears of it: none of them is acknowledged
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)

    async def _write(self, batch: list[_Pending]) -> None:
        claiming = [p for p in batch if p.claim]
        unclaimed = [p for p in batch if not p.claim]
        claims = await asyncio.gather(
            *(self._records.get(CONTROL_ID, p.meta.claim_key) for p in claiming)
        )
        fresh: dict[str, _Pending] = {}
        later: list[_Pending] = []  # a second copy within this batch: answered after the first
        for pending, claim in zip(claiming, claims, strict=True):
            if claim is not None:
                pending.done.set_result(Accepted(str(claim["message"]), str(claim["ack"])))
            elif pending.meta.claim_key in fresh:
                later.append(pending)
            else:
                fresh[pending.meta.claim_key] = pending
        items: list[RecordPut] = []
        for pending in fresh.values():
            claim_value = {"message": pending.id, "ack": pending.ack}
            items.append(RecordPut(CONTROL_ID, pending.meta.claim_key, claim_value, if_absent=True))
            items.append(RecordPut(MESSAGE, pending.id, self._inbound(pending), index="state"))
        items += [RecordPut(MESSAGE, p.id, self._inbound(p), index="state") for p in unclaimed]
        stored = await self._records.put_many(items)
        for pending in unclaimed:
            pending.done.set_result(Accepted(pending.id, None))
        for n, pending in enumerate(fresh.values()):
            if stored[2 * n]:
                pending.done.set_result(Accepted(pending.id, None))
            else:  # another process claimed it between our read and our write
                await self.mark(pending.id, "rejected", error=_duplicate_error())
                claim = await self._records.get(CONTROL_ID, pending.meta.claim_key)
                ack = None if claim is None else str(claim["ack"])
                pending.done.set_result(Accepted(pending.id, ack or pending.ack))
        for pending in later:
            first = fresh[pending.meta.claim_key]
            pending.done.set_result(Accepted(first.id, first.ack))

    def _inbound(self, pending: _Pending) -> Record:
        now = self._now()
        meta = pending.meta
        return {
            "id": pending.id,
            "direction": "in",
            "state": pending.state,
            "received": now,
            "updated": now,
            "sender": {
                "application": meta.application,
                "facility": meta.facility,
                "organization": meta.organization,
            },
            "destination": None,
            "control_id": meta.control_id,
            "type": meta.type,
            "version": meta.version,
            "raw": pending.raw,
            "ack": pending.ack,
            "error": pending.error,
            "resources": [],
            "attempts": 0,
            "source": None,
        }

    # ---------------------------------------------------------------- state

    async def get(self, message_id: str) -> Record | None:
        return await self._records.get(MESSAGE, message_id)

    async def mark(
        self,
        message_id: str,
        state: str,
        *,
        error: Record | None = None,
        resources: Sequence[str] | None = None,
        ack: str | None = None,
        attempts: int | None = None,
    ) -> Record:
        """Move a message to ``state`` (error cleared unless given); KeyError if unknown."""
        if state not in STATES:
            raise ValueError(f"unknown message state {state!r}")
        record = await self.get(message_id)
        if record is None:
            raise KeyError(message_id)
        record["state"] = state
        record["updated"] = self._now()
        record["error"] = error
        if resources is not None:
            record["resources"] = list(resources)
        if ack is not None:
            record["ack"] = ack
        if attempts is not None:
            record["attempts"] = attempts
        await self._records.put(MESSAGE, message_id, record, index="state")
        return record

    async def mark_many(self, marks: Sequence[Mark]) -> None:
        """Several state changes in one durable write (the worker's marks of a group). Each
        record is the one read from the log: only its owner (the worker) changes it now."""
        items = []
        for mark in marks:
            if mark.state not in STATES:
                raise ValueError(f"unknown message state {mark.state!r}")
            record = dict(mark.record, state=mark.state, updated=self._now(), error=mark.error)
            if mark.resources is not None:
                record["resources"] = list(mark.resources)
            items.append(RecordPut(MESSAGE, str(record["id"]), record, index="state"))
        if items:
            await self._records.put_many(items)

    async def pending(self, state: str, limit: int = 100) -> list[Record]:
        """Messages in ``state``, oldest first (arrival order)."""
        return await self._records.find(MESSAGE, state, limit=limit)

    async def search(
        self,
        *,
        direction: str | None = None,
        state: str | None = None,
        sender: str | None = None,
        type: str | None = None,
        control_id: str | None = None,
        since: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[Record]:
        """Messages matching every filter given, oldest first. ``sender`` matches MSH-3, or
        ``MSH-3^MSH-4``, or the Organization reference; ``since`` is an ISO date or instant
        (on ``received``; ids are time-ordered, so it also starts the scan there); ``after``
        an id: only later messages (paging). Reads pages of :data:`PAGE` records, at most
        :data:`SCAN_LIMIT` records in all (ValueError for a ``since`` that is not a date)."""
        cursor = max(after or "", _id_floor(since) if since else "") or None
        found: list[Record] = []
        scanned = 0
        while scanned < SCAN_LIMIT:
            page = await self._records.find(MESSAGE, state, limit=PAGE, after=cursor)
            for record in page:
                if _matches(record, direction, sender, type, control_id, since):
                    found.append(record)
                    if len(found) >= limit:
                        return found
            if len(page) < PAGE:
                break
            scanned += len(page)
            cursor = str(page[-1]["id"])
        return found

    async def replay(self, message_id: str) -> Record:
        """Inbound: back to "received" (the worker maps it again); outbound: back to "queued"
        with its attempts reset. KeyError if unknown."""
        record = await self.get(message_id)
        if record is None:
            raise KeyError(message_id)
        if record["direction"] == "in":
            return await self.mark(message_id, "received")
        return await self.mark(message_id, "queued", attempts=0)

    # ---------------------------------------------------------------- outbound

    async def enqueue_outbound(self, destination: str, raw: str, *, key: str, source: str) -> str:
        """Queue ``raw`` for ``destination`` once per ``key``; returns the message id (the
        first one's when ``key`` was queued before)."""
        claimed = await self._records.get(OUTBOUND_KEY, key)
        if claimed is not None:
            return str(claimed["message"])
        message_id = self.new_id()
        record = self._outbound(message_id, destination, raw, source)
        stored = await self._records.put_many(
            [
                RecordPut(OUTBOUND_KEY, key, {"message": message_id}, if_absent=True),
                RecordPut(MESSAGE, message_id, record, index="state"),
            ]
        )
        if stored[0]:
            return message_id
        await self._records.delete(MESSAGE, message_id)  # a concurrent call queued it first
        claimed = await self._records.get(OUTBOUND_KEY, key)
        assert claimed is not None
        return str(claimed["message"])

    def _outbound(self, message_id: str, destination: str, raw: str, source: str) -> Record:
        msh = _msh_fields(raw)
        now = self._now()
        return {
            "id": message_id,
            "direction": "out",
            "state": "queued",
            "received": now,
            "updated": now,
            "sender": {"application": msh.get(3, ""), "facility": msh.get(4, ""),
                       "organization": None},
            "destination": destination,
            "control_id": msh.get(10, ""),
            "type": "^".join(msh.get(9, "").split("^")[:2]),
            "version": msh.get(12, ""),
            "raw": raw,
            "ack": None,
            "error": None,
            "resources": [],
            "attempts": 0,
            "source": source,
        }  # fmt: skip


def _msh_fields(raw: str) -> dict[int, str]:
    """MSH fields by number (MSH-1 is the field separator itself): a plain split."""
    first = raw.replace("\n", "\r").split("\r", 1)[0]
    if not first.startswith("MSH") or len(first) < 4:
        return {}
    parts = first.split(first[3])
    fields = {1: first[3]}
    fields.update({n + 1: value for n, value in enumerate(parts) if n >= 1})
    return fields


def _id_floor(since: str) -> str:
    """An id below that of every message received at or after ``since`` (ISO date or instant;
    a date or a time without offset is UTC): a second earlier, since an id's time is read apart
    from the record's ``received`` (the exact filter is applied to each record anyway)."""
    moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{max(0, int(moment.timestamp() * 1_000_000) - 1_000_000):014x}"


def _matches(
    record: Record,
    direction: str | None,
    sender: str | None,
    type: str | None,
    control_id: str | None,
    since: str | None,
) -> bool:
    if direction is not None and record.get("direction") != direction:
        return False
    if type is not None and record.get("type") != type:
        return False
    if control_id is not None and record.get("control_id") != control_id:
        return False
    if since is not None and str(record.get("received", "")) < since:
        return False
    if sender is not None:
        who: dict[str, Any] = record.get("sender") or {}
        app, fac, org = who.get("application"), who.get("facility"), who.get("organization")
        if sender not in (app, f"{app}^{fac}", org):
            return False
    return True


def _duplicate_error() -> Record:
    return {
        "segment": "MSH",
        "field": 10,
        "code": "207",
        "text": "duplicate of a message another process stored at the same moment",
    }
