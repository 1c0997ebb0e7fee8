"""The official R4 example package for tests: where it is, its files, and the invalid ones.

npm ``hl7.fhir.r4.examples@4.0.1`` (HL7 International, CC0-1.0), fetched by ``make r4-examples``
into ``.cache/r4/package``; tests read it from ``$FHIR_R4_EXAMPLES`` (default that folder).
A missing package fails the test that needs it (never a silent skip).

:data:`INVALID_R4_EXAMPLES` lists the examples that are invalid by R4's own StructureDefinitions,
each with the FHIRPath expression of every structural error the server must report for it, and
:data:`INVALID_R4_REASONS` why. :data:`INVALID_R4_IDS` lists those invalid only by their id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server.core import fhirjson

ROOT = Path(__file__).resolve().parents[1]
ENV = "FHIR_R4_EXAMPLES"
DEFAULT = ".cache/r4/package"


def _linkids(*items: str) -> tuple[str, ...]:
    return tuple(f"Questionnaire.item[0].{item}.linkId" for item in items)


# filename -> FHIRPath of every error (an R4 minimum cardinality of 1), in report order.
INVALID_R4_EXAMPLES: dict[str, tuple[str, ...]] = {
    **{
        f"SearchParameter-{name}.json": ("SearchParameter.base",)
        for name in (
            "codesystem-extensions-CodeSystem-author",
            "codesystem-extensions-CodeSystem-effective",
            "codesystem-extensions-CodeSystem-end",
            "codesystem-extensions-CodeSystem-keyword",
            "codesystem-extensions-CodeSystem-workflow",
            "valueset-extensions-ValueSet-author",
            "valueset-extensions-ValueSet-effective",
            "valueset-extensions-ValueSet-end",
            "valueset-extensions-ValueSet-keyword",
            "valueset-extensions-ValueSet-workflow",
        )
    },
    "ImplementationGuide-fhir.json": ("ImplementationGuide.name", "ImplementationGuide.status"),
    "ig-r4.json": ("ImplementationGuide.name", "ImplementationGuide.status"),
    "Questionnaire-qs1.json": _linkids(
        "item[0]",
        "item[1].item[0]",
        "item[2].item[0]",
        "item[3].item[0]",
        "item[4].item[0]",
        "item[5].item[0]",
        "item[6].item[0]",
        "item[7].item[0]",
        "item[8].item[0]",
        "item[9].item[0]",
        "item[10].item[0]",
        "item[11].item[0]",
        "item[12].item[0]",
        "item[13].item[0]",
        "item[14].item[0]",
        "item[15].item[0]",
        "item[15].item[1]",
        "item[15].item[2].item[0]",
        "item[15].item[3].item[0]",
        "item[15].item[4].item[0]",
        "item[15].item[5].item[0]",
        "item[15].item[6].item[0]",
        "item[16].item[0]",
        "item[17].item[0]",
        "item[18].item[0]",
        "item[18].item[1].item[0]",
        "item[18].item[2].item[0]",
        "item[18].item[3].item[0]",
        "item[18].item[4].item[0]",
        "item[18].item[5].item[0]",
        "item[18].item[6].item[0]",
        "item[19].item[0]",
    ),
}

INVALID_R4_REASONS: dict[str, str] = {
    **{
        name: "SearchParameter.base is 1..* and absent"
        for name, expressions in INVALID_R4_EXAMPLES.items()
        if expressions == ("SearchParameter.base",)
    },
    "ImplementationGuide-fhir.json": "ImplementationGuide.name and .status are 1..1 and absent",
    "ig-r4.json": "ImplementationGuide.name and .status are 1..1 and absent",
    "Questionnaire-qs1.json": "display items without Questionnaire.item.linkId (1..1)",
}


# Examples invalid only by their ``id`` (67 characters; R4 allows [A-Za-z0-9\-\.]{1,64},
# http://hl7.org/fhir/R4/datatypes.html#id). Rejected as they are, but a create replaces the id,
# so the server accepts them on create.
INVALID_R4_IDS: dict[str, tuple[str, ...]] = {
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json": (
        "SearchParameter.id",
    ),
}


def examples_dir() -> Path:
    """The unpacked package; fails the calling test when it is missing."""
    folder = Path(os.environ.get(ENV, DEFAULT))
    folder = folder if folder.is_absolute() else ROOT / folder
    if not (folder / "package.json").is_file():
        pytest.fail(
            f"the R4 example package is missing at {folder}: run `make r4-examples` "
            f"(or set {ENV} to the unpacked npm hl7.fhir.r4.examples@4.0.1 package folder)"
        )
    return folder


def example_files() -> list[Path]:
    """Every example resource of the package (package.json excluded), sorted by name."""
    return sorted(p for p in examples_dir().glob("*.json") if p.name != "package.json")


def iter_examples() -> Iterator[tuple[str, bytes]]:
    """(filename, raw JSON bytes) of every example, for tests that send the bytes as received."""
    for path in example_files():
        yield path.name, path.read_bytes()


def iter_parsed_examples() -> Iterator[tuple[str, dict[str, Any]]]:
    """(filename, resource) of every example, parsed by :func:`fhirjson.loads` (exact decimals)."""
    for name, raw in iter_examples():
        yield name, fhirjson.loads(raw)
