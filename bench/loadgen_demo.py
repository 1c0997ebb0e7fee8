"""``python -m bench.loadgen_demo``: the harness end to end, against a fresh server.

Creates ``--patients`` Patients (POST, the ids come back through ``WorkerContext.output``),
then sends ``--n`` reads ``GET /fhir/Patient/<id>`` (or ``--path`` for a fixed path such as
``/fhir/metadata``) with ``--workers`` processes of ``--connections`` lanes, and prints both
summaries: throughput, latency percentiles, server CPU per request, server RSS idle and peak,
and the load workers' own CPU (to show they are not the bottleneck).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import orjson

from bench.harness import ServerProcess
from bench.loadgen import FHIR_JSON, Item, Request, Session, WorkerContext, Workload, run_load

PATIENT = orjson.dumps({
    "resourceType": "Patient", "active": True, "gender": "female", "birthDate": "1974-12-25",
    "name": [{"use": "official", "family": "Chalmers", "given": ["Petra", "Jane"]}],
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
})  # fmt: skip


def create_patients(worker: WorkerContext, total: int) -> Iterator[Item]:
    async def create(session: Session) -> None:
        response = await session.request("POST", "/fhir/Patient", PATIENT, FHIR_JSON)
        if response.status == 201:
            worker.output(response.resource_id())

    for _ in worker.shard(range(total)):
        yield create


def read_patients(worker: WorkerContext, ids: list[str], total: int) -> Iterator[Item]:
    for n in worker.shard(range(total)):
        yield Request.get(f"/fhir/Patient/{ids[n % len(ids)]}", label="read")


def get_path(worker: WorkerContext, path: str, total: int) -> Iterator[Item]:
    for _ in worker.shard(range(total)):
        yield Request.get(path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.loadgen_demo")
    parser.add_argument("--n", type=int, default=2000, help="reads")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--path", help="GET this path instead of the Patients")
    parser.add_argument("--synchronous", default="FULL", help="FHIR_SERVER_SQLITE_SYNCHRONOUS")
    args = parser.parse_args()
    shape = {"workers": args.workers, "connections": args.connections}
    with ServerProcess(env={"FHIR_SERVER_SQLITE_SYNCHRONOUS": args.synchronous}) as server:
        rss = server.rss_bytes() / 2**20
        print(f"server pid {server.pid} at {server.base_url}, idle RSS {rss:.1f} MiB")
        created = run_load(server, Workload.of(create_patients, args.patients), **shape)
        print(created.summary("POST /fhir/Patient"))
        created.raise_for_errors()
        if args.path:
            workload = Workload.of(get_path, args.path, args.n)
        else:
            workload = Workload.of(read_patients, created.outputs, args.n)
        read = run_load(server, workload, **shape)
        print(read.summary(f"GET {args.path or '/fhir/Patient/<id>'}"))
        read.raise_for_errors()


if __name__ == "__main__":
    main()
