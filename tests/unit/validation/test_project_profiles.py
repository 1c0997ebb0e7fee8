"""The server's own profiles (profiles/, built by SUSHI) against their fixtures
(tests/fixtures/profiles/README.md): every valid fixture validates with no error, every invalid
one fails with exactly the expected (path, issue type or constraint key) pairs — through the
real validator, terminology service (the project's terminology/) and fhirpathpy invariants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.conformance import Conformance
from fhir_server.core.errors import Issue
from fhir_server.interactions.conformance_sync import local_content
from fhir_server.settings import default_conformance_dirs
from fhir_server.terminology import TerminologyService
from fhir_server.validation.profiles import ProfileValidator

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "profiles"
VALID = sorted(FIXTURES.glob("*/valid-*.json"))
INVALID = sorted(FIXTURES.glob("*/invalid-*.json"))


@pytest.fixture(scope="module")
def validator() -> ProfileValidator:
    registry = Conformance.overlay(local_content(default_conformance_dirs()))
    return ProfileValidator(registry, TerminologyService(registry))


def _found(issues: list[Issue]) -> set[tuple[str, str]]:
    found = set()
    for issue in issues:
        if issue.severity not in ("error", "fatal"):
            continue
        what = f"key:{issue.key}" if issue.code == "invariant" else f"code:{issue.code}"
        found.add((issue.expression[0], what))
    return found


def _expected(expect: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {
        (e["expression"], f"key:{e['key']}" if "key" in e else f"code:{e['code']}") for e in expect
    }


def test_every_profile_has_fixtures() -> None:
    assert len(VALID) >= 13 and len(INVALID) >= 13


@pytest.mark.parametrize("path", VALID, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_valid_fixture_has_no_error(validator: ProfileValidator, path: Path) -> None:
    resource = json.loads(path.read_text(encoding="utf-8"))
    issues = validator.validate(resource)
    assert _found(issues) == set(), [i.diagnostics for i in issues]
    assert not [i for i in issues if i.code == "not-supported"], "the profile must be known"


@pytest.mark.parametrize("path", INVALID, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_invalid_fixture_fails_where_expected(validator: ProfileValidator, path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    issues = validator.validate(case["resource"])
    assert _found(issues) == _expected(case["expect"]), [i.diagnostics for i in issues]
