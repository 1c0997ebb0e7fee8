"""Load generation in worker processes, so the load generator is not the bottleneck.

``run_load(server, workload, workers=W, connections=C)`` starts W worker processes
(``forkserver``: forked from a clean process that has imported this package, not from the
caller); each builds the workload, opens C keep-alive connections ("lanes") to the server,
reports that it is ready, and waits. When every worker is ready, the parent reads the server's
CPU time and RSS and gives the start signal; the lanes then pull items from the worker's
workload until it is exhausted or ``duration`` seconds have passed. Process start-up, imports,
building the workload and connecting are never timed. A worker that fails or dies fails the
run at once (:class:`LoadError`, with its traceback).

A **workload** is a picklable recipe, :class:`Workload` ``(factory="pkg.module:function", args,
kwargs)`` or ``Workload.of(function, *args)``: in every worker, ``function(worker, *args,
**kwargs)`` is called once with a :class:`WorkerContext` (``index``, ``workers``,
``connections``, ``base_url``, ``shard(seq)``) and returns an iterable (a generator is best) of
**items**, each either

- a :class:`Request` (method, path, body, headers, label), sent as is, or
- a **case**: an ``async def case(session)`` that sends any number of requests through
  ``await session.request(method, path, body, headers, label=...)``, which returns the
  :class:`~bench.httpload.Response` (status, headers, body, ``location``, ``etag``,
  ``resource_id()``, ``json()``), so it can use what the server answered (ids, versions).

The lanes of one worker share its iterator, one event loop and whatever the generator closes
over, so state carries across requests with no locking: ids created by one case can be read,
updated or deleted by later items. A fixed list of requests is ``Workload.requests(list)``
(each worker sends its ``shard``); an endless generator with ``duration=`` runs for a time.

Every request is recorded with its latency (``perf_counter``, from before the write to the end
of the body) and status under its label (default: the method). A request that got no response
counts as status 0 and ends its case; an exception in a case is counted in ``exceptions`` and
the lane goes on. Nothing is hidden: :class:`LoadResult` has every status, ``errors``,
``exceptions``, ``raise_for_errors()`` and ``summary()``, throughput over the interval from the
first request start to the last request end across workers, p50/p95/p99 overall and per label,
the server's CPU seconds during the run (→ ``server_cpu_ms_per_request``,
``requests_per_server_cpu_second``), its RSS before and at peak, and the load workers' own CPU
(``loadgen_busiest`` near 1.0 means a worker saturated its core: add workers).

Example (in a module the workers can import, e.g. ``bench/workloads.py``)::

    from bench.harness import ServerProcess
    from bench.loadgen import Request, Session, Workload, WorkerContext, run_load

    def crud_mix(worker: WorkerContext, known_ids: list[str], seed: int):
        rng = random.Random(seed * 1000 + worker.index)
        ids = list(worker.shard(known_ids))          # this worker's state

        async def create(session: Session) -> None:
            response = await session.request("POST", "/fhir/Patient", PATIENT, FHIR_JSON,
                                             label="create")
            if response.status == 201:
                ids.append(response.resource_id())

        async def delete(session: Session) -> None:
            id = ids.pop(rng.randrange(len(ids)))   # gone from the pool before the request
            await session.request("DELETE", f"/fhir/Patient/{id}", label="delete")

        while True:
            x = rng.random()
            if x < 0.60:
                yield Request.get(f"/fhir/Patient/{rng.choice(ids)}", label="read")
            elif x < 0.80:
                yield create
            elif x < 0.95:
                yield Request.put(f"/fhir/Patient/{rng.choice(ids)}", ..., label="update")
            else:
                yield delete

    def cases(worker: WorkerContext, cases: list[list[bytes]]):
        for resources in worker.shard(cases):        # one case: a Patient and what refers to it
            async def post_case(session: Session, resources=resources) -> None:
                response = await session.request("POST", "/fhir/Patient", resources[0],
                                                 FHIR_JSON, label="Patient")
                ref = f"Patient/{response.resource_id()}".encode()
                for body in resources[1:]:
                    await session.request("POST", "/fhir/Observation",
                                          body.replace(b"Patient/PLACEHOLDER", ref),
                                          FHIR_JSON, label="Observation")
            yield post_case

    with ServerProcess() as server:
        result = run_load(server, Workload.of(crud_mix, ids, 7), workers=2, connections=8,
                          duration=10)
        print(result.summary("CRUD mix"))
        result.raise_for_errors()
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import time
from collections.abc import Sequence
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Literal, Protocol, TypeVar

from bench.harness import Sampler
from bench.loadgen_model import (
    FHIR_JSON,
    Case,
    Item,
    Request,
    WorkerContext,
    WorkerFailure,
    WorkerReady,
    WorkerResult,
    Workload,
)
from bench.loadgen_stats import LatencyStats, LoadResult, merge, percentile
from bench.loadgen_worker import Session, worker_main

__all__ = [
    "FHIR_JSON",
    "Case",
    "Item",
    "LatencyStats",
    "LoadError",
    "LoadResult",
    "Request",
    "Session",
    "WorkerContext",
    "Workload",
    "percentile",
    "run_load",
]


T = TypeVar("T", WorkerReady, WorkerResult)


class LoadError(RuntimeError):
    """A worker failed (its traceback is in the message) or the run timed out."""


class Target(Protocol):
    """What ``run_load`` needs of a server: :class:`bench.harness.ServerProcess` is one."""

    @property
    def base_url(self) -> str: ...

    def cpu_seconds(self) -> float: ...

    def rss_bytes(self) -> int: ...


def run_load(
    target: Target | str,
    workload: Workload,
    *,
    workers: int = 2,
    connections: int = 8,
    duration: float | None = None,
    timeout: float = 600.0,
    ready_timeout: float = 60.0,
    start_method: Literal["forkserver", "spawn"] = "forkserver",
) -> LoadResult:
    """Run ``workload`` with ``workers`` processes, ``connections`` lanes each; see the module doc.

    ``target`` is a server (its CPU and RSS are measured) or a base URL (they are not).
    ``duration`` stops pulling new items after that many seconds; without it, the run ends
    when every worker's items are exhausted. ``timeout`` bounds the whole timed interval.
    """
    base_url = target if isinstance(target, str) else target.base_url
    server = None if isinstance(target, str) else target
    if start_method == "forkserver":
        context: ForkServerContext | SpawnContext = multiprocessing.get_context("forkserver")
        # workers fork from a clean server process that has the worker code imported already
        context.set_forkserver_preload(["bench.loadgen_worker"])
    else:
        context = multiprocessing.get_context("spawn")
    start = context.Event()
    results = context.Queue()
    shared = (workload, duration, start, results, ready_timeout)
    processes = [
        context.Process(
            target=worker_main,
            args=(WorkerContext(index, workers, connections, base_url), *shared),
            name=f"load-worker-{index}",
            daemon=True,
        )
        for index in range(workers)
    ]
    for process in processes:
        process.start()
    sampler = Sampler(server.rss_bytes) if server is not None else None
    cpu_before = cpu_after = rss_idle = None
    finished = False
    try:
        _gather(results, processes, WorkerReady, ready_timeout, "getting ready")
        if server is not None:
            cpu_before, rss_idle = server.cpu_seconds(), server.rss_bytes()
        if sampler is not None:
            sampler.start()
        start.set()
        collected = _gather(results, processes, WorkerResult, (duration or 0) + timeout, "running")
        if server is not None:
            cpu_after = server.cpu_seconds()
        finished = True
    finally:
        if sampler is not None:
            sampler.stop()
        _end(processes, finished)
    result = merge(collected, connections)
    if cpu_before is None or cpu_after is None:
        return result
    return dataclasses.replace(
        result,
        server_cpu_seconds=cpu_after - cpu_before,
        server_rss_idle=rss_idle,
        server_rss_peak=sampler.peak if sampler is not None else None,
    )


def _gather(
    results: multiprocessing.Queue[object],
    processes: Sequence[BaseProcess],
    kind: type[T],
    timeout: float,
    doing: str,
) -> list[T]:
    """One ``kind`` report per worker. Fails at once on a WorkerFailure, and within a second
    if a worker died without reporting (e.g. killed), or after ``timeout``."""
    reports: dict[int, T] = {}
    deadline = time.monotonic() + timeout
    while len(reports) < len(processes):
        try:
            item = results.get(timeout=1.0)
        except queue.Empty:
            dead = [
                f"worker {i} died (exit code {p.exitcode}) while {doing}"
                for i, p in enumerate(processes)
                if i not in reports and p.exitcode is not None
            ]
            if dead:
                raise LoadError("\n".join(dead)) from None
            if time.monotonic() > deadline:
                raise LoadError(f"the workers were still {doing} after {timeout:.0f} s") from None
            continue
        if isinstance(item, WorkerFailure):
            raise LoadError(f"worker {item.index} failed while {doing}:\n{item.traceback}")
        assert isinstance(item, kind), item
        reports[item.index] = item
    return [reports[i] for i in sorted(reports)]


def _end(processes: Sequence[BaseProcess], finished: bool) -> None:
    """Join the workers; after a failure, stop the others at once."""
    for process in processes:
        if not finished and process.is_alive():
            process.terminate()
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()
