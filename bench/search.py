"""Search latency at 100k and 1M synthetic resources on SQLite, as ratios to raw SQLite.

The corpus (seeded, reproducible): Organizations, Patients and Observations (1 : 10 : 89) with
realistic value spreads — 50 LOINC codes, ten years of effective dates, family names from a list
of 200, one subject per Observation. It is indexed by the real Indexer and loaded through the
storage port in large units of work (loading is not what this measures).

Then a server is started on that data (loopback, its own process) and one client sends
``--queries`` searches of each workload with random values, shuffled, over HTTP (first page of
50), reporting p50/p95 per workload. The baseline, measured in
the same run on the same machine: a plain SQLite table with the same number of rows and one index,
answering ``SELECT body … WHERE code = ? LIMIT 50`` — the physical floor of an indexed lookup.
Goal (issue 3): p95 < 50 ms at 1M resources for the single-parameter indexed searches.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.harness import ServerProcess
from bench.loadgen import Request, Workload, run_load
from fhir_server.bootstrap import build
from fhir_server.core import fhirjson
from fhir_server.settings import Settings
from fhir_server.storage.port import ResourceVersion

LOINC = "http://loinc.org"
CODES = [f"{1000 + n}-{n % 10}" for n in range(50)]
_STEMS = ("Chen", "Popescu", "Wang", "Ionescu", "Li", "Smith", "Garcia", "Dumitru", "Zhang", "Ng")
_ENDS = ("", "ova", "escu", "berg", "son", "ini", "ez", "ic", "ak", "uk", "ar", "el", "ov", "an")
FAMILIES = [f"{a}{b}" for a in _STEMS for b in _ENDS]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def corpus(n: int, rng: random.Random) -> list[dict[str, Any]]:
    orgs = max(1, n // 100)
    patients = max(1, n // 10)
    out: list[dict[str, Any]] = []
    for i in range(orgs):
        out.append({"resourceType": "Organization", "id": f"o{i}", "name": f"Hospital {i}"})
    for i in range(patients):
        out.append({
            "resourceType": "Patient", "id": f"p{i}",
            "identifier": [{"system": "urn:oid:1.2.3", "value": f"MRN{i}"}],
            "name": [{"family": rng.choice(FAMILIES), "given": ["Ana"]}],
            "gender": rng.choice(("male", "female")),
            "birthDate": _day(rng, 1930, 2020),
            "managingOrganization": {"reference": f"Organization/o{rng.randrange(orgs)}"},
        })  # fmt: skip
    for i in range(n - orgs - patients):
        out.append({
            "resourceType": "Observation", "id": f"x{i}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": rng.choice(CODES)}]},
            "subject": {"reference": f"Patient/p{rng.randrange(patients)}"},
            "effectiveDateTime": (
                f"{rng.randint(2016, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                f"T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
            ),
            "valueQuantity": {"value": round(rng.uniform(1, 200), 1), "unit": "mg/dL",
                              "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        })  # fmt: skip
    return out


def _day(rng: random.Random, first: int, last: int) -> str:
    return f"{rng.randint(first, last)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def baseline_table(directory: Path, n: int, rng: random.Random) -> sqlite3.Connection:
    conn = sqlite3.connect(directory / "baseline.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (rid INTEGER PRIMARY KEY, code TEXT, body BLOB)")
    conn.execute("BEGIN")
    body = b'{"resourceType":"Observation","status":"final"}' * 6
    conn.executemany(
        "INSERT INTO t (code, body) VALUES (?, ?)", ((rng.choice(CODES), body) for _ in range(n))
    )
    conn.execute("COMMIT")
    conn.execute("CREATE INDEX t_code ON t (code, rid)")
    return conn


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered), p95


def run(sizes: list[int], queries: int) -> None:
    for n in sizes:
        _run_one(n, queries)


def _run_one(n: int, queries: int) -> None:
    rng = random.Random(n)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        started = time.perf_counter()
        asyncio.run(_prepare(directory / "data", corpus(n, rng)))
        load_s = time.perf_counter() - started
        conn = baseline_table(directory, n, rng)
        base = []
        for _ in range(queries):
            t = time.perf_counter()
            conn.execute(
                "SELECT body FROM t WHERE code = ? ORDER BY rid LIMIT 50", (rng.choice(CODES),)
            ).fetchall()
            base.append((time.perf_counter() - t) * 1000)
        conn.close()
        b50, b95 = percentiles(base)
        workloads = _workloads(n, rng)
        requests = [
            Request.get(f"/fhir/{kind}?{urlencode(query)}", label=name)
            for name, make in workloads
            for kind, query in (make() for _ in range(queries))
        ]
        rng.shuffle(requests)
        with ServerProcess(data_dir=directory / "data") as server:
            result = run_load(server, Workload.requests(requests), workers=1, connections=1)
        result.raise_for_errors()
    print(f"\nsearch, {n:,} resources (loaded and indexed through the port in {load_s:.0f} s)")
    print("  over HTTP to a server on loopback, one client, first page of 50")
    print(f"  {'workload':44} {'p50 ms':>8} {'p95 ms':>8} {'p95 / raw SQLite':>17}")
    print(f"  {'baseline: raw SQLite indexed lookup':44} {b50:8.2f} {b95:8.2f} {1:17.0f}")
    for name, _ in workloads:
        stats = result.labels[name].latency
        ratio = stats.p95 / b95 if b95 else 0
        print(f"  {name:44} {stats.p50:8.2f} {stats.p95:8.2f} {ratio:17.0f}")
    rss = (result.server_rss_peak or 0) / 2**20
    cpu = result.server_cpu_ms_per_request or 0
    print(f"  server RSS at peak {rss:.0f} MiB, {cpu:.2f} ms server CPU per search")


async def _prepare(data_dir: Path, resources: list[dict[str, Any]]) -> None:
    app = build(Settings(dicom_port=0, mllp_port=0, data_dir=data_dir, sqlite_synchronous="normal"))
    await app.start()
    try:
        await _load(app, resources)
    finally:
        await app.stop()


Query = Callable[[], tuple[str, list[tuple[str, str]]]]


def _workloads(n: int, rng: random.Random) -> list[tuple[str, Query]]:
    patients = max(1, n // 10)

    def code() -> tuple[str, str]:
        return ("code", f"{LOINC}|{rng.choice(CODES)}")

    def subject() -> tuple[str, str]:
        return ("subject", f"Patient/p{rng.randrange(patients)}")

    def mrn() -> str:
        return f"urn:oid:1.2.3|MRN{rng.randrange(patients)}"

    return [
        ("token: Observation?code=loinc|c", lambda: ("Observation", [code()])),
        ("reference: Observation?subject=Patient/p", lambda: ("Observation", [subject()])),
        (
            "date: Observation?date=<day>",
            lambda: ("Observation", [("date", _day(rng, 2016, 2025))]),
        ),
        (
            "string: Patient?family=<prefix>",
            lambda: ("Patient", [("family", rng.choice(FAMILIES)[:5])]),
        ),
        ("token: Patient?identifier=sys|MRN", lambda: ("Patient", [("identifier", mrn())])),
        (
            "two params: code + date=ge<day>",
            lambda: ("Observation", [code(), ("date", f"ge{_day(rng, 2016, 2025)}")]),
        ),
        (
            "chain: subject:Patient.identifier=MRN",
            lambda: ("Observation", [("subject:Patient.identifier", mrn())]),
        ),
        (
            "_include: subject=… &_include=subject",
            lambda: ("Observation", [subject(), ("_include", "Observation:subject")]),
        ),
    ]


async def _load(app: Any, resources: list[dict[str, Any]], batch: int = 5000) -> None:
    indexer = app.service.indexer
    store = app.store
    for start in range(0, len(resources), batch):
        async with store.unit_of_work() as uow:
            for resource in resources[start : start + batch]:
                resource["meta"] = {"versionId": "1", "lastUpdated": "2026-01-01T00:00:00.000Z"}
                body = fhirjson.dumps(resource)
                version = ResourceVersion(
                    resource["resourceType"], resource["id"], 1, T0, "POST", body
                )
                uow.put(
                    version, expected_version=0, interaction="create", index=indexer.index(resource)
                )
