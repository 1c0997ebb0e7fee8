"""Structural validation over the whole official R4 example package (5,306 resources).

Every example passes, except those invalid by R4's own StructureDefinitions or by their id
(tests/r4_examples.py), which fail with exactly the listed errors. The package also holds every
R4 datatype StructureDefinition: the R4B datatype models are compared with them, so the gap list
in fhir_server/validation/r4_gaps.py is proven complete for datatypes too. A missing package
fails (run ``make r4-examples``); it is never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fhir_server.core import models
from fhir_server.core.errors import Issue
from fhir_server.core.r4 import ElementInfo
from fhir_server.validation import r4_gaps, validate_structure
from tests.r4_examples import (
    INVALID_R4_EXAMPLES,
    INVALID_R4_IDS,
    examples_dir,
    iter_parsed_examples,
)
from tests.unit.validation.r4_r4b_diff import diff_model

pytestmark = pytest.mark.examples

EXPECTED = {
    **{name: [("required", (e,)) for e in exprs] for name, exprs in INVALID_R4_EXAMPLES.items()},
    **{name: [("value", (e,)) for e in exprs] for name, exprs in INVALID_R4_IDS.items()},
}


def test_every_example_validates_except_the_invalid_ones() -> None:
    """One pass (R4B validation of the package takes ~30 s): valid ones clean, others exact."""
    checked = 0
    unexpected: dict[str, list[str]] = {}
    invalid: dict[str, list[Issue]] = {}
    for name, resource in iter_parsed_examples():
        issues = validate_structure(resource)
        checked += 1
        if name in EXPECTED:
            invalid[name] = issues
        elif issues:
            unexpected[name] = [i.diagnostics for i in issues[:5]]
    assert unexpected == {}
    assert checked == 5306, "the whole package, not a sample"
    for name, expected in EXPECTED.items():
        assert [(i.code, i.expression) for i in invalid[name]] == expected, name
        assert all(i.diagnostics.startswith(f"{i.expression[0]}: ") for i in invalid[name])


def _snapshot(path: Path) -> dict[str, ElementInfo]:
    sd = json.loads(path.read_bytes())
    out: dict[str, ElementInfo] = {}
    for element in sd["snapshot"]["element"][1:]:
        types = [t["code"] for t in element.get("type", [])]
        if "contentReference" in element:
            types = [element["contentReference"]]
        entry = [element.get("min", 0), element.get("max", "*"), False, types]
        out[element["path"]] = ElementInfo(element["path"], entry)
    return out


def _datatype_definitions() -> dict[str, dict[str, ElementInfo]]:
    found: dict[str, dict[str, ElementInfo]] = {}
    for path in sorted(examples_dir().glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_bytes())
        if (
            sd.get("kind") == "complex-type"
            and sd.get("derivation") == "specialization"
            and not sd.get("abstract")
        ):
            found[sd["type"]] = _snapshot(path)
    return found


def _children(table: dict[str, ElementInfo]) -> Callable[[str], dict[str, ElementInfo]]:
    def children(parent: str) -> dict[str, ElementInfo]:
        prefix = parent + "."
        return {
            info.name: info
            for p, info in table.items()
            if p.startswith(prefix) and "." not in p[len(prefix) :]
        }

    return children


def test_r4b_datatype_differences_are_all_in_the_gap_list() -> None:
    definitions = _datatype_definitions()
    assert {"Extension", "ElementDefinition", "Meta", "Dosage"} <= definitions.keys()
    without_model = {t for t in definitions if not models.has_model(t)}
    assert without_model == {"SubstanceAmount"}  # used by fallback types only, checked as JSON
    seen: set[tuple[str, str]] = set()
    found = {
        diff
        for name, table in definitions.items()
        if name not in without_model
        for diff in diff_model(_children(table), name, name, seen)
    }
    reached = {model for _, model in seen}  # datatype models and their backbone models
    extension_primitives = {
        spec.name
        for spec in models.fields("Extension").values()
        if spec.is_primitive and spec.name not in ("id", "url") and not spec.primitive_extension
    }
    listed = (
        {(m, k, "r4b-only") for m, k in r4_gaps.R4B_ONLY_ELEMENTS if m in reached}
        | {(m, k, "r4-only") for m, k in r4_gaps.R4B_MISSING_ELEMENTS}
        | {("Extension", f"_{k}", "r4-only") for k in extension_primitives}
        | {(m, k, "required") for m, (keys, _) in r4_gaps.R4B_LAX_REQUIRED.items() for k in keys}
    )
    assert found == listed
