"""The server's FHIR profiles (profiles/README.md): the committed StructureDefinitions are what
SUSHI builds from the FSH sources, and every profile has well-formed fixtures
(tests/fixtures/profiles/README.md).

The build check runs ``make profiles-check`` (SUSHI 3.21.0 from profiles/package-lock.json, the
FHIR core package rebuilt from the R4 example package, no network but the npm registry for the
first ``npm ci``): about 8 s once SUSHI is installed, about 20 s with the install. Without node
and npm it skips, except under CI=true, where it fails. The fixture checks need nothing but the
files; running the fixtures through the validator is a separate test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.r4_examples import examples_dir

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "profiles" / "fsh-generated" / "resources"
FIXTURES = ROOT / "tests" / "fixtures" / "profiles"
CANONICAL = "https://telemedicine.example.org/fhir/StructureDefinition/"
ISSUE_CODES = {"required", "structure", "value", "code-invalid", "invariant"}
_INDEX = re.compile(r"\[(\d+)\]$")


def _definitions() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(GENERATED.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        found[sd["id"]] = sd
    return found


DEFINITIONS = _definitions()
PROFILES = {i: sd for i, sd in DEFINITIONS.items() if sd["type"] != "Extension"}


@pytest.mark.examples
def test_committed_structure_definitions_are_what_sushi_builds() -> None:
    if not (shutil.which("node") and shutil.which("npm")):
        reason = "node and npm are needed to run SUSHI (make profiles-check)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the profile build check")
        pytest.skip(reason)
    done = subprocess.run(
        [
            "make",
            "-s",
            "profiles-check",
            f"R4_EXAMPLES={examples_dir()}",
            f"PYTHON={sys.executable}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "is up to date" in done.stdout


def test_every_definition_has_a_snapshot_and_its_canonical_url() -> None:
    assert PROFILES, f"no StructureDefinitions in {GENERATED}: run `make profiles`"
    for sd_id, sd in DEFINITIONS.items():
        assert sd["url"] == CANONICAL + sd_id
        assert sd["fhirVersion"] == "4.0.1"
        assert sd.get("snapshot", {}).get("element"), f"{sd_id} has no snapshot"
        assert sd.get("description"), f"{sd_id} has no description"


def test_every_profile_has_valid_and_invalid_fixtures() -> None:
    folders = {p.name for p in FIXTURES.iterdir() if p.is_dir()}
    assert folders == set(PROFILES), "one fixture folder per profile, named by its id"
    for profile_id in PROFILES:
        names = [p.name for p in (FIXTURES / profile_id).glob("*.json")]
        assert any(n.startswith("valid-") for n in names), profile_id
        assert any(n.startswith("invalid-") for n in names), profile_id
        assert all(n.startswith(("valid-", "invalid-")) for n in names), profile_id


def _fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.json"))


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_is_well_formed(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    sd = PROFILES[path.parent.name]
    if path.name.startswith("valid-"):
        resource, expect = body, []
    else:
        assert set(body) == {"resource", "expect"}, "an invalid fixture is {resource, expect}"
        resource, expect = body["resource"], body["expect"]
        assert expect, "an invalid fixture expects at least one issue"
    assert resource["resourceType"] == sd["type"]
    assert sd["url"] in resource.get("meta", {}).get("profile", [])
    keys = _constraint_keys(sd)
    for expectation in expect:
        _check_expectation(expectation, resource, keys)


def _constraint_keys(sd: dict[str, Any]) -> set[str]:
    return {c["key"] for e in sd["snapshot"]["element"] for c in e.get("constraint", [])}


def _check_expectation(
    expectation: dict[str, Any], resource: dict[str, Any], keys: set[str]
) -> None:
    assert set(expectation) in ({"expression", "key"}, {"expression", "code"}), expectation
    expression = expectation["expression"]
    if "key" in expectation:
        assert expectation["key"] in keys, (
            f"{expectation['key']} is not a constraint of the profile"
        )
    else:
        assert expectation["code"] in ISSUE_CODES - {"invariant"}, expectation
    steps = expression.split(".")
    assert steps[0] == resource["resourceType"], expression
    missing = expectation.get("code") == "required"
    # A missing element's parent must be there; any other issue names an element that is there.
    _resolve(resource, steps[1:-1] if missing else steps[1:], expression)


def _resolve(node: Any, steps: list[str], expression: str) -> None:
    for step in steps:
        match = _INDEX.search(step)
        name = step[: match.start()] if match else step
        assert isinstance(node, dict) and name in node, f"{expression}: no {step}"
        node = node[name]
        if match:
            index = int(match.group(1))
            assert isinstance(node, list) and index < len(node), f"{expression}: no {step}"
            node = node[index]
