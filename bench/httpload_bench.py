"""``python -m bench.httpload_bench``: requests/s of the load client against a trivial server.

Both sides run in this one process on one event loop, so the figure is the cost of client plus
server per request; the server (a bare asyncio protocol answering a fixed 200) is the same for
every client, so the ratio between clients is the ratio of their costs. Compared: our
:class:`~bench.httpload.HttpClient` and ``httpx.AsyncClient`` (if installed), each on the
standard asyncio loop and on uvloop, with 1 and 8 concurrent connections. CPU seconds per
request (``time.process_time``) are printed too: the machines are shared, read the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import cast

from bench.httpload import HttpClient

_BODY = b'{"resourceType":"Patient","id":"x","meta":{"versionId":"1"}}'
_ANSWER = (
    b'HTTP/1.1 200 OK\r\ncontent-type: application/fhir+json\r\netag: W/"1"\r\n'
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class TrivialServer(asyncio.Protocol):
    """Answers every request (head plus ``Content-Length`` body) with the same 200."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self._buffer[:end]).lower()
            length = 0
            if (at := head.find(b"content-length:")) >= 0:
                length = int(head[at + 15 :].split(b"\r\n", 1)[0])
            if len(self._buffer) < end + 4 + length:
                return
            del self._buffer[: end + 4 + length]
            assert self._transport is not None
            self._transport.write(_ANSWER)


Sender = Callable[[], Awaitable[int]]
Lane = tuple[Sender, Callable[[], Awaitable[None]]]  # send one request; close
MakeLane = Callable[[int], Awaitable[Lane]]


async def _measure(make: MakeLane, port: int, n: int, connections: int) -> tuple[float, float]:
    lanes = [await make(port) for _ in range(connections)]
    for send, _ in lanes:
        await send()  # connect and warm up
    per_lane = n // connections

    async def lane(send: Sender) -> None:
        for _ in range(per_lane):
            if await send() != 200:
                raise RuntimeError("unexpected status")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(send) for send, _ in lanes))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    for _, close in lanes:
        await close()
    total = per_lane * connections
    return total / wall, cpu / total


async def _ours(port: int) -> Lane:
    client = HttpClient("127.0.0.1", port)

    async def send() -> int:
        return (await client.request("GET", "/fhir/Patient/x")).status

    return send, client.close


async def _httpx(port: int) -> Lane:
    import httpx

    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}")

    async def send() -> int:
        return (await client.get("/fhir/Patient/x")).status_code

    return send, client.aclose


async def _run(n: int) -> None:
    server = await asyncio.get_running_loop().create_server(TrivialServer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients: list[tuple[str, MakeLane]] = [("HttpClient", _ours)]
    try:
        import httpx  # noqa: F401

        clients.append(("httpx", _httpx))
    except ImportError:
        pass
    for connections in (1, 8):
        for name, make in clients:
            count = n if name == "HttpClient" else max(n // 5, connections)
            rate, cpu = await _measure(make, port, count, connections)
            print(f"  {name:10} {connections} conn  {rate:9.0f} req/s  {cpu * 1e6:7.1f} µs CPU/req")
    server.close()
    await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.httpload_bench")
    parser.add_argument("--n", type=int, default=20000, help="requests per measurement")
    args = parser.parse_args()
    print("asyncio loop (client and trivial server in one process)")
    asyncio.run(_run(args.n))
    try:
        import uvloop
    except ImportError:
        return
    print("uvloop")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_run(args.n))


if __name__ == "__main__":
    main()
