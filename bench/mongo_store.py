"""The MongoDB adapter's own overhead: the storage port against raw pymongo calls, same run.

Against one MongoDB (``--mongo-url``, else mongoeco started on loopback from ``.venv-mongoeco``),
three operations are timed twice on the same data, in the same process:

- **write**: a unit of work of one create (through ``MongoStore``), against the raw pymongo
  calls that store the same documents in one transaction (counter ``$inc``, history, resource
  with its precomputed index fields, outbox), on a database with the same indexes — the
  adapter's price is its version check, its document building and its bookkeeping;
- **read**: ``store.read`` against ``find_one({_id})``;
- **search**: ``store.search`` of a token parameter, 20 per page, against the ``find`` the
  compiler would need at least (same filter on the stored token field, sorted by ``rid``).

Index extraction (the search engine's work, shared with SQLite) is done beforehand for both. The
ratio adapter/raw is the figure; absolute rates on mongoeco (a Python imitation of MongoDB) say
nothing about a real MongoDB and are printed for context only.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pymongo import AsyncMongoClient, ReturnDocument

from fhir_server.search.extract import Indexer
from fhir_server.search.model import Criteria, ParamTest, TokenValue
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.mongo import documents as d
from fhir_server.storage.mongo.search_index import SEP, TOKENS, index_fields
from fhir_server.storage.mongo.store import MongoStore, create_indexes
from fhir_server.storage.port import ABSENT, ResourceVersion, SearchQuery

ROOT = Path(__file__).resolve().parents[1]
MONGOECO = ROOT / ".venv-mongoeco" / "bin" / "python"
SERVER = ROOT / "tests" / "mongoeco" / "server.py"


def _patient(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"p{n}",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": str(n)}],
        "gender": ("male", "female")[n % 2],
        "name": [{"family": f"Family{n % 50}", "given": ["Ana"]}],
        "birthDate": f"19{50 + n % 50}-01-01",
    }


async def _timed(n: int, step: Callable[[int], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for i in range(n):
        await step(i)
    return n / (time.perf_counter() - started)


async def measure(url: str, n: int) -> dict[str, tuple[float, float]]:
    registry = SearchRegistry.load()
    indexer = Indexer(registry.params(), registry.compartments())
    bodies = [orjson.dumps(_patient(i)) for i in range(n)]
    indexes = [indexer.index(_patient(i)) for i in range(n)]
    now = datetime.now(UTC)
    store = MongoStore(url.replace("/?", "/bench_port?"))
    await store.open()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    raw = client["bench_raw"]
    await create_indexes(raw)  # the same indexes: the ratio is the adapter's own work
    results: dict[str, tuple[float, float]] = {}
    try:

        async def port_write(i: int) -> None:
            version = ResourceVersion("Patient", f"p{i}", 1, now, "POST", bodies[i])
            async with store.unit_of_work() as uow:
                uow.put(version, expected_version=ABSENT, interaction="create", index=indexes[i])

        async def raw_write(i: int) -> None:
            async with client.start_session() as s, await s.start_transaction():
                counter = await raw[d.COUNTERS].find_one_and_update(
                    {"_id": "seq"}, {"$inc": {"n": 1}}, upsert=True,
                    return_document=ReturnDocument.AFTER, session=s,
                )  # fmt: skip
                seq = counter["n"] if counter else 0
                base = {"type": "Patient", "id": f"p{i}", "version": 1, "method": "POST"}
                base |= {"lastUpdated": d.to_micros(now), "body": bodies[i]}
                await raw[d.HISTORY].insert_one({"_id": seq, **base}, session=s)
                doc = {"_id": f"Patient/p{i}", **base, "deleted": False, "rid": seq}
                await raw[d.RESOURCES].insert_one(doc | index_fields(indexes[i]), session=s)
                await raw[d.OUTBOX].insert_one(
                    {"_id": seq, "type": "Patient", "id": f"p{i}", "version": 1,
                     "interaction": "create", "occurred": base["lastUpdated"]}, session=s,
                )  # fmt: skip

        results["write (create, one per transaction)"] = (
            await _timed(n, port_write),
            await _timed(n, raw_write),
        )

        async def port_read(i: int) -> None:
            await store.read("Patient", f"p{i}")

        async def raw_read(i: int) -> None:
            await raw[d.RESOURCES].find_one({"_id": f"Patient/p{i}"})

        results["read"] = (await _timed(n, port_read), await _timed(n, raw_read))
        gender = registry.for_type("Patient")["gender"]

        async def port_search(i: int) -> None:
            test = ParamTest(gender, None, (TokenValue(None, ("male", "female")[i % 2]),))
            await store.search(SearchQuery(Criteria(("Patient",), (test,)), count=20))

        keys = [
            min((k for k in index_fields(indexes[i])[TOKENS] if k.startswith("gender" + SEP)),
                key=len)  # the shortest form: "gender<SEP>code"
            for i in (0, 1)
        ]  # fmt: skip

        async def raw_search(i: int) -> None:
            where = {"type": "Patient", "deleted": False, TOKENS: keys[i % 2]}
            await raw[d.RESOURCES].find(where).sort("rid", 1).limit(21).to_list()

        searches = max(n // 10, 20)
        results["search (token, 20 per page)"] = (
            await _timed(searches, port_search),
            await _timed(searches, raw_search),
        )
    finally:
        await client.drop_database("bench_raw")
        await client.drop_database("bench_port")
        await client.close()
        await store.close()
    return results


def run(n: int, url: str | None) -> None:
    print(f"\n== mongo adapter overhead: {n} Patients, port vs raw pymongo, same run ==")
    server = None
    if url is None:
        if not MONGOECO.exists():
            print("   skipped: no --mongo-url and no mongoeco (make mongoeco)")
            return
        server = subprocess.Popen(
            [str(MONGOECO), str(SERVER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(f"   MongoDB: mongoeco {url} (an imitation: read the ratios only)")
    try:
        results = asyncio.run(measure(url, n))
    finally:
        if server is not None and server.stdin is not None:
            server.stdin.close()
            server.wait(timeout=10)
    print(f"   {'operation':<40} {'port/s':>10} {'raw/s':>10} {'port/raw':>9}")
    for name, (port, raw) in results.items():
        print(f"   {name:<40} {port:>10.0f} {raw:>10.0f} {port / raw:>9.2f}")
