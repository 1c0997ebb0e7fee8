"""Every official R4 example (5,306 resources) against the R4 core definitions with the full
validator: structure, terminology bindings (required and extensible, through the terminology
service over the core ValueSets and CodeSystems) and every core profile an example claims in
``meta.profile`` (vitalsigns, bodyweight, ...: cardinality, slicing, fixed/pattern values,
reference targets and their invariants). The core invariants over every example are proven in
tests/unit/validation/test_invariants_examples.py (fhirpathpy is too slow to run them all twice).

An example may fail only with the errors listed in tests/r4_examples.py (structure and ids) or in
:data:`KNOWN_PROFILE_ERRORS` below, each with its reason.
"""

from __future__ import annotations

import json

import pytest

from fhir_server.conformance import Conformance
from fhir_server.terminology import TerminologyService
from fhir_server.validation.profiles import ProfileValidator
from tests.r4_examples import INVALID_R4_EXAMPLES, INVALID_R4_IDS, examples_dir

pytestmark = pytest.mark.examples

#: (example file, FHIRPath of the error) -> why the example itself is wrong.
#: Empty: every example meets its bindings and the core profiles it claims.
KNOWN_PROFILE_ERRORS: dict[tuple[str, str], str] = {}


def test_every_example_meets_the_core_definitions_and_claimed_profiles() -> None:
    registry = Conformance.overlay()
    validator = ProfileValidator(registry, TerminologyService(registry))
    unexpected: list[str] = []
    checked = 0
    for path in sorted(examples_dir().glob("*.json")):
        if path.name in ("package.json", ".index.json"):
            continue
        resource = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(resource, dict) or "resourceType" not in resource:
            continue
        checked += 1
        known = set(INVALID_R4_EXAMPLES.get(path.name, ())) | set(INVALID_R4_IDS.get(path.name, ()))
        for issue in validator.validate(resource):
            if issue.severity not in ("error", "fatal"):
                continue
            where = issue.expression[0] if issue.expression else ""
            if where in known or (path.name, where) in KNOWN_PROFILE_ERRORS:
                continue
            unexpected.append(f"{path.name}: {issue.diagnostics}")
    assert checked > 5000
    assert unexpected == []
