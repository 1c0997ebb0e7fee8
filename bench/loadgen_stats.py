"""Merging the workers' records into one :class:`LoadResult` (see :mod:`bench.loadgen`)."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.loadgen_model import WorkerResult


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of an already sorted sequence; 0.0 if empty."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latencies in milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, latencies: Sequence[float]) -> LatencyStats:
        ordered = sorted(latencies)
        if not ordered:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        ms = [percentile(ordered, p) * 1000 for p in (50, 95, 99)]
        mean = sum(ordered) / len(ordered) * 1000
        return cls(len(ordered), ms[0], ms[1], ms[2], ordered[-1] * 1000, mean)

    def line(self) -> str:
        return (
            f"p50 {self.p50:7.2f}  p95 {self.p95:7.2f}  p99 {self.p99:7.2f}  max {self.max:7.2f} ms"
        )


@dataclass(frozen=True, slots=True)
class LabelStats:
    latency: LatencyStats
    statuses: dict[int, int]


@dataclass(frozen=True)
class LoadResult:
    """Everything one load run measured. Rates are over the wall interval from the first
    request start to the last request end across all workers."""

    requests: int
    wall_seconds: float
    latency: LatencyStats
    statuses: dict[int, int]
    labels: dict[str, LabelStats]
    exceptions: dict[str, int]
    workers: int
    connections: int
    loadgen_cpu_seconds: float  # all load workers, during their timed intervals
    loadgen_busiest: float  # highest CPU/wall ratio of one worker (1.0 = one core saturated)
    server_cpu_seconds: float | None = None
    server_rss_idle: int | None = None  # bytes, just before the timed interval
    server_rss_peak: int | None = None  # bytes, sampled every ~100 ms during it
    outputs: list[Any] = field(default_factory=list)  # WorkerContext.output values

    @property
    def throughput(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def errors(self) -> dict[int, int]:
        """Statuses ≥ 400, and 0 for requests that got no response, with their counts."""
        return {s: n for s, n in self.statuses.items() if s >= 400 or s == 0}

    @property
    def error_count(self) -> int:
        return sum(self.errors.values()) + sum(self.exceptions.values())

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds * 1000 / self.requests

    @property
    def requests_per_server_cpu_second(self) -> float | None:
        if not self.server_cpu_seconds:
            return None
        return self.requests / self.server_cpu_seconds

    def raise_for_errors(self, allowed: frozenset[int] = frozenset()) -> None:
        """Raise if any request failed (status ≥ 400 not in ``allowed``, or no response) or a
        case raised."""
        errors = {s: n for s, n in self.errors.items() if s not in allowed}
        if errors or self.exceptions:
            raise AssertionError(f"load errors: statuses {errors}, exceptions {self.exceptions}")

    def summary(self, title: str = "load") -> str:
        lines = [
            f"{title}: {self.requests} requests in {self.wall_seconds:.2f} s = "
            f"{self.throughput:,.0f} req/s  ({self.workers} workers x {self.connections} conn)",
            f"  latency  {self.latency.line()}",
        ]
        for label, stats in sorted(self.labels.items()):
            lines.append(
                f"  {label:14} n={stats.latency.count:<7} {stats.latency.line()}  {stats.statuses}"
            )
        if self.server_cpu_seconds is not None:
            lines.append(
                f"  server CPU {self.server_cpu_seconds:.2f} s = "
                f"{self.server_cpu_ms_per_request or 0:.3f} ms/request, "
                f"{self.requests_per_server_cpu_second or 0:,.0f} requests/CPU-s"
            )
        if self.server_rss_peak is not None:
            lines.append(
                f"  server RSS idle {(self.server_rss_idle or 0) / 2**20:.1f} MiB, "
                f"peak {self.server_rss_peak / 2**20:.1f} MiB"
            )
        lines.append(
            f"  load generators CPU {self.loadgen_cpu_seconds:.2f} s "
            f"(busiest worker {self.loadgen_busiest:.0%} of a core)"
        )
        if self.errors or self.exceptions:
            lines.append(f"  ERRORS {self.errors} {dict(self.exceptions)}")
        return "\n".join(lines)


def merge(results: Sequence[WorkerResult], connections: int) -> LoadResult:
    every: array[float] = array("d")
    statuses: Counter[int] = Counter()
    exceptions: Counter[str] = Counter()
    per_label: dict[str, tuple[array[float], Counter[int]]] = {}
    outputs: list[Any] = []
    for result in sorted(results, key=lambda r: r.index):
        outputs.extend(result.outputs)
        exceptions.update(result.exceptions)
        for label, record in result.labels.items():
            every.extend(record.latencies)
            statuses.update(record.statuses)
            latencies, counts = per_label.setdefault(label, (array("d"), Counter()))
            latencies.extend(record.latencies)
            counts.update(record.statuses)
    started = [r.first_start for r in results if r.first_start != float("inf")]
    ended = [r.last_end for r in results if r.last_end != float("-inf")]
    wall = max(ended) - min(started) if started and ended else 0.0
    shares = [r.cpu_seconds / r.wall_seconds for r in results if r.wall_seconds > 0]
    busiest = max(shares, default=0.0)
    return LoadResult(
        requests=len(every),
        wall_seconds=wall,
        latency=LatencyStats.of(every),
        statuses=dict(sorted(statuses.items())),
        labels={
            label: LabelStats(LatencyStats.of(latencies), dict(sorted(counts.items())))
            for label, (latencies, counts) in per_label.items()
        },
        exceptions=dict(exceptions),
        workers=len(results),
        connections=connections,
        loadgen_cpu_seconds=sum(r.cpu_seconds for r in results),
        loadgen_busiest=busiest,
        outputs=outputs,
    )
