"""Ordered delivery of queued outbound messages (ORU^R01) to each destination over MLLP.

One task per ``--hl7-destination NAME=host:port``. It takes that destination's messages from the
log oldest first ("sent" ones first: a crash may have left one unanswered, and the receiver
de-duplicates on MSH-10), writes one frame, waits for the ACK (``--hl7-ack-timeout``) and then:

* AA / CA → "acknowledged" (the ACK kept in the log);
* AE / AR / CE / CR → "failed" with the ACK's error (MSA-3 / ERR), kept visible for replay; the
  next message then proceeds (a message the receiver refuses must not block every later
  result — the admin API's replay sends it again once fixed);
* connection refused, reset or no ACK in time → the same message again after an exponential
  backoff (``--hl7-retry-initial`` doubling up to ``--hl7-retry-max`` seconds), so order holds.

The connection stays open between messages; the results hook wakes the task (:meth:`notify`),
and it also polls the log every ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.core.waiting import wait_within
from fhir_server.hl7v2.audit import EXPORT, Hl7Audit
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.errors import V2Error
from fhir_server.messaging.log import MessageLog

log = logging.getLogger(__name__)
START, END = b"\x0b", b"\x1c\r"


@dataclass(frozen=True, slots=True)
class Destination:
    name: str
    host: str
    port: int


def parse_destination(spec: str) -> Destination:
    """``NAME=host:port`` (``--hl7-destination``); ValueError naming what is wrong."""
    name, sep, address = spec.strip().partition("=")
    host, colon, port = address.rpartition(":")
    if not sep or not name or not colon or not host or not port.isdigit():
        raise ValueError(
            f"--hl7-destination {spec!r}: expected NAME=host:port, e.g. ris=10.0.0.7:2576"
        )
    return Destination(name, host.strip("[]"), int(port))


def parse_destinations(specs: tuple[str, ...]) -> dict[str, Destination]:
    found: dict[str, Destination] = {}
    for spec in specs:
        destination = parse_destination(spec)
        if destination.name in found:
            raise ValueError(f"--hl7-destination {destination.name!r} is given twice")
        found[destination.name] = destination
    return found


class AckError(Exception):
    """The peer's answer was not an ACK we can read (treated like a lost ACK: retried)."""


def read_ack(raw: str, control_id: str) -> tuple[bool, dict[str, Any] | None]:
    """(accepted, error record) of an ACK to ``control_id``."""
    code, error = read_ack_code(raw, control_id)
    return code in ("AA", "CA"), error


def read_ack_code(raw: str, control_id: str) -> tuple[str, dict[str, Any] | None]:
    """(MSA-1, error record) of an ACK to ``control_id``: no error record when accepted."""
    try:
        ack = parse(raw)
    except V2Error as exc:
        raise AckError(f"unreadable ACK: {exc}") from None
    msa = ack.segment("MSA")
    if msa is None:
        raise AckError("the answer has no MSA segment")
    if msa.get(2) != control_id:
        raise AckError(f"the ACK answers {msa.get(2)!r}, not {control_id!r}")
    code = msa.get(1)
    if code in ("AA", "CA"):
        return code, None
    err = ack.segment("ERR")
    text = msa.get(3)
    error: dict[str, Any] = {"segment": None, "field": None, "code": code, "text": text}
    if err is not None:
        if err.get(2, 1, 1):  # v2.5 ERR-2 ErrorLocation, ERR-3 code, ERR-8 user message
            error["segment"] = err.get(2, 1, 1)
            error["field"] = int(err.get(2, 1, 3)) if err.get(2, 1, 3).isdigit() else None
            error["code"] = err.get(3, 1, 1) or code
            error["text"] = err.get(8) or err.get(3, 1, 2) or text
        elif err.get(1):  # v2.3.1 ERR-1 segment^sequence^field^code
            error["segment"] = err.get(1, 1, 1)
            error["field"] = int(err.get(1, 1, 3)) if err.get(1, 1, 3).isdigit() else None
            error["code"] = err.get(1, 1, 4) or code
    error["text"] = error["text"] or f"the receiver answered {code}"
    return code, error


class ResultSender:
    def __init__(
        self,
        messages: MessageLog,
        destinations: Mapping[str, Destination],
        *,
        ack_timeout: float = 30.0,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        poll_interval: float = 1.0,
        audit: Hl7Audit | None = None,
    ) -> None:
        self.messages = messages
        self.destinations = dict(destinations)
        self.ack_timeout = ack_timeout
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.poll_interval = poll_interval
        self.audit = audit
        self._wake: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for name in self.destinations:
            self._wake[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._run(self.destinations[name])))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def notify(self) -> None:
        """Something was queued: look now rather than at the next poll."""
        for event in self._wake.values():
            event.set()

    async def _next(self, name: str) -> dict[str, Any] | None:
        candidates = []
        for state in ("sent", "queued"):
            for record in await self.messages.pending(state, limit=1000):
                if record.get("direction") == "out" and record.get("destination") == name:
                    candidates.append(record)
        return min(candidates, key=lambda r: str(r["id"])) if candidates else None

    async def _run(self, destination: Destination) -> None:
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        delay = self.retry_initial
        wake = self._wake[destination.name]
        try:
            while True:
                record = await self._next(destination.name)
                if record is None:
                    wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await wait_within(wake.wait(), self.poll_interval)
                    continue
                try:
                    connection = connection or await asyncio.open_connection(
                        destination.host, destination.port
                    )
                    await self._deliver(connection, record, destination)
                    delay = self.retry_initial
                except (OSError, TimeoutError, AckError, asyncio.IncompleteReadError) as exc:
                    await _close(connection)
                    connection = None
                    attempts = int(record.get("attempts") or 0) + 1
                    await self.messages.mark(
                        str(record["id"]), record["state"], attempts=attempts,
                        error={"segment": None, "field": None, "code": "transport",
                               "text": f"{destination.name}: {exc!r}; retrying"},
                    )  # fmt: skip
                    log.warning("HL7 v2 to %s: %r; retry in %.1fs", destination.name, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.retry_max)
        finally:
            await _close(connection)

    async def _deliver(
        self,
        connection: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        record: dict[str, Any],
        destination: Destination,
    ) -> None:
        reader, writer = connection
        raw = str(record["raw"])
        message_id = str(record["id"])
        attempts = int(record.get("attempts") or 0) + 1
        writer.write(START + raw.encode("utf-8") + END)
        await writer.drain()
        if record["state"] != "sent":
            await self.messages.mark(message_id, "sent", attempts=attempts)
        frame = await wait_within(reader.readuntil(END), self.ack_timeout)
        ack = frame[frame.find(START) + 1 : -len(END)].decode("utf-8", "replace")
        code, error = read_ack_code(ack, str(record["control_id"]))
        if error is None:
            await self.messages.mark(message_id, "acknowledged", ack=ack, attempts=attempts)
        else:
            await self.messages.mark(message_id, "failed", ack=ack, error=error, attempts=attempts)
        if self.audit is not None:
            await self.audit.exchanged(
                EXPORT, peer=destination.name, organization=None,
                address=f"{destination.host}:{destination.port}",
                control_id=str(record["control_id"]), message_type=str(record.get("type") or ""),
                code=code,
            )  # fmt: skip


async def _close(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
    """Close and wait until the socket is really closed (a transport closed without waiting
    keeps its socket until the loop runs its callback: at shutdown, an unclosed socket)."""
    if connection is not None:
        connection[1].close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection[1].wait_closed(), 1.0)
