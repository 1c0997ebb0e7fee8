"""The values that cross into load worker processes (picklable); see :mod:`bench.loadgen`."""

from __future__ import annotations

import importlib
import sys
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bench.loadgen_worker import Session

T = TypeVar("T")

FHIR_JSON = (("Content-Type", "application/fhir+json"),)


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request; recorded under ``label`` (default: the method)."""

    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    label: str = ""

    @classmethod
    def post(cls, path: str, body: bytes, label: str = "") -> Request:
        return cls("POST", path, body, FHIR_JSON, label)

    @classmethod
    def put(cls, path: str, body: bytes, label: str = "") -> Request:
        return cls("PUT", path, body, FHIR_JSON, label)

    @classmethod
    def get(cls, path: str, label: str = "") -> Request:
        return cls("GET", path, None, (), label)


Case = Callable[["Session"], Awaitable[None]]
"""A stateful flow: any number of requests through the session, one at a time, in order."""

Item = Request | Case
"""What a workload yields: a request to send as is, or a case to run."""


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """Who a worker is: passed to the workload factory in every worker process."""

    index: int  # 0 … workers - 1
    workers: int
    connections: int  # concurrent connections (lanes) of this worker
    base_url: str
    outputs: list[Any] = field(default_factory=list)

    def output(self, value: Any) -> None:
        """Hand ``value`` (picklable) back to the parent: ``LoadResult.outputs``, in worker
        order (e.g. the ids a create workload got, for a read workload that follows)."""
        self.outputs.append(value)

    def shard(self, items: Sequence[T]) -> Sequence[T]:
        """This worker's share of ``items`` (every ``workers``-th, from ``index``)."""
        return items[self.index :: self.workers]


@dataclass(frozen=True)
class Workload:
    """A picklable recipe: ``factory(worker, *args, **kwargs)`` → an iterable of items.

    ``factory`` names a module-level function as ``"package.module:function"``; it is imported
    and called once in each worker process, before the timed interval.
    """

    factory: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, function: Callable[..., Iterable[Item]], *args: Any, **kwargs: Any) -> Workload:
        """From a module-level function (its module must be importable by the workers)."""
        module = function.__module__
        if module == "__main__":  # run as ``python -m pkg.mod``: name the module itself
            spec = getattr(sys.modules["__main__"], "__spec__", None)
            module = spec.name if spec is not None else module
        return cls(f"{module}:{function.__qualname__}", args, kwargs)

    @classmethod
    def requests(cls, requests: Sequence[Request]) -> Workload:
        """A fixed list of requests, split among the workers (each sends its shard once)."""
        return cls(f"{__name__}:shard_of", (tuple(requests),))

    def build(self, worker: WorkerContext) -> Iterable[Item]:
        module, _, name = self.factory.partition(":")
        target: Any = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
        items: Iterable[Item] = target(worker, *self.args, **self.kwargs)
        return items


def shard_of(worker: WorkerContext, requests: Sequence[Request]) -> Iterable[Item]:
    return worker.shard(requests)


@dataclass(slots=True)
class LabelRecord:
    """Per label: every latency (seconds, in completion order) and the count of each status."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    statuses: Counter[int] = field(default_factory=Counter)


@dataclass(slots=True)
class WorkerResult:
    index: int
    labels: dict[str, LabelRecord]
    exceptions: Counter[str]
    first_start: float  # perf_counter (CLOCK_MONOTONIC: comparable across processes)
    last_end: float
    cpu_seconds: float  # this worker process, during its timed interval
    wall_seconds: float
    outputs: list[Any]


@dataclass(frozen=True, slots=True)
class WorkerReady:
    index: int


@dataclass(frozen=True, slots=True)
class WorkerFailure:
    index: int
    traceback: str
