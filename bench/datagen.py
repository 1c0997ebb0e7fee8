"""Seeded synthetic telemedicine data for the benchmarks: ``python -m bench.datagen``.

The stream is pure and deterministic: the same ``(size, seed)`` gives byte-identical output on
a given Python version (one ``random.Random(seed)``, no global state, no clock). It holds
exactly ``size`` resources:

1. shared reference data: two telemedicine platforms, beneficiary (inviting) and provider
   (invited) hospitals with the providers' radiology departments (``partOf``) — at most 322
   Organizations —, 8 Practitioners per hospital, and one PractitionerRole per Practitioner;
2. then cases, one Patient each with one or two requests. A request is the patient's written
   Consent(s), the ServiceRequest, the record summary (vital-sign and laboratory Observations),
   for teleradiology and some remote diagnoses an ImagingStudy (1-4 series x 10-60 instances,
   DICOM UIDs, counts consistent), the radiologist's findings (imaging Observations) and the
   DiagnosticReport (the signed opinion or radiology report), and the Task (owner/requester,
   status from the R4 value set, output → the report), sometimes with multidisciplinary
   sub-tasks (``partOf``).

The last case is cut where the stream reaches ``size``; every reference (``Type/id``) points to
a resource yielded earlier, so any prefix of the stream is closed under references and the
stream is in dependency order. Ids are ``<prefix>-<7 digits>`` per type (``pat-0000001``).

Forms: :func:`resources` (dicts), :func:`bundles` (transaction Bundles of ``entries`` entries),
:func:`write_ndjson` (``<Type>.ndjson``), :func:`write_bundles` (``bundle-000001.json`` …) and
:func:`ensure_dataset` (both forms, cached under ``root/<size>-<seed>/``). Transaction entries
**PUT** ``Type/id`` with the generator's id (``fullUrl`` is ``urn:uuid:`` + uuid5 of
``Type/id``), so references hold across Bundles and loading a Bundle twice updates the same
resources instead of duplicating them.

For a POST loader that gets server-assigned ids, :func:`references` lists every reference of a
resource and :func:`rewrite_references` maps them to the ids the server gave.

Cost (one core): about 30,000 resources/s generated, about 15,000/s with both forms written;
1M resources are about 1.9 GB of NDJSON plus 2.1 GB of Bundles (ImagingStudy is half of it).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import datagen_output
from bench.datagen_cases import CaseBuilder
from bench.datagen_common import Ids, Resource
from bench.datagen_reference import ReferenceBuilder

GENERATOR_VERSION = 1
TYPES = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Patient",
    "Consent",
    "ServiceRequest",
    "Observation",
    "ImagingStudy",
    "DiagnosticReport",
    "Task",
)


@dataclass(frozen=True, slots=True)
class Case:
    """A slice of the stream: the reference data, or one patient's case."""

    kind: str  # "reference" | "teleradiology" | "consultation" | "diagnosis"
    patient_id: str | None
    resources: tuple[Resource, ...]


def generate(size: int, seed: int = 1) -> Iterator[Case]:
    """The reference data, then cases, ``size`` resources in all (the last case cut short)."""
    if size < 0:
        raise ValueError("size must not be negative")
    rng = random.Random(seed)
    ids = Ids()
    reference = ReferenceBuilder(rng, ids)
    shared = reference.build(size)[:size]
    if shared:
        yield Case("reference", None, tuple(shared))
    remaining = size - len(shared)
    cases = CaseBuilder(rng, ids, reference.directory)
    while remaining > 0:
        kind, patient_id, items = cases.case()
        if len(items) > remaining:
            items = items[:remaining]
        remaining -= len(items)
        yield Case(kind, patient_id, tuple(items))


def resources(size: int, seed: int = 1) -> Iterator[Resource]:
    for case in generate(size, seed):
        yield from case.resources


def bundles(size: int, seed: int = 1, entries: int = 100) -> Iterator[Resource]:
    """Transaction Bundles of ``entries`` PUT entries (the last may be shorter)."""
    return datagen_output.batched_bundles(resources(size, seed), entries)


def references(resource: Resource) -> list[str]:
    """Every ``reference`` string in the resource, in document order (``Type/id`` here)."""
    found: list[str] = []
    _collect(resource, found)
    return found


def _collect(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append(value)
            elif isinstance(value, dict | list):
                _collect(value, found)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _collect(item, found)


def rewrite_references(node: Any, mapping: Mapping[str, str]) -> Any:
    """A copy of ``node`` with each ``reference`` found in ``mapping`` replaced by its value."""
    if isinstance(node, dict):
        return {
            key: (
                mapping.get(value, value)
                if key == "reference" and isinstance(value, str)
                else rewrite_references(value, mapping)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [rewrite_references(item, mapping) for item in node]
    return node


def write_ndjson(size: int, seed: int, directory: Path) -> Counter[str]:
    """``directory/<Type>.ndjson``, one resource per line; the count per type."""
    return datagen_output.write(resources(size, seed), directory, None)


def write_bundles(size: int, seed: int, directory: Path, entries: int = 100) -> Counter[str]:
    """``directory/bundle-000001.json`` …; the count of resources per type."""
    return datagen_output.write(resources(size, seed), None, directory, entries)


def write_dataset(size: int, seed: int, directory: Path, entries: int = 100) -> Counter[str]:
    """Both forms in one pass: ``directory/ndjson/`` and ``directory/bundles/``."""
    stream = resources(size, seed)
    return datagen_output.write(stream, directory / "ndjson", directory / "bundles", entries)


def ensure_dataset(size: int, seed: int, root: Path, entries: int = 100) -> Path:
    """``root/<size>-<seed>/`` holding both forms, written once (marker last) and then reused."""
    manifest = {"version": GENERATOR_VERSION, "size": size, "seed": seed, "entries": entries}
    return datagen_output.cached(
        root / f"{size}-{seed}",
        manifest,
        lambda directory: write_dataset(size, seed, directory, entries),
    )


def _print_counts(counts: Counter[str], seconds: float) -> None:
    total = sum(counts.values())
    for kind in TYPES:
        print(f"{kind:<18} {counts.get(kind, 0):>10,}")
    print(f"{'total':<18} {total:>10,}")
    rate = total / seconds if seconds > 0 else float("inf")
    print(f"{seconds:.2f} s CPU, {rate:,.0f} resources/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.datagen", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--size", type=int, default=10_000, help="resources in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write DIR/ndjson/ and DIR/bundles/")
    parser.add_argument("--entries", type=int, default=100, help="entries per Bundle")
    args = parser.parse_args(argv)
    started = time.process_time()
    if args.out is None:
        counts = Counter(r["resourceType"] for r in resources(args.size, args.seed))
    else:
        counts = write_dataset(args.size, args.seed, args.out, args.entries)
    _print_counts(counts, time.process_time() - started)


if __name__ == "__main__":
    main()
