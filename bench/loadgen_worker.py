"""Inside one load worker process: C lanes (connections) pulling items from one workload."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any
from urllib.parse import urlsplit

from bench.httpload import Headers, HttpClient, HttpError, Response
from bench.loadgen_model import (
    Item,
    LabelRecord,
    Request,
    WorkerContext,
    WorkerFailure,
    WorkerReady,
    WorkerResult,
    Workload,
)

_MAX_EXCEPTION_KINDS = 50


class RequestFailed(Exception):
    """A request got no response (recorded as status 0); ends the case that sent it."""


class Recorder:
    """Latency and status of every request of this worker, per label."""

    def __init__(self) -> None:
        self.labels: dict[str, LabelRecord] = {}
        self.exceptions: Counter[str] = Counter()
        self.first_start = float("inf")
        self.last_end = float("-inf")

    def record(self, label: str, started: float, ended: float, status: int) -> None:
        record = self.labels.get(label)
        if record is None:
            record = self.labels[label] = LabelRecord()
        record.latencies.append(ended - started)
        record.statuses[status] += 1
        self.first_start = min(self.first_start, started)
        self.last_end = max(self.last_end, ended)

    def exception(self, where: str, exc: BaseException) -> None:
        key = f"{where}: {type(exc).__name__}: {exc}"[:300]
        if key in self.exceptions or len(self.exceptions) < _MAX_EXCEPTION_KINDS:
            self.exceptions[key] += 1
        else:
            self.exceptions["(other exceptions)"] += 1


class Session:
    """What a case gets: its worker, and a recording HTTP client on the lane's connection."""

    def __init__(self, worker: WorkerContext, client: HttpClient, recorder: Recorder) -> None:
        self.worker = worker
        self._client = client
        self._recorder = recorder

    async def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Headers = (),
        *,
        label: str = "",
    ) -> Response:
        """Send and record one request; raises :class:`RequestFailed` if no response came."""
        started = time.perf_counter()
        try:
            response = await self._client.request(method, path, body, headers)
        except HttpError as exc:
            self._recorder.record(label or method, started, time.perf_counter(), 0)
            self._recorder.exception("request", exc)
            raise RequestFailed(str(exc)) from exc
        self._recorder.record(label or method, started, time.perf_counter(), response.status)
        return response

    async def send(self, request: Request) -> Response:
        return await self.request(
            request.method, request.path, request.body, request.headers, label=request.label
        )


async def _lane(
    session: Session, items: Iterator[Item], deadline: float, recorder: Recorder
) -> None:
    while time.perf_counter() < deadline:
        item = next(items, None)
        if item is None:
            return
        try:
            if isinstance(item, Request):
                await session.send(item)
            else:
                await item(session)
        except RequestFailed:
            pass  # already recorded as status 0 with its reason
        except Exception as exc:
            recorder.exception("case", exc)


async def _run_worker(
    worker: WorkerContext,
    workload: Workload,
    duration: float | None,
    start: Event,
    results: Queue[Any],
    ready_timeout: float,
) -> WorkerResult:
    items: Iterable[Item] = workload.build(worker)
    url = urlsplit(worker.base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    clients = [HttpClient(host, port) for _ in range(worker.connections)]
    await asyncio.gather(*(client.connect() for client in clients))
    results.put(WorkerReady(worker.index))
    loop = asyncio.get_running_loop()
    if not await loop.run_in_executor(None, start.wait, ready_timeout):
        raise TimeoutError("the start signal never came")
    recorder = Recorder()
    iterator = iter(items)
    cpu, wall = time.process_time(), time.perf_counter()
    deadline = wall + duration if duration is not None else float("inf")
    lanes = (_lane(Session(worker, c, recorder), iterator, deadline, recorder) for c in clients)
    await asyncio.gather(*lanes)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for client in clients:
        await client.close()
    return WorkerResult(
        worker.index, recorder.labels, recorder.exceptions,
        recorder.first_start, recorder.last_end, cpu, wall, worker.outputs,
    )  # fmt: skip


def worker_main(
    worker: WorkerContext,
    workload: Workload,
    duration: float | None,
    start: Event,
    results: Queue[Any],
    ready_timeout: float,
) -> None:
    """Process entry point: build the workload and connect, put a WorkerReady on ``results``,
    wait for ``start``, run, then put a WorkerResult (or, at any point, a WorkerFailure)."""
    try:
        coroutine = _run_worker(worker, workload, duration, start, results, ready_timeout)
        results.put(_run(coroutine))
    except BaseException:
        results.put(WorkerFailure(worker.index, traceback.format_exc()))


def _run(coroutine: Any) -> WorkerResult:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        result: WorkerResult = asyncio.run(coroutine)
        return result
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(coroutine)
        return result
