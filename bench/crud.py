"""CRUD mix: read 60 %, create 20 %, update 15 %, delete 5 % with concurrent clients.

A fresh server on loopback is loaded with ``size`` resources of the synthetic stream (POSTed as
in :mod:`bench.ingest`, not timed here); then ``workers`` x ``connections`` clients run the mix
over the resources created (Patients, ServiceRequests, Observations, Tasks) for ``duration``
seconds. Printed: requests/s, requests per server CPU-second (per core; goal ≥ 800), p50/p95 per
interaction, the server's RSS idle and at peak (goal < 500 MB under load), and the baseline
``orjson.loads`` of the bodies sent.
"""

from __future__ import annotations

import orjson

from bench import datagen, workloads
from bench.baselines import parse_rate
from bench.harness import ServerProcess
from bench.ingest import post_stream
from bench.loadgen import Workload, run_load

MIB = 2**20


def run(size: int, seed: int, workers: int, connections: int, duration: float) -> None:
    sample = [
        orjson.dumps(r)
        for r in datagen.resources(min(size, 20_000), seed)
        if r["resourceType"] in workloads.CRUD_TYPES
    ]
    parse = parse_rate(sample)
    with ServerProcess() as server:
        idle = server.rss_bytes()
        shared, loaded = post_stream(server, size, seed, workers, connections)
        mapping = shared.outputs[0]
        pool = [server_ref for _, server_ref in mapping]
        for created in loaded.outputs:
            pool.extend(created)
        mix = run_load(
            server,
            Workload.of(workloads.crud_mix, pool, 20_000, seed),
            workers=workers,
            connections=connections,
            duration=duration,
            ready_timeout=600,
        )
    # a read may meet a resource another lane of its worker deleted a moment before: 410
    mix.raise_for_errors(allowed=frozenset({410}))
    per_cpu = mix.requests_per_server_cpu_second or 0.0
    print(
        f"crud  {size:,} resources loaded, mix 60/20/15/5 for {mix.wall_seconds:.0f} s, "
        f"{workers} x {connections} clients"
    )
    print(f"  baseline orjson.loads        {parse:12,.0f} bodies/s")
    print(
        f"  CRUD mix                     {mix.throughput:12,.0f} requests/s = "
        f"{mix.throughput / parse:.4f} x parse"
    )
    print(
        f"  server CPU                   {mix.server_cpu_ms_per_request or 0:12.3f} ms/request = "
        f"{per_cpu:,.0f} requests per CPU-second (goal >= 800)"
    )
    for label, stats in sorted(mix.labels.items()):
        print(f"  {label:<28} {stats.latency.line()}  {dict(stats.statuses)}")
    peak = mix.server_rss_peak or 0
    print(
        f"  server RSS                   idle {idle / MIB:.0f} MiB (goal < 150), "
        f"peak under load {peak / MIB:.0f} MiB (goal < 500)"
    )
    print(f"  load generators              busiest worker {mix.loadgen_busiest:.0%} of a core")
