"""``make bench`` keeps working: the ingest (POST and transaction Bundles) and CRUD benchmarks
run end to end at a tiny size.

They start real servers on loopback, load them from separate processes and print every figure
beside its same-run baseline; a benchmark that errors (a non-2xx answer, a dead worker) fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ingest_prints_each_figure_with_its_baselines() -> None:
    out = _bench(
        "--only", "ingest", "--ingest-sizes", "400,800", "--connections", "4",
        "--bundle-sizes", "100,300",
    )  # fmt: skip
    assert "baseline orjson.loads" in out
    assert "baseline raw SQLite insert" in out
    assert "batches of 300" in out  # the raw insert in transactions of the Bundle size too
    assert "x parse" in out and "x raw insert" in out
    assert "resources per CPU-second" in out
    assert "server RSS" in out
    assert "scale: 800 resources ingest" in out
    # The transaction path: the stream as Bundles of 100 and of 300 entries (800 resources are
    # 3 Bundles of 300, the last shorter), each beside the same baselines as POST ingest.
    assert "not measured" not in out
    for entries in (100, 300):
        lines = out.splitlines()
        rows = [i for i, line in enumerate(lines) if f"transaction, {entries} per Bundle" in line]
        assert len(rows) == 2, out  # one per ingest size
        for row in rows:
            assert "x parse" in lines[row] and "x raw insert" in lines[row]
            assert "resources per CPU-second" in lines[row + 1]
            assert "latency per Bundle" in lines[row + 2]


def test_crud_mix_runs_against_a_loaded_server() -> None:
    out = _bench("--only", "crud", "--crud-size", "400", "--duration", "2", "--connections", "4")
    for label in ("read", "create", "update", "delete"):
        assert f"  {label} " in out
    assert "requests per CPU-second" in out
    assert "peak under load" in out


def test_auth_overhead_prints_each_workload_beside_its_baselines() -> None:
    out = _bench("--only", "auth", "--n", "60")
    assert "baseline: joserfc RS256 verify" in out
    for label in ("read ", "read own (patient/)", "search ", "search (patient/)"):
        assert any(line.startswith(label) for line in out.splitlines()), out
    assert "smart/off" in out
