"""Baselines measured in the same run as the figures they are printed beside.

- :func:`parse_rate`: ``orjson.loads`` of the very payloads the server receives (the floor of
  any JSON server).
- :func:`raw_insert`: the physical limit of the embedded store — the *same rows* the server
  writes for those resources (history with the body, resource, every search index row,
  compartments, outbox), in the server's own schema and durability (WAL,
  ``synchronous=FULL``), inserted with one ``executemany`` per table in transactions of
  ``batch`` resources, with everything computed beforehand: no validation, no index
  extraction, no HTTP, no Python per row; optionally again in transactions of other sizes
  (the transaction Bundle sizes of the ingest benchmark). Also the bodies alone into a one-key
  table.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from fhir_server.search.extract import Indexer
from fhir_server.search.model import DateEntry, ResourceIndex
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.sqlite.index_tables import INSERT_INDEX_ROW, LAST_UPDATED, index_rows
from fhir_server.storage.sqlite.schema import configure, migrate

Resource = dict[str, Any]


def parse_rate(payloads: Sequence[bytes], min_seconds: float = 0.5) -> float:
    """Payloads parsed per second by ``orjson.loads`` (repeated for at least ``min_seconds``)."""
    done = 0
    started = time.perf_counter()
    while True:
        for payload in payloads:
            orjson.loads(payload)
        done += len(payloads)
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return done / elapsed


@dataclass(frozen=True, slots=True)
class RawInsert:
    same_rows_per_second: float  # resources/s, every row the server writes
    bodies_per_second: float  # resources/s, the bodies alone
    rows_per_resource: float
    #: resources/s, every row, in transactions of each of the ``also`` sizes asked for
    same_rows_by_batch: dict[int, float] = field(default_factory=dict)


def raw_insert(
    resources: Sequence[Resource], batch: int = 100, also: Sequence[int] = ()
) -> RawInsert:
    """Insert the rows of ``resources`` as the server would store them, timed, in transactions
    of ``batch`` resources (and again, into a fresh database each, of each size in ``also``)."""
    rows = _Rows(resources)
    with tempfile.TemporaryDirectory(prefix="fhir-bench-raw-") as tmp:
        same = rows.insert(Path(tmp) / "same.sqlite3", batch)
        bodies = _insert_bodies(Path(tmp) / "bodies.sqlite3", rows.bodies, batch)
        by_batch = {size: rows.insert(Path(tmp) / f"same-{size}.sqlite3", size) for size in also}
    return RawInsert(same, bodies, rows.count / max(len(resources), 1), {batch: same, **by_batch})


class _Rows:
    """Every row of every table for the resources, computed before the clock starts."""

    def __init__(self, resources: Sequence[Resource]) -> None:
        registry = SearchRegistry.load()
        indexer = Indexer(registry.params(), registry.compartments())
        stamp = datetime.now(UTC)
        text, micros = stamp.isoformat(), int(stamp.timestamp() * 1_000_000)
        self.pids: dict[tuple[str, str], int] = {}
        self.bodies: list[tuple[str, bytes]] = []
        self.batches: list[dict[str, list[tuple[Any, ...]]]] = []
        self.resource_batches: list[int] = []
        self.count = 0
        self._tables: list[dict[str, list[tuple[Any, ...]]]] = []
        for rid, resource in enumerate(resources, start=1):
            kind, id = resource["resourceType"], str(resource.get("id", rid))
            body = orjson.dumps(resource)
            self.bodies.append((f"{kind}/{id}", body))
            index = indexer.index(resource)
            if LAST_UPDATED not in index.entries:
                entries = {**index.entries, LAST_UPDATED: (DateEntry(micros, micros),)}
                index = ResourceIndex(entries, index.compartments)
            tables: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
            tables["history"].append((rid, kind, id, 1, text, "POST", body))
            tables["resource"].append((rid, kind, id, 1, rid, 0))
            tables["outbox"].append((rid, kind, id, 1, "create", text))

            def pid_of(code: str, kind: str = kind) -> int:
                return self.pids.setdefault((kind, code), len(self.pids) + 1)

            for table, index_rows_ in index_rows(index, pid_of, rid).items():
                tables[table].extend(index_rows_)
            tables["idx_compartment"].extend(
                (rid, t, i) for t, i in dict.fromkeys(index.compartments)
            )
            self.count += sum(len(v) for v in tables.values())
            self._tables.append(tables)

    def insert(self, path: Path, batch: int) -> float:
        conn = sqlite3.connect(path, isolation_level=None)
        configure(conn, "FULL", "writer")
        migrate(conn)
        conn.executemany(
            "INSERT INTO search_param (pid, type, code) VALUES (?, ?, ?)",
            [(pid, kind, code) for (kind, code), pid in self.pids.items()],
        )
        statements = {
            "history": "INSERT INTO history (seq, type, id, version, last_updated, method, body) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            "resource": "INSERT INTO resource (rid, type, id, version, seq, deleted) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            "outbox": "INSERT INTO outbox (seq, type, id, version, interaction, occurred) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            "idx_compartment": "INSERT INTO idx_compartment (rid, comp_type, comp_id) "
            "VALUES (?, ?, ?)",
        }
        statements.update(INSERT_INDEX_ROW)
        grouped = [_group(self._tables[i : i + batch]) for i in range(0, len(self._tables), batch)]
        started = time.perf_counter()
        for tables in grouped:
            conn.execute("BEGIN IMMEDIATE")
            for table, rows in tables.items():
                conn.executemany(statements[table], rows)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        conn.close()
        return len(self._tables) / elapsed


def _group(parts: Sequence[dict[str, list[tuple[Any, ...]]]]) -> dict[str, list[tuple[Any, ...]]]:
    merged: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for part in parts:
        for table, rows in part.items():
            merged[table].extend(rows)
    order = ("history", "resource")  # the resource row refers to its history row
    return {t: merged[t] for t in (*order, *(k for k in merged if k not in order))}


def _insert_bodies(path: Path, bodies: Sequence[tuple[str, bytes]], batch: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn, "FULL", "writer")
    conn.execute("CREATE TABLE t (key TEXT PRIMARY KEY, body BLOB)")
    started = time.perf_counter()
    for i in range(0, len(bodies), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?, ?)", bodies[i : i + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return len(bodies) / elapsed
