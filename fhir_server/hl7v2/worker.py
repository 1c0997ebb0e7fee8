"""The inbound worker: maps the messages the listener stored ("received") to FHIR, in order.

One task per application. It takes the "received" messages from the message log oldest first
(key order is arrival order), parses each (er7.parse), and hands them, grouped per sender in
arrival order (at most ``group`` per call), to ``process`` — bootstrap binds
:meth:`fhir_server.hl7v2.inbound.OrderMapper.process_many`: one FHIR transaction through the
write pipeline for the group, each message still succeeding or failing on its own. Then it
marks each message "mapped" (with the references written) or "failed" (with the V2Error's
segment, field, code and text; any other exception becomes code 207 and is logged), all marks
of a group in one durable write. The orders of one sender are applied in the order they were
sent; senders do not wait on each other's failures.

Crash recovery needs nothing special: a message is "received" from the moment it is durable
(before its ACK) until it is marked; at start-up the worker finds whatever a crash left there.
A crash between the transaction and the marks maps the messages again: the mapping is
conditional on the patient and order identifiers, so it updates what it wrote, never
duplicates it. The listener wakes the worker after each new message; it also polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fhir_server.core.waiting import wait_within
from fhir_server.hl7v2.er7 import Message, parse
from fhir_server.hl7v2.errors import V2Error
from fhir_server.hl7v2.senders import SenderConfig, Senders
from fhir_server.messaging.log import Mark, MessageLog

log = logging.getLogger(__name__)

Outcome = list[str] | V2Error
Process = Callable[[Sequence[Message], SenderConfig], Awaitable[list[Outcome]]]


class InboundWorker:
    """``process``: maps several messages of one sender, in order, each to its references or
    its V2Error (bootstrap binds OrderMapper.process_many to the service); ``delay``: seconds
    to wait after start before the first pass; ``batch``: messages read per pass; ``group``:
    messages per ``process`` call."""

    def __init__(
        self,
        messages: MessageLog,
        senders: Senders,
        process: Process,
        *,
        delay: float = 0.0,
        poll_interval: float = 1.0,
        batch: int = 200,
        group: int = 50,
    ) -> None:
        self._messages = messages
        self._senders = senders
        self._process = process
        self._delay = delay
        self._poll = poll_interval
        self._batch = batch
        self._group = group
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hl7v2-inbound-worker")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        if self._delay > 0:
            await asyncio.sleep(self._delay)
        while True:
            self._wake.clear()
            try:
                done = await self.run_once()
            except Exception:  # the store is unavailable: try again later, lose nothing
                log.exception("HL7 v2 worker: reading the message log failed")
                done = 0
            if done < self._batch:
                with contextlib.suppress(TimeoutError):
                    await wait_within(self._wake.wait(), self._poll)

    async def run_once(self) -> int:
        """Map up to one batch of "received" messages; how many were taken."""
        pending = await self._messages.pending("received", self._batch)
        groups: dict[tuple[str, str], list[tuple[dict[str, Any], Message]]] = {}
        marks: list[Mark] = []
        for record in pending:
            try:
                message = parse(str(record["raw"]))
            except V2Error as error:
                marks.append(self._failed(record, error))
                continue
            who = record.get("sender") or {}
            key = (str(who.get("application", "")), str(who.get("facility", "")))
            groups.setdefault(key, []).append((record, message))
        if marks:
            await self._messages.mark_many(marks)
        for members in groups.values():
            for first in range(0, len(members), self._group):
                await self._map(members[first : first + self._group])
        return len(pending)

    async def _map(self, members: list[tuple[dict[str, Any], Message]]) -> None:
        """Map one group of one sender's messages and mark them in one write; if the group
        fails unexpectedly, each message is mapped alone, so only the faulty one fails."""
        sender = self._sender(members[0][0])
        try:
            outcomes = await self._process([m for _, m in members], sender)
        except Exception as exc:
            if len(members) > 1:
                for member in members:
                    await self._map([member])
                return
            record = members[0][0]
            log.exception("HL7 v2 %s %s: mapping failed", record.get("type"),
                          record.get("control_id"))  # fmt: skip
            failure = {"segment": "MSH", "field": None, "code": "207",
                       "text": f"application internal error ({type(exc).__name__})"}  # fmt: skip
            await self._messages.mark_many([Mark(record, "failed", error=failure)])
            return
        marks = [
            Mark(record, "mapped", resources=outcome)
            if isinstance(outcome, list)
            else self._failed(record, outcome)
            for (record, _), outcome in zip(members, outcomes, strict=True)
        ]
        await self._messages.mark_many(marks)

    @staticmethod
    def _failed(record: dict[str, Any], error: V2Error) -> Mark:
        log.warning("HL7 v2 %s %s not mapped: %s", record.get("type"),
                    record.get("control_id"), error.location)  # fmt: skip
        return Mark(record, "failed", error=_error(error))

    def _sender(self, record: dict[str, Any]) -> SenderConfig:
        """The sender's current configuration; one no longer listed keeps what was stored."""
        who = record.get("sender") or {}
        app, facility = str(who.get("application", "")), str(who.get("facility", ""))
        found = self._senders.resolve(app, facility)
        if found is None:
            return SenderConfig(app, facility, who.get("organization"))
        return found


def _error(error: V2Error) -> dict[str, Any]:
    return {"segment": error.segment, "field": error.field, "code": error.code,
            "text": error.message}  # fmt: skip
