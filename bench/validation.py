"""Validation cost per resource, in process, as ratios measured in the same run.

Baselines: the raw JSON parse of the same bytes (orjson) and structural validation alone (what
every write paid before profiles). Measured: the write pipeline's validation (structure, core
bindings, claimed and rule-set profiles), ``$validate``'s full validation (core invariants too,
fhirpathpy), and the server's own profiles on their valid fixtures (what a telemedicine write
that claims or must meet a profile pays). Definitions are compiled and value sets expanded
before the clocks start, as the server does on first use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from fhir_server.conformance import Conformance
from fhir_server.interactions.conformance_sync import local_content
from fhir_server.settings import default_conformance_dirs
from fhir_server.terminology import TerminologyService
from fhir_server.validation import validate_structure
from fhir_server.validation.profiles import ProfileValidator

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / ".cache" / "r4" / "package"
FIXTURES = ROOT / "tests" / "fixtures" / "profiles"
_CONFORMANCE = ("StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "Bundle")


def _corpus(limit: int) -> list[bytes]:
    found: list[bytes] = []
    for path in sorted(EXAMPLES.glob("*.json")):
        raw = path.read_bytes()
        data = orjson.loads(raw)
        if isinstance(data, dict) and data.get("resourceType") not in (*_CONFORMANCE, None):
            found.append(raw)
        if len(found) >= limit:
            break
    return found


def _per_resource(bodies: list[bytes], check: Callable[[dict[str, Any]], object]) -> float:
    parsed = [orjson.loads(b) for b in bodies]
    for resource in parsed:  # warm: compile definitions, expand value sets
        check(resource)
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for resource in parsed:
            check(resource)
        best = min(best, time.process_time() - started)
    return best / len(parsed)


def run(limit: int = 800) -> None:
    if not EXAMPLES.is_dir():
        print("validation: the R4 examples are missing (make r4-examples)")
        return
    registry = Conformance.overlay(local_content(default_conformance_dirs()))
    validator = ProfileValidator(registry, TerminologyService(registry))
    examples = _corpus(limit)
    fixtures = [p.read_bytes() for p in sorted(FIXTURES.glob("*/valid-*.json"))]
    raw = sum(_per_resource_parse(b) for b in examples[:200]) / min(200, len(examples))
    structure = _per_resource(examples, validate_structure)
    write = _per_resource(examples, validator.validate)
    full = _per_resource(examples, lambda r: validator.validate(r, full=True))
    f_structure = _per_resource(fixtures, validate_structure)
    f_profiles = _per_resource(fixtures, validator.validate)
    print(f"\n## validation (CPU time per resource, {len(examples)} R4 examples, best of 3)")
    print(f"raw orjson parse          {raw * 1e6:9.1f} µs  (baseline)")
    print(f"structure only            {structure * 1e6:9.1f} µs  = {structure / raw:6.1f} x parse")
    print(
        f"write (structure+bindings){write * 1e6:9.1f} µs  = {write / structure:6.2f} x structure"
    )
    print(f"$validate (+invariants)   {full * 1e6:9.1f} µs  = {full / structure:6.2f} x structure")
    print(f"\n{len(fixtures)} valid fixtures of the server's own profiles:")
    print(f"structure only            {f_structure * 1e6:9.1f} µs")
    print(
        f"profiles (all checks)     {f_profiles * 1e6:9.1f} µs  = "
        f"{f_profiles / f_structure:6.2f} x structure"
    )
    budget = 1e6 / 1000
    print(
        f"\nthe ingest goal (1,000 resources/s per core) leaves {budget:.0f} µs per resource: "
        f"write validation takes {write / (budget / 1e6):.0%} of it, a profiled write "
        f"{f_profiles / (budget / 1e6):.0%}"
    )


def _per_resource_parse(body: bytes) -> float:
    started = time.process_time()
    for _ in range(20):
        orjson.loads(body)
    return (time.process_time() - started) / 20


if __name__ == "__main__":
    run()
