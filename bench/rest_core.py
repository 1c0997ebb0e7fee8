"""REST core: create and read throughput, as ratios to same-run baselines.

Baselines, measured in the same process on the same payloads: ``orjson.loads`` of the body
(the floor of any JSON server) and a raw SQLite insert of the same bytes in one batched
transaction (the physical limit of the embedded store). Figures are per wall-clock second on one
event loop; the machines are shared, so read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from fhir_server.api.app import create_app
from fhir_server.bootstrap import build
from fhir_server.settings import Settings

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille",
                 "postalCode": "3999"}],
}  # fmt: skip


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def baseline_parse(payload: bytes, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        orjson.loads(payload)
    return _rate(n, time.perf_counter() - started)


def baseline_sqlite(payload: bytes, n: int, directory: Path) -> float:
    conn = sqlite3.connect(directory / "baseline.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body BLOB)")
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t VALUES (?, ?)", ((str(i), payload) for i in range(n)))
    conn.execute("COMMIT")
    rate = _rate(n, time.perf_counter() - started)
    conn.close()
    return rate


async def run(n: int) -> None:
    payload = orjson.dumps(PATIENT)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        parse = baseline_parse(payload, n)
        raw_insert = baseline_sqlite(payload, n, directory)
        application = build(Settings(dicom_port=0, mllp_port=0, data_dir=directory / "server"))
        await application.start()
        try:
            app = create_app(application.service, application)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers = {"Content-Type": "application/fhir+json"}
                started = time.perf_counter()
                ids = []
                for _ in range(n):
                    response = await client.post("/fhir/Patient", content=payload, headers=headers)
                    ids.append(response.json()["id"])
                create = _rate(n, time.perf_counter() - started)
                started = time.perf_counter()
                for id in ids:
                    await client.get(f"/fhir/Patient/{id}")
                read = _rate(n, time.perf_counter() - started)
        finally:
            await application.stop()
    print(f"rest_core  n={n}  Patient {len(payload)} B, SQLite synchronous=FULL, one client")
    print(f"  baseline orjson.loads      {parse:12.0f} /s")
    print(f"  baseline raw SQLite insert {raw_insert:12.0f} /s (one batched transaction)")
    print(f"  create (POST, validated)   {create:12.0f} /s  = {create / parse:.4f} x parse, "
          f"{create / raw_insert:.4f} x raw insert")  # fmt: skip
    print(f"  read (GET)                 {read:12.0f} /s  = {read / parse:.4f} x parse")
