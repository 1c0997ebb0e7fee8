"""The benchmark harness: a real server process, load worker processes, the HTTP load client.

The workload factories below are module-level so that the spawned load workers can import them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest

from bench.harness import ServerError, ServerProcess, free_port, port_is_open
from bench.httpload import HttpClient, HttpError, id_from_location
from bench.loadgen import (
    FHIR_JSON,
    Item,
    LoadError,
    Request,
    Session,
    WorkerContext,
    Workload,
    percentile,
    run_load,
)

pytestmark = pytest.mark.socket

PATIENT = orjson.dumps({"resourceType": "Patient", "name": [{"family": "Chalmers"}]})
OBSERVATION = orjson.dumps({
    "resourceType": "Observation", "status": "final", "code": {"text": "body weight"},
    "subject": {"reference": "Patient/PLACEHOLDER"},
})  # fmt: skip


def patient_cases(worker: WorkerContext, total: int) -> Iterator[Item]:
    """Per case: POST a Patient, POST an Observation whose subject is rewritten to the id the
    server assigned, read the Observation back and check the reference."""

    async def case(session: Session) -> None:
        created = await session.request("POST", "/fhir/Patient", PATIENT, FHIR_JSON, label="create")
        patient_id = created.resource_id()
        reference = f"Patient/{patient_id}".encode()
        body = OBSERVATION.replace(b"Patient/PLACEHOLDER", reference)
        posted = await session.request("POST", "/fhir/Observation", body, FHIR_JSON, label="create")
        path = f"/fhir/Observation/{posted.resource_id()}"
        read = await session.request("GET", path, label="read")
        if read.json()["subject"]["reference"] != reference.decode():
            raise AssertionError("the reference was not rewritten")
        worker.output(patient_id)

    for _ in worker.shard(range(total)):
        yield case


def bad_requests(worker: WorkerContext) -> Iterator[Item]:
    async def broken_case(session: Session) -> None:
        await session.request("GET", "/fhir/Patient/nobody", label="case")
        raise ValueError("a workload bug")

    for n in worker.shard(range(20)):
        yield Request.get("/fhir/NoSuchType/x", label="bad-type")
        yield Request.get(f"/fhir/Patient/missing-{n}", label="missing")
        yield broken_case


def slow_start(worker: WorkerContext, delay: float, path: str) -> Iterator[Item]:
    time.sleep(delay)  # import and set-up time of a workload: must not be timed
    for _ in worker.shard(range(20)):
        yield Request.get(path)


def endless(worker: WorkerContext, path: str) -> Iterator[Item]:
    while True:
        yield Request.get(path, label="endless")


def dies(worker: WorkerContext) -> Iterator[Item]:
    os._exit(3)  # a worker killed (OOM, signal) before it reports anything


def raises(worker: WorkerContext) -> Iterator[Item]:
    raise RuntimeError("broken workload")


@pytest.fixture(scope="module")
def bench_server() -> Iterator[ServerProcess]:
    with ServerProcess() as server:
        yield server


def test_load_runs_in_worker_processes_against_a_real_server() -> None:
    with ServerProcess(env={"FHIR_SERVER_SQLITE_SYNCHRONOUS": "NORMAL"}) as server:
        pid, port, temp_dir = server.pid, server.port, server.temp_dir
        assert temp_dir is not None and temp_dir.is_dir()
        idle = server.rss_bytes()
        result = run_load(server, Workload.of(patient_cases, 200), workers=2, connections=4)
        assert server.returncode is None

    assert result.exceptions == {}
    assert result.statuses == {200: 200, 201: 400}
    assert result.requests == 600
    counts = {label: stats.latency.count for label, stats in result.labels.items()}
    assert counts == {"create": 400, "read": 200}
    assert len(set(result.outputs)) == 200
    assert result.workers == 2 and result.wall_seconds > 0 and result.throughput > 0
    lat = result.latency
    assert 0 < lat.p50 <= lat.p95 <= lat.p99 <= lat.max
    assert result.server_cpu_seconds is not None and result.server_cpu_seconds > 0
    assert result.server_cpu_ms_per_request is not None and result.server_cpu_ms_per_request > 0
    assert 20 * 2**20 < idle < 2 * 2**30
    assert result.server_rss_idle is not None and result.server_rss_peak is not None
    assert 20 * 2**20 < result.server_rss_idle <= result.server_rss_peak < 2 * 2**30
    assert result.loadgen_cpu_seconds > 0
    assert "600 requests" in result.summary()
    result.raise_for_errors()
    # stopped and cleaned up
    assert not Path(f"/proc/{pid}").exists()
    assert not port_is_open(port)
    assert not temp_dir.exists()


def test_error_statuses_and_case_exceptions_are_reported(bench_server: ServerProcess) -> None:
    result = run_load(bench_server, Workload.of(bad_requests), workers=2, connections=2)

    assert result.requests == 60
    assert sum(result.errors.values()) == 60
    assert result.labels["missing"].statuses == {404: 20}
    bad_type = result.labels["bad-type"].statuses
    assert sum(bad_type.values()) == 20 and min(bad_type) >= 400
    assert result.exceptions == {"case: ValueError: a workload bug": 20}
    assert "ERRORS" in result.summary()
    with pytest.raises(AssertionError, match="a workload bug"):
        result.raise_for_errors(allowed=frozenset({400, 404}))


def test_a_server_that_is_not_there_fails_the_run() -> None:
    base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(LoadError, match="cannot connect"):
        run_load(base_url, Workload.requests([Request.get("/fhir/metadata")]), workers=1)


@pytest.mark.parametrize(("factory", "message"), [(dies, "died"), (raises, "broken workload")])
def test_a_failing_worker_fails_the_run_at_once(
    factory: Callable[[WorkerContext], Iterator[Item]], message: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(LoadError, match=message):
        run_load(f"http://127.0.0.1:{free_port()}", Workload.of(factory), workers=2)
    assert time.perf_counter() - started < 15


def test_worker_start_up_is_outside_the_timed_interval(bench_server: ServerProcess) -> None:
    started = time.perf_counter()
    result = run_load(bench_server, Workload.of(slow_start, 1.0, "/fhir/Patient?_count=1"),
                      workers=2, connections=2)  # fmt: skip

    assert time.perf_counter() - started > 1.0
    assert result.statuses == {200: 20}
    assert result.wall_seconds < 0.9


def test_duration_bounds_an_endless_workload(bench_server: ServerProcess) -> None:
    result = run_load(
        bench_server, Workload.of(endless, "/fhir/Patient?_count=1"), workers=2, connections=2,
        duration=0.5,
    )  # fmt: skip

    assert result.requests > 0 and set(result.statuses) == {200}
    assert 0.4 < result.wall_seconds < 3.0


def test_percentile_is_nearest_rank() -> None:
    ordered = [float(n) for n in range(1, 101)]
    assert [percentile(ordered, p) for p in (50, 95, 99, 100)] == [50.0, 95.0, 99.0, 100.0]
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 99) == 7.0


# -- the HTTP client against a hand-written server ------------------------------------------

Answer = Callable[[bytes], bytes | None]  # request head → raw response (None: close instead)


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[int]:
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            raw = answer(head)
            if raw is None:
                return
            writer.write(raw)
            await writer.drain()
            if b"connection: close" in raw.lower():
                return

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def _by_path(head: bytes) -> bytes | None:
    path = head.split(b" ")[1]
    if path == b"/chunked":
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n"
                b"1\r\n \r\n5\r\nworld\r\n0\r\nX-Trailer: t\r\n\r\n")  # fmt: skip
    if path == b"/created":
        return (b"HTTP/1.1 201 Created\r\nLocation: http://h/fhir/Patient/abc/_history/1\r\n"
                b"ETag: W/\"1\"\r\nContent-Length: 2\r\n\r\n{}")  # fmt: skip
    if path == b"/empty":
        return b"HTTP/1.1 204 No Content\r\n\r\n"
    if path == b"/head":
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
    if path == b"/until-close":
        return b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    if path == b"/continue":
        return b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    return None  # /drop: close without answering


async def test_http_client_framing() -> None:
    async with raw_server(_by_path) as port:
        client = HttpClient("127.0.0.1", port)
        chunked = await client.request("GET", "/chunked")
        assert (chunked.status, chunked.body) == (200, b"hello world")
        created = await client.request("POST", "/created", b'{"a":1}', FHIR_JSON)
        assert created.status == 201 and created.etag == 'W/"1"' and created.json() == {}
        assert created.resource_id() == "abc"
        assert (await client.request("DELETE", "/empty")).body == b""
        assert (await client.request("HEAD", "/head")).body == b""
        assert (await client.request("GET", "/continue")).body == b"ok"
        until_close = await client.request("GET", "/until-close")
        assert until_close.body == b"all of it"
        assert (await client.request("GET", "/chunked")).body == b"hello world"  # reconnected
        with pytest.raises(HttpError, match="closed before the response"):
            await client.request("GET", "/drop")
        await client.close()


async def test_http_client_retries_once_when_an_idle_connection_was_closed() -> None:
    answers: list[bytes | None] = [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", None]
    answers += [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"]

    async with raw_server(lambda head: answers.pop(0)) as port:
        client = HttpClient("127.0.0.1", port)
        assert (await client.request("GET", "/")).body == b"a"
        # the server closes the kept-alive connection on the next request without answering
        assert (await client.request("GET", "/")).body == b"b"
        assert answers == []
        await client.close()


def test_id_from_location() -> None:
    assert id_from_location("http://h/fhir/Patient/p1/_history/3") == "p1"
    assert id_from_location("http://h/fhir/Patient/p1") == "p1"
    with pytest.raises(HttpError):
        id_from_location("")


def test_server_start_failure_carries_the_log(tmp_path: Path) -> None:
    # the server refuses --auth off on an address other than loopback (without --insecure)
    server = ServerProcess(tmp_path / "mine", args=("--host", "192.0.2.1"), start_timeout=30)
    with pytest.raises(ServerError, match="server log") as failure:
        server.start()
    assert "loopback" in str(failure.value)
    assert server.temp_dir is not None and not server.temp_dir.exists()
    assert server.returncode is None
