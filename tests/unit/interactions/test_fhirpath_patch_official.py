"""The FHIRPath Patch cases of FHIR/fhir-test-cases (r4/patch/fhir-patch-tests.xml), transcribed
into FHIR JSON in data/fhir-patch-tests.json (see data/SOURCE.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.core.errors import UnprocessableResource
from fhir_server.interactions.fhirpath_patch import apply_fhirpath_patch, parse_fhirpath_patch
from fhir_server.validation.structure import validate_structure

DATA = Path(__file__).parent / "data"
OFFICIAL = json.loads((DATA / "fhir-patch-tests.json").read_text(encoding="utf-8"))


def test_official_file_names_its_source_and_holds_every_case() -> None:
    source = OFFICIAL["source"]
    assert source["repository"].endswith("FHIR/fhir-test-cases")
    assert source["path"] == "r4/patch/fhir-patch-tests.xml" and len(source["commit"]) == 40
    assert len(OFFICIAL["cases"]) == 33
    assert all(case["mode"] in ("both", "forwards") for case in OFFICIAL["cases"])


@pytest.mark.parametrize("case", OFFICIAL["cases"], ids=[c["name"] for c in OFFICIAL["cases"]])
def test_official_case(case: dict[str, Any]) -> None:
    """Every case applies forwards ('both' cases also serve diff engines, which this server
    does not have); a case with an expected error must fail, naming the operation."""
    for part in ("input", "output", "patch"):
        if part in case:
            assert validate_structure(case[part]) == [], part  # the transcription is valid R4
    original = copy.deepcopy(case["input"])
    operations = parse_fhirpath_patch(case["patch"])
    if "error" in case:
        with pytest.raises(UnprocessableResource) as caught:
            apply_fhirpath_patch(case["input"], operations)
        assert caught.value.issues[0].expression == ("Parameters.parameter[0]",)
        assert "matches no element" in caught.value.diagnostics
    else:
        assert apply_fhirpath_patch(case["input"], operations) == case["output"]
    assert case["input"] == original
