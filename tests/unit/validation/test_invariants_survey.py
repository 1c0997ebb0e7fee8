"""Every constraint expression of the R4 core StructureDefinitions compiles, or is in OVERRIDES.

A new expression (another package, a fixed R4 snapshot) that neither parses with a known set
of functions nor is listed with its reason in :data:`invariants.OVERRIDES` fails this test.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from fhir_server.validation.invariants import OVERRIDES, Constraint, compile_invariant
from tests.r4_examples import examples_dir

pytestmark = pytest.mark.examples


def core_constraints() -> dict[tuple[str, str], Constraint]:
    """(key, expression) -> one Constraint carrying it, over every snapshot of the package."""
    found: dict[tuple[str, str], Constraint] = {}
    for path in sorted(examples_dir().glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text())
        for element in sd.get("snapshot", {}).get("element", []):
            for c in element.get("constraint", []):
                constraint = Constraint(
                    c["key"], c["severity"], c["human"], c.get("expression", ""), sd["url"]
                )
                found.setdefault((constraint.key, constraint.expression), constraint)
    return found


def test_every_core_expression_compiles_or_is_listed() -> None:
    constraints = core_constraints()
    assert len(constraints) > 200
    how = Counter()
    broken = []
    for (key, expression), constraint in sorted(constraints.items()):
        invariant = compile_invariant(constraint)
        how[invariant.how] += 1
        if invariant.error is not None and (key, expression) not in OVERRIDES:
            broken.append(f"{key}: {expression!r}: {invariant.error}")
    print(f"\n{len(constraints)} distinct R4 constraints: {dict(how)}")
    assert not broken, "\n".join(broken)


def test_every_override_names_a_core_constraint() -> None:
    """The table lists nothing the R4 package does not have (no stale rows)."""
    assert set(OVERRIDES) <= set(core_constraints())


def test_overrides_say_why_and_replacements_compile() -> None:
    for (key, expression), override in OVERRIDES.items():
        assert len(override.reason) > 20, key
        if override.action == "replace":
            constraint = Constraint(key, "error", "", expression, "test")
            invariant = compile_invariant(constraint)
            assert invariant.how == "fhirpath" and invariant.error is None, key


def test_every_expression_of_the_server_profiles_compiles() -> None:
    """The server's own profiles (profiles/fsh-generated) add invariants; all must compile."""
    folder = Path(__file__).resolve().parents[3] / "profiles" / "fsh-generated" / "resources"
    files = sorted(folder.glob("StructureDefinition-*.json"))
    assert files
    broken = []
    for path in files:
        sd = json.loads(path.read_text())
        for element in sd.get("snapshot", {}).get("element", []):
            for c in element.get("constraint", []):
                constraint = Constraint(
                    c["key"], c["severity"], c["human"], c.get("expression", ""), sd["url"]
                )
                invariant = compile_invariant(constraint)
                if invariant.error is not None:
                    broken.append(f"{path.name} {c['key']}: {invariant.error}")
    assert not broken, "\n".join(broken)
