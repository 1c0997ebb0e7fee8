"""Ingest: the synthetic telemedicine stream POSTed to a fresh server, beside its physical limit.

For each size, a server is started on loopback with a fresh data dir (``synchronous=FULL``: every
201 is on disk). The shared reference data is POSTed first, then the patients' cases by
``workers`` load processes x ``connections`` connections, each case in dependency order with its
references rewritten to the ids the server assigned (:mod:`bench.workloads`).

Then, when the server serves transactions (it says so in its CapabilityStatement; until then
that line says why it is missing), the same stream as transaction Bundles of PUT entries
(:func:`bench.datagen.bundles`), once per Bundle size (``bundle_sizes``, default 100 and
1,000 entries), each on a fresh server: one client sends the Bundles one after the other
(each Bundle refers only to resources of earlier ones, which must be committed before it
arrives when the server checks references).

Printed beside each rate: ``orjson.loads`` of the same payloads, the raw SQLite insert of the
same rows (:mod:`bench.baselines`, in transactions of 100 resources as for POST ingest, and of
each Bundle size), the server's CPU seconds per resource and its rate per CPU-second (per
core), its RSS idle and at peak.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from bench import datagen, workloads
from bench.baselines import RawInsert, parse_rate, raw_insert
from bench.harness import ServerProcess
from bench.loadgen import LoadResult, Workload, run_load
from bench.profiling import Profiler

#: The raw-insert baseline uses at most this many resources (all rows are held in memory).
BASELINE_CAP = 50_000
MIB = 2**20


#: Entries per transaction Bundle measured by default.
BUNDLE_SIZES = (100, 1_000)


@dataclass(frozen=True, slots=True)
class TransactionFigures:
    entries: int  # per Bundle
    rate: float  # resources/s, wall
    per_cpu_second: float  # resources per server CPU-second (per core)
    raw_ratio: float  # rate / the raw insert of the same rows in transactions of 100
    rss_peak: int


@dataclass(frozen=True, slots=True)
class IngestFigures:
    size: int
    rate: float  # resources/s, wall
    per_cpu_second: float  # resources per server CPU-second (per core)
    parse: float
    raw_limit: float
    rss_idle: int
    rss_peak: int
    transactions: tuple[TransactionFigures, ...] = ()


def run(
    sizes: list[int],
    seed: int,
    workers: int,
    connections: int,
    profile: bool,
    bundle_sizes: Sequence[int] = BUNDLE_SIZES,
) -> list[IngestFigures]:
    figures = [_one(size, seed, workers, connections, profile, bundle_sizes) for size in sizes]
    if len(figures) > 1:
        small, large = figures[0], figures[-1]
        print(
            f"scale: {large.size:,} resources ingest at {large.rate:,.0f}/s = "
            f"{large.rate / small.rate:.2f} x the rate at {small.size:,} (goal >= 0.70)"
        )
    return figures


def _one(
    size: int,
    seed: int,
    workers: int,
    connections: int,
    profile: bool,
    bundle_sizes: Sequence[int],
) -> IngestFigures:
    sample = list(datagen.resources(min(size, BASELINE_CAP), seed))
    parse = parse_rate([orjson.dumps(r) for r in sample])
    raw = raw_insert(sample, also=[n for n in bundle_sizes if n != 100])
    del sample
    with ServerProcess() as server:
        idle = server.rss_bytes()
        with Profiler(server.pid, enabled=profile) as profiler:
            shared, cases = post_stream(server, size, seed, workers, connections)
        served = _serves_transactions(server)
    total = shared.requests + cases.requests
    wall = shared.wall_seconds + cases.wall_seconds
    cpu = (shared.server_cpu_seconds or 0) + (cases.server_cpu_seconds or 0)
    rate, per_cpu = total / wall, total / cpu if cpu else 0.0
    peak = max(cases.server_rss_peak or 0, shared.server_rss_peak or 0)
    print(f"ingest  {size:,} resources, POST per resource, {workers} x {connections} clients")
    print(f"  baseline orjson.loads        {parse:12,.0f} resources/s")
    others = "".join(
        f"batches of {n:,} {r:,.0f}/s; " for n, r in raw.same_rows_by_batch.items() if n != 100
    )
    print(
        f"  baseline raw SQLite insert   {raw.same_rows_per_second:12,.0f} resources/s "
        f"({raw.rows_per_resource:.1f} rows each, batches of 100; {others}bodies alone "
        f"{raw.bodies_per_second:,.0f}/s)"
    )
    print(
        f"  POST ingest                  {rate:12,.0f} resources/s = {rate / parse:.4f} x parse, "
        f"{rate / raw.same_rows_per_second:.3f} x raw insert (goal >= 0.25)"
    )
    print(
        f"  server CPU                   {cpu * 1000 / total:12.3f} ms/resource = "
        f"{per_cpu:,.0f} resources per CPU-second (goal >= 1,000)"
    )
    print(f"  latency                      {cases.latency.line()}")
    print(f"  server RSS                   idle {idle / MIB:.0f} MiB, peak {peak / MIB:.0f} MiB")
    print(f"  load generators              busiest worker {cases.loadgen_busiest:.0%} of a core")
    if profiler.report:
        print(profiler.report)
    transactions: list[TransactionFigures] = []
    if not served:
        print("  transaction Bundles          not measured: the server does not serve them")
    for entries in bundle_sizes if served else ():
        transactions.append(_transactions(size, seed, entries, parse, raw, profile))
    return IngestFigures(
        size, rate, per_cpu, parse, raw.same_rows_per_second, idle, peak, tuple(transactions)
    )


def post_stream(
    server: ServerProcess, size: int, seed: int, workers: int, connections: int
) -> tuple[LoadResult, LoadResult]:
    """POST the stream: the shared reference data (one client), then the cases. Both results;
    the second's ``outputs`` hold the server refs each worker created."""
    shared = run_load(
        server, Workload.of(workloads.reference_data, size, seed), workers=1, connections=1
    )
    shared.raise_for_errors()
    cases = run_load(
        server,
        Workload.of(workloads.cases, size, seed, shared.outputs[0]),
        workers=workers,
        connections=connections,
        ready_timeout=1800,
        timeout=7200,
    )
    cases.raise_for_errors()
    return shared, cases


def _serves_transactions(server: ServerProcess) -> bool:
    """Whether the CapabilityStatement lists the ``transaction`` interaction."""
    with urllib.request.urlopen(f"{server.base_url}/fhir/metadata") as answer:
        capabilities = orjson.loads(answer.read())
    served = {i.get("code") for r in capabilities.get("rest", []) for i in r.get("interaction", [])}
    return "transaction" in served


def _transactions(
    size: int, seed: int, entries: int, parse: float, raw: RawInsert, profile: bool
) -> TransactionFigures:
    """The stream as transaction Bundles of ``entries`` PUT entries, one client, sent in order
    to a fresh server; the figures printed beside the same baselines as POST ingest."""
    with ServerProcess() as fresh, Profiler(fresh.pid, enabled=profile) as profiler:
        result = run_load(
            fresh,
            Workload.of(workloads.bundles, size, seed, entries),
            workers=1,
            connections=1,
            ready_timeout=600,
            timeout=7200,
        )
    result.raise_for_errors()
    cpu = result.server_cpu_seconds or 0.0
    rate, per_cpu = size / result.wall_seconds, size / cpu if cpu else 0.0
    limit = raw.same_rows_per_second
    same_batch = raw.same_rows_by_batch.get(entries) if entries != 100 else None
    matched = f", {rate / same_batch:.3f} x in batches of {entries:,}" if same_batch else ""
    peak = result.server_rss_peak or 0
    label = f"transaction, {entries:,} per Bundle"
    print(
        f"  {label:<28} {rate:12,.0f} resources/s = {rate / parse:.4f} x parse, "
        f"{rate / limit:.3f} x raw insert (goal >= 0.25{matched})"
    )
    print(
        f"    server CPU                 {cpu * 1000 / size:12.3f} ms/resource = "
        f"{per_cpu:,.0f} resources per CPU-second (goal >= 1,000)"
    )
    print(f"    latency per Bundle         {result.latency.line()}")
    print(f"    server RSS                 peak {peak / MIB:.0f} MiB")
    if profiler.report:
        print(profiler.report)
    return TransactionFigures(entries, rate, per_cpu, rate / limit, peak)
