"""The server's validator (R4 snapshots only) is at least as strict as the R4B cross-check.

The ingest fast path dropped fhir.resources from the write path: the walk now checks
cardinality, choices and primitives from the R4 StructureDefinitions itself. This test mutates
official examples at random (deleted elements, wrong JSON kinds, impossible dates, unknown
names, empty values, arrays for single values and back, nulls, out-of-range integers, two values
of one choice) and validates each with both engines: whatever the R4B engine rejects, the R4
engine must reject too. Where the R4 engine alone rejects, each of its extra issues must be an R4
minimum cardinality that R4B relaxed (R4 is the standard the server serves).

``FHIR_ENGINES_SAMPLE`` sets how many mutated examples (default 600; 19,000 were run clean).
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_server.validation import validate_structure
from tests.r4_examples import iter_parsed_examples

pytestmark = pytest.mark.examples

Loc = tuple[str | int, ...]
MUTATIONS = (
    "delete", "kind", "date", "unknown", "empty", "wrap", "unwrap", "null", "blank", "int32",
    "choice",
)  # fmt: skip


def _locations(node: object, loc: Loc = ()) -> Iterator[tuple[Loc, object]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*loc, key), value
            yield from _locations(value, (*loc, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*loc, index), value
            yield from _locations(value, (*loc, index))


_DELETE = object()


def _set(root: Any, loc: Loc, value: object) -> None:
    container = root
    for step in loc[:-1]:
        container = container[step]
    if value is _DELETE:
        del container[loc[-1]]
    else:
        container[loc[-1]] = value


def mutate(resource: dict[str, Any], rng: random.Random) -> str:
    """Apply one random mutation somewhere below the root; returns its name."""
    candidates = [c for c in _locations(resource) if c[0][0] != "resourceType"]
    loc, value = rng.choice(candidates)
    kind = rng.choice(MUTATIONS)
    if kind == "delete":
        _set(resource, loc, _DELETE)
    elif kind == "kind":
        _set(resource, loc, 5 if isinstance(value, str) else "x")
    elif kind == "date" and isinstance(value, str):
        _set(resource, loc, rng.choice(["2023-02-30", "2023-13-01", "2023-01-01T25:00:00Z"]))
    elif kind == "unknown" and isinstance(value, dict):
        value["fooBar"] = 1
    elif kind == "empty":
        _set(resource, loc, {} if isinstance(value, dict) else [])
    elif kind == "wrap":
        _set(resource, loc, [value])
    elif kind == "unwrap" and isinstance(value, list) and value:
        _set(resource, loc, value[0])
    elif kind == "null":
        _set(resource, loc, None)
    elif kind == "blank":
        _set(resource, loc, "")
    elif kind == "int32":
        _set(resource, loc, 2**31)
    elif kind == "choice" and isinstance(value, dict) and any(_is_choice(k) for k in value):
        value["valueString"] = "x"
        value["valueBoolean"] = True
    return kind


def _is_choice(key: str) -> bool:
    return key.startswith("value") and key != "value"


def _issues(resource: dict[str, Any], engine: Any) -> set[tuple[str, tuple[str, ...]]]:
    return {(i.code, tuple(i.expression)) for i in validate_structure(resource, engine)}


def test_r4_engine_rejects_whatever_the_r4b_cross_check_rejects() -> None:
    sample = int(os.environ.get("FHIR_ENGINES_SAMPLE", "600"))
    rng = random.Random(20261123)
    examples = list(iter_parsed_examples())
    compared = 0
    missed: list[str] = []
    unexplained: list[str] = []
    for name, original in rng.sample(examples, min(sample, len(examples))):
        resource = copy.deepcopy(original)
        kinds = [mutate(resource, rng) for _ in range(rng.randint(1, 3))]
        strict = _issues(copy.deepcopy(resource), "r4")
        try:
            cross = _issues(copy.deepcopy(resource), "r4b")
        except (AttributeError, TypeError, KeyError):
            continue  # R4B itself crashes on some wrong kinds; the R4 engine reported them
        compared += 1
        if cross and not strict:
            missed.append(f"{name} {kinds}: {sorted(cross)[:3]}")
        if strict and not cross and any(code != "required" for code, _ in strict):
            unexplained.append(f"{name} {kinds}: {sorted(strict)[:3]}")
    assert missed == []
    assert unexplained == []
    assert compared > sample * 0.9
