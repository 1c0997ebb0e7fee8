"""MLLP (Release 1) framing: ``<SB>=0x0B`` message ``<EB>=0x1C <CR>=0x0D``, over asyncio streams.

:class:`FrameReader` turns a byte stream into :class:`Frame` events, one per message or per
problem, so that the listener can answer each in order on a persistent connection:

- ``message``: the bytes between a start block and the end block;
- ``oversize``: a frame longer than the maximum; only its first :data:`HEAD_BYTES` are kept (to
  read MSH-10 for the AR), the rest is discarded up to the end block, and reading goes on;
- ``unframed``: bytes that end with an end block but had no start block; answered AR when they
  look like a message (start with ``MSH``), otherwise skipped as garbage;
- ``truncated``: the peer stopped (EOF or read timeout) in the middle of a frame.

Bytes between frames that are not a start block are garbage: whitespace and NUL (some senders
pad frames with them) silently, anything else logged by its length only (never its content:
it may be PHI) and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

from fhir_server.core.waiting import wait_within

START = b"\x0b"
END = b"\x1c\x0d"
HEAD_BYTES = 4096
_CHUNK = 64 * 1024
_PADDING = b" \t\r\n\x00"

FrameKind = Literal["message", "oversize", "unframed", "truncated"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    data: bytes  # the message; for oversize/unframed/truncated: what was kept of its start
    size: int  # the bytes the frame had in all


def frame(message: bytes) -> bytes:
    return START + message + END


class ReadTimeout(Exception):
    """No complete frame within the read timeout."""

    def __init__(self, partial: bytes) -> None:
        super().__init__("read timeout")
        self.partial = partial


class FrameReader:
    """Frames from ``reader``; :meth:`next` returns None at the end of the stream and raises
    :class:`ReadTimeout` when the peer sends nothing for ``timeout`` seconds."""

    def __init__(self, reader: asyncio.StreamReader, *, max_bytes: int, timeout: float) -> None:
        self._reader = reader
        self._max = max_bytes
        self._timeout = timeout
        self._buffer = bytearray()
        self._eof = False

    async def _fill(self, partial: bytes = b"") -> bool:
        """Read more bytes into the buffer; False at the end of the stream."""
        if self._eof:
            return False
        try:
            chunk = await wait_within(self._reader.read(_CHUNK), self._timeout)
        except TimeoutError:
            raise ReadTimeout(partial) from None
        if not chunk:
            self._eof = True
            return False
        self._buffer += chunk
        return True

    async def next(self) -> Frame | None:
        while True:
            start = self._buffer.find(START)
            end = self._buffer.find(END)
            if end != -1 and (start == -1 or end < start):
                unframed = self._unframed(end)
                if unframed is not None:
                    return unframed
                continue
            if start != -1:
                self._skip(start)
                return await self._frame()
            looks_like_message = bytes(self._buffer[:HEAD_BYTES]).lstrip(_PADDING)[:3] == b"MSH"
            if not looks_like_message or len(self._buffer) > self._max:
                self._skip(max(len(self._buffer) - 1, 0))  # keep a last 0x1C: END may follow
            if not await self._fill():
                self._skip(len(self._buffer))
                return None

    def _skip(self, count: int) -> None:
        """Drop ``count`` bytes of garbage from the buffer, logging any that are not padding
        (a lone 0x1C may be the first half of an end block: it is kept, never counted)."""
        dropped = bytes(self._buffer[:count])
        del self._buffer[:count]
        meaningful = dropped.strip(_PADDING).replace(b"\x00", b"")
        if meaningful and meaningful != b"\x1c":
            log.warning("MLLP: skipped %d bytes between frames (no start block)", len(dropped))

    def _unframed(self, end: int) -> Frame | None:
        data = bytes(self._buffer[:end]).lstrip(_PADDING)
        del self._buffer[: end + len(END)]
        if data.startswith(b"MSH"):
            return Frame("unframed", data[:HEAD_BYTES], len(data))
        if data.strip(_PADDING):
            log.warning("MLLP: skipped %d bytes between frames (no start block)", len(data))
        return None

    async def _frame(self) -> Frame:
        """The buffer starts with START: read up to END."""
        searched = 1
        while True:
            end = self._buffer.find(END, searched)
            if end != -1:
                data = bytes(self._buffer[1:end])
                del self._buffer[: end + len(END)]
                if len(data) > self._max:
                    return Frame("oversize", data[:HEAD_BYTES], len(data))
                return Frame("message", data, len(data))
            if len(self._buffer) - 1 > self._max:
                return await self._discard_oversize()
            searched = max(len(self._buffer) - 1, 1)
            if not await self._fill(bytes(self._buffer[1 : 1 + HEAD_BYTES])):
                data = bytes(self._buffer[1:])
                self._buffer.clear()
                return Frame("truncated", data[:HEAD_BYTES], len(data))

    async def _discard_oversize(self) -> Frame:
        head = bytes(self._buffer[1 : 1 + HEAD_BYTES])
        size = len(self._buffer) - 1
        self._buffer.clear()
        pending = b""
        while True:
            if not await self._fill(head):
                return Frame("truncated", head, size)
            joined = pending + bytes(self._buffer)
            end = joined.find(END)
            if end != -1:
                size += end - len(pending)
                self._buffer = bytearray(joined[end + len(END) :])
                return Frame("oversize", head, size)
            size += len(self._buffer)
            pending = joined[-1:]
            self._buffer.clear()
