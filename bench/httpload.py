"""A small, fast HTTP/1.1 client for load generation (stdlib asyncio only).

One :class:`HttpClient` is one keep-alive connection with one request in flight at a time, which
is what a load generator's "connection" is. It speaks exactly what the benchmarks need:
``Content-Length`` request bodies; responses framed by ``Content-Length``, ``chunked`` or
connection close; no body for ``HEAD``, 1xx, 204 and 304. It is an :class:`asyncio.Protocol`,
so a request costs one ``transport.write`` and one future, several times cheaper than httpx
(``python -m bench.httpload_bench`` measures both against a trivial server).

    client = HttpClient("127.0.0.1", port)
    response = await client.request("POST", "/fhir/Patient", body,
                                     headers=(("Content-Type", "application/fhir+json"),))
    response.status, response.location, response.etag, response.json()
    await client.close()

A request on a reused connection that the server closed while it was idle (keep-alive timeout)
is retried once on a fresh connection, provided no byte of the response had arrived: the server
never read it. Every other failure raises :class:`HttpError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import orjson

Headers = Iterable[tuple[str, str]]

_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _TRAILERS, _UNTIL_CLOSE = range(6)


class HttpError(Exception):
    """The connection failed or the response could not be parsed."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; repeated headers joined with ", "
    body: bytes

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    def json(self) -> Any:
        return orjson.loads(self.body)

    def resource_id(self) -> str:
        """The logical id in ``Location: …/{type}/{id}/_history/{vid}`` (or ``…/{type}/{id}``)."""
        return id_from_location(self.location or "")


def id_from_location(location: str) -> str:
    parts = location.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-2] == "_history":
        return parts[-3]
    if not parts[-1]:
        raise HttpError(f"no resource id in Location {location!r}")
    return parts[-1]


class _Protocol(asyncio.Protocol):
    """The parser: feeds on ``data_received`` and resolves one future per response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.received_any = False
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Response] | None = None
        self._no_body = False
        self._state = _HEAD
        self._status = 0
        self._headers: dict[str, str] = {}
        self._remaining = 0
        self._body = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def begin(self, waiter: asyncio.Future[Response], no_body: bool) -> None:
        self._waiter, self._no_body, self._state = waiter, no_body, _HEAD
        self.received_any = False
        self._body = bytearray()
        self._buffer.clear()  # anything left is unsolicited: never the answer to this request

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        self._buffer += data
        if self._waiter is None:
            return  # unsolicited bytes: dropped when the next request begins
        try:
            self._advance()
        except (ValueError, IndexError) as exc:
            self._fail(HttpError(f"malformed HTTP response: {exc}"))
            self.abort()

    def eof_received(self) -> bool:
        self.closed = True
        if self._waiter is not None and self._state == _UNTIL_CLOSE:
            self._body += self._buffer
            self._finish()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is not None and self._state == _UNTIL_CLOSE and exc is None:
            self._body += self._buffer
            self._finish()
        self._fail(HttpError(f"connection closed before the response was complete ({exc})"))

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, error: HttpError) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)

    def _finish(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, self._headers, bytes(self._body)))

    def _advance(self) -> None:
        buffer = self._buffer
        while self._waiter is not None:
            state = self._state
            if state == _HEAD:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                self._start_body(head)
            elif state == _LENGTH:
                if len(buffer) < self._remaining:
                    return
                self._body += buffer[: self._remaining]
                del buffer[: self._remaining]
                self._finish()
            elif state == _CHUNK_SIZE:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
                del buffer[: end + 2]
                self._remaining, self._state = size, (_CHUNK_DATA if size else _TRAILERS)
            elif state == _CHUNK_DATA:
                if len(buffer) < self._remaining + 2:
                    return
                self._body += buffer[: self._remaining]
                del buffer[: self._remaining + 2]
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return
                del buffer[: end + 2]
                if end == 0:
                    self._finish()
            else:  # _UNTIL_CLOSE: completed by eof_received / connection_lost
                self._body += buffer
                buffer.clear()
                return

    def _start_body(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status_line = lines[0]
        if not status_line.startswith(b"HTTP/1."):
            raise ValueError("not an HTTP/1.x status line")
        status = int(status_line[9:12])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.strip().lower().decode("latin-1")
            text = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if 100 <= status < 200:
            return  # interim response: the real head follows
        self._status, self._headers = status, headers
        if headers.get("connection", "").lower() == "close":
            self.closed = True
        if self._no_body or status in (204, 304):
            self._finish()
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = _CHUNK_SIZE
        elif "content-length" in headers:
            self._remaining, self._state = int(headers["content-length"]), _LENGTH
        else:
            self._state, self.closed = _UNTIL_CLOSE, True


class HttpClient:
    """One keep-alive HTTP/1.1 connection to ``host:port``, opened lazily, one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._host_header = f"{host}:{port}"
        self._protocol: _Protocol | None = None
        self._used = False  # whether the current connection has carried a request already
        self._busy = False

    async def connect(self) -> None:
        """Open the connection now (load generators connect before the timed interval)."""
        if self._protocol is None or self._protocol.closed:
            loop = asyncio.get_running_loop()
            try:
                _, protocol = await loop.create_connection(_Protocol, self.host, self.port)
            except OSError as exc:
                raise HttpError(f"cannot connect to {self._host_header}: {exc}") from exc
            self._protocol, self._used = protocol, False

    async def request(
        self, method: str, path: str, body: bytes | None = None, headers: Headers = ()
    ) -> Response:
        if self._busy:
            raise RuntimeError("HttpClient carries one request at a time; use one per lane")
        self._busy = True
        try:
            payload = self._encode(method, path, body, headers)
            try:
                return await self._exchange(payload, method == "HEAD")
            except _IdleClosed:
                return await self._exchange(payload, method == "HEAD")
        finally:
            self._busy = False

    async def close(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.closed = True
            protocol.transport.close()

    def _encode(self, method: str, path: str, body: bytes | None, headers: Headers) -> bytes:
        lines = [f"{method} {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers)
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body) if body is not None else 0}\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        return head + body if body else head

    async def _exchange(self, payload: bytes, no_body: bool) -> Response:
        await self.connect()
        protocol = self._protocol
        assert protocol is not None and protocol.transport is not None
        reused, self._used = self._used, True
        waiter: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        protocol.begin(waiter, no_body)
        protocol.transport.write(payload)
        try:
            response = await waiter
        except HttpError:
            protocol.abort()
            if reused and not protocol.received_any:
                raise _IdleClosed from None
            raise
        if protocol.closed:
            await self.close()
        return response


class _IdleClosed(Exception):
    """The server closed an idle keep-alive connection before reading the request."""
