"""The MLLP listener: persistent connections, pipelined frames, persist-then-ACK.

Each connection has a reader (frames in) and a writer (ACKs out, in the order the frames came).
Every frame is answered by its own task, so frames pipelined on one connection — and frames
from several connections — reach :meth:`MessageLog.accept` together and share one durable
write (group commit); the ACK of a frame is written only once that write has returned. A
connection that misbehaves (garbage, oversize frames, a stalled peer) only affects itself.

Character sets (MSH-18, first repetition): ``UNICODE UTF-8``, ``ASCII``, ``8859/1`` … ``8859/9``
and ``8859/15`` are decoded strictly (bytes that are not valid in the declared set: AR naming
MSH-18 and the offset); any other declared set is refused (AR, code 103); with MSH-18 empty the
message is decoded as UTF-8 when valid, else as ISO 8859-1 (every byte kept, so the stored text
gives back the bytes received). The ACK is encoded in the same set.

No PHI in the logs: a message is logged by its control id, type and sender, never its text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from fhir_server.core.clock import Clock
from fhir_server.hl7v2.ack import (
    STANDARD_ENCODING,
    AckError,
    Header,
    HeaderError,
    ack_code,
    ack_wanted,
    build_ack,
)
from fhir_server.hl7v2.audit import IMPORT, Hl7Audit
from fhir_server.hl7v2.checks import check as check_content
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.errors import V2Error
from fhir_server.hl7v2.mllp import Frame, FrameReader, ReadTimeout, frame
from fhir_server.hl7v2.senders import SenderConfig, Senders
from fhir_server.messaging.log import InboundMeta, MessageLog

log = logging.getLogger(__name__)

CHARSETS = {
    "UNICODE UTF-8": "utf-8",
    "ASCII": "ascii",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
}
STATE_BY_CODE = {"A": "received", "E": "failed", "R": "rejected"}
#: How many frames of one connection may wait for their ACK (back-pressure beyond that).
WINDOW = 512

Check = Callable[[str], Sequence[AckError]]


class MllpListener:
    """An asyncio MLLP server; ``check``: the content checks run before the ACK (default:
    :func:`content_errors`), ``on_received``: called after a new message is durable (wakes the
    worker)."""

    def __init__(
        self,
        log_: MessageLog,
        senders: Senders,
        clock: Clock,
        *,
        host: str,
        port: int,
        read_timeout: float = 300.0,
        max_message_bytes: int = 4 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
        check: Check | None = None,
        on_received: Callable[[], None] | None = None,
        audit: Hl7Audit | None = None,
    ) -> None:
        self._log = log_
        self._senders = senders
        self._clock = clock
        self._host = host
        self._port = port
        self._read_timeout = read_timeout
        self._max = max_message_bytes
        self._ssl = ssl_context
        self._check = check or content_errors
        self._on_received = on_received
        self._audit = audit
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the real one when started on port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, ssl=self._ssl, limit=64 * 1024
        )
        log.info("MLLP listener on %s:%d%s", self._host, self.port, " (TLS)" if self._ssl else "")

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        replies: asyncio.Queue[asyncio.Task[bytes | None] | None] = asyncio.Queue(WINDOW)
        out = asyncio.create_task(_write_replies(writer, replies))
        frames = FrameReader(reader, max_bytes=self._max, timeout=self._read_timeout)
        try:
            while True:
                try:
                    found = await frames.next()
                except ReadTimeout as timeout:
                    if timeout.partial:
                        found = Frame("truncated", timeout.partial, len(timeout.partial))
                        await replies.put(asyncio.create_task(self._answer(found, timed_out=True)))
                    log.info("MLLP %s: read timeout, connection closed", peer)
                    break
                except (ConnectionError, ssl.SSLError) as exc:
                    log.info("MLLP %s: connection lost (%s)", peer, type(exc).__name__)
                    break
                if found is None:
                    break
                await replies.put(asyncio.create_task(self._answer(found, peer=peer)))
        finally:
            await replies.put(None)
            await out
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
            self._connections.discard(task)

    async def _answer(
        self, found: Frame, *, timed_out: bool = False, peer: Any = None
    ) -> bytes | None:
        """The framed ACK of one frame (None: nothing to send)."""
        if found.kind == "message":
            return await self.handle(found.data, address=str(peer[0]) if peer else None)
        text, codec, _ = decode(found.data)
        header, _errors = read_header(text)
        if found.kind == "oversize":
            problem = f"message exceeds {self._max} bytes ({found.size} bytes received)"
        elif found.kind == "unframed":
            problem = "message without MLLP start block (0x0B) before MSH"
        elif timed_out:
            problem = "incomplete frame: no end block (0x1C 0x0D) within the read timeout"
        else:
            log.info("MLLP: frame without end block at connection close (%d bytes)", found.size)
            return None
        log.warning("MLLP: %s (MSH-10 %r)", problem, header.control_id)
        error = HeaderError("MSH", None, "207", problem)
        ack = build_ack(header, [error], ack_id=self._log.new_id(), clock=self._clock)
        return frame(ack.encode(codec, errors="replace"))

    async def handle(self, data: bytes, address: str | None = None) -> bytes | None:
        """Check, store durably, then return the framed ACK of one message; ``address``: the
        peer's, for the audit."""
        text, codec, charset_error = decode(data)
        header, header_errors = read_header(text)
        errors: list[AckError] = list(header_errors)
        if charset_error is not None:
            errors.insert(0, charset_error)
        sender = None
        if not errors:
            sender = self._senders.resolve(
                header.component(header.sending_application),
                header.component(header.sending_facility),
            )
            if sender is None:
                errors.append(_unknown_sender(header))
        if not errors:
            errors = list(self._check(text))
        code = ack_code(header, errors)
        message_id = self._log.new_id()
        ack = build_ack(header, errors, ack_id=message_id, clock=self._clock, code=code)
        if text.startswith("MSH"):
            ack = await self._store(text, header, sender, errors, ack, message_id, code)
        self._report(header, code, errors)
        if self._audit is not None and text.startswith("MSH"):
            await self._audit.exchanged(
                IMPORT, peer=f"{header.component(header.sending_application)}|"
                f"{header.component(header.sending_facility)}",
                organization=None if sender is None else sender.organization, address=address,
                control_id=header.control_id, message_type=header.type_code, code=code,
            )  # fmt: skip
        if not ack_wanted(header, code):
            return None
        return frame(ack.encode(codec, errors="replace"))

    async def _store(
        self,
        text: str,
        header: Header,
        sender: SenderConfig | None,
        errors: Sequence[AckError],
        ack: str,
        message_id: str,
        code: str,
    ) -> str:
        organization = None if sender is None else sender.organization
        meta = InboundMeta(
            control_id=header.control_id,
            application=header.component(header.sending_application),
            facility=header.component(header.sending_facility),
            type=header.type_code,
            version=header.version,
            organization=organization,
        )
        state = STATE_BY_CODE[code[1]]
        first = errors[0] if errors else None
        error = None
        if first is not None:
            error = {"segment": first.segment, "field": first.field, "code": first.code,
                     "text": first.message}  # fmt: skip
        accepted = await self._log.accept(
            text, meta, ack=ack, message_id=message_id, state=state, error=error,
            claim=state == "received",
        )  # fmt: skip
        if accepted.duplicate_ack is not None:
            log.info("HL7 v2 duplicate %s from %s: original ACK resent", meta.control_id,
                     meta.application)  # fmt: skip
            return accepted.duplicate_ack
        if state == "received" and self._on_received is not None:
            self._on_received()
        return ack

    def _report(self, header: Header, code: str, errors: Sequence[AckError]) -> None:
        if not errors:
            log.debug("HL7 v2 %s %s: %s", header.type_code, header.control_id, code)
            return
        first = errors[0]
        log.warning("HL7 v2 %s %s from %s: %s, %s-%s code %s", header.type_code,
                    header.control_id, header.component(header.sending_application), code,
                    first.segment, first.field, first.code)  # fmt: skip


async def _write_replies(
    writer: asyncio.StreamWriter, replies: asyncio.Queue[asyncio.Task[bytes | None] | None]
) -> None:
    """Write each frame's ACK in frame order; when the peer is gone, keep draining (each
    message is still stored: a resend gets its original ACK)."""
    broken = False
    while (task := await replies.get()) is not None:
        try:
            reply = await task
        except Exception:
            log.exception("MLLP: a message could not be stored; no ACK sent (the sender resends)")
            broken = True  # without an ACK, the frames after it must not be acknowledged
            writer.close()
            continue
        if reply is None or broken:
            continue
        try:
            writer.write(reply)
            if replies.empty():
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            broken = True


def content_errors(text: str) -> list[AckError]:
    """The pre-ACK content checks (er7.parse, then checks.check): type, version, required
    fields, dates, order control codes."""
    try:
        message = parse(text)
    except V2Error as error:
        return [error]
    return list(check_content(message))


def decode(data: bytes) -> tuple[str, str, HeaderError | None]:
    """The text of a message per its MSH-18 (see the module's docstring), the codec used for
    the ACK, and the charset problem if any (the text is then ISO 8859-1)."""
    declared = _msh18(data)
    if not declared:
        try:
            return data.decode("utf-8"), "utf-8", None
        except UnicodeDecodeError:
            return data.decode("iso8859-1"), "iso8859-1", None
    codec = CHARSETS.get(declared.upper())
    if codec is None:
        supported = ", ".join(CHARSETS)
        problem = f"MSH-18 character set {declared!r} is not supported (supported: {supported})"
        return data.decode("iso8859-1"), "iso8859-1", HeaderError("MSH", 18, "103", problem)
    try:
        return data.decode(codec), codec, None
    except UnicodeDecodeError as exc:
        problem = (
            f"byte 0x{data[exc.start]:02X} at offset {exc.start} is not valid {declared} "
            "(the character set MSH-18 declares)"
        )
        return data.decode("iso8859-1"), "iso8859-1", HeaderError("MSH", 18, "102", problem)


def _msh18(data: bytes) -> str:
    if not data.startswith(b"MSH") or len(data) < 8:
        return ""
    first = re.split(rb"[\r\n]", data, maxsplit=1)[0]
    parts = first.split(first[3:4])
    if len(parts) < 18:
        return ""
    rep = parts[1][1:2] or b"~"
    return parts[17].split(rep)[0].decode("ascii", errors="replace").strip()


def read_header(text: str) -> tuple[Header, list[HeaderError]]:
    """The MSH fields and the problems that make the message unacceptable (AR)."""
    if not text.startswith("MSH"):
        return Header(), [HeaderError("MSH", None, "100", "the message does not start with MSH")]
    first = re.split(r"[\r\n]", text, maxsplit=1)[0]
    fs = first[3:4]
    if not fs or fs.isalnum() or fs.isspace():
        problem = f"MSH-1 field separator {fs!r} is not a delimiter (expected '|')"
        return Header(), [HeaderError("MSH", 1, "102", problem)]
    parts = first.split(fs)
    fields = ["", fs, *parts[1:]]  # fields[n] = MSH-n

    def f(n: int) -> str:
        return fields[n] if len(fields) > n else ""

    errors: list[HeaderError] = []
    encoding = f(2)
    if not _sane_encoding(encoding, fs):
        problem = (
            f"MSH-2 encoding characters {encoding!r} must be 4 distinct delimiters "
            "(component, repetition, escape, subcomponent) such as ^~\\&"
        )
        errors.append(HeaderError("MSH", 2, "102", problem))
        encoding = STANDARD_ENCODING
    header = Header(
        field_separator=fs, encoding=encoding[:4], sending_application=f(3),
        sending_facility=f(4), receiving_application=f(5), receiving_facility=f(6),
        message_type=f(9), control_id=f(10), processing_id=f(11),
        version=f(12).split(encoding[0])[0], accept_ack_type=f(15),
        application_ack_type=f(16), charset=f(18).split(encoding[1])[0],
    )  # fmt: skip
    for n, name in ((9, "message type"), (10, "message control id"), (12, "version id")):
        if not f(n):
            errors.append(HeaderError("MSH", n, "101", f"MSH-{n} ({name}) is required"))
    return header, errors


def _sane_encoding(encoding: str, fs: str) -> bool:
    chars = encoding[:4]
    if len(encoding) not in (4, 5) or len(set(encoding)) != len(encoding) or fs in encoding:
        return False
    return not any(c.isalnum() or c.isspace() for c in chars)


def _unknown_sender(header: Header) -> HeaderError:
    app = header.component(header.sending_application)
    facility = header.component(header.sending_facility)
    problem = (
        f"sender MSH-3 {app!r}, MSH-4 {facility!r} is not on this server's list of senders "
        "(--hl7-sender)"
    )
    return HeaderError("MSH", 3, "207", problem)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) from PEM files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
