"""The server's own terminology (``terminology/*.json``, canonical base
https://telemedicine.example.org/fhir) through the terminology service over the R4 core: every
ValueSet expands (imports of our value sets, enumerated DICOM codes the server does not hold as a
CodeSystem), and every ConceptMap translates its own first element."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fhir_server.conformance import Conformance
from fhir_server.terminology import Coding, TerminologyService, TranslateRequest
from tests.unit.terminology_content.content import TERMINOLOGY

BASE = "https://telemedicine.example.org/fhir"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
RESOURCES: list[dict[str, Any]] = [
    json.loads(path.read_text(encoding="utf-8")) for path in sorted(TERMINOLOGY.glob("*.json"))
]


@pytest.fixture(scope="module")
def service() -> TerminologyService:
    return TerminologyService(Conformance.of(RESOURCES, base=Conformance.core()))


@pytest.mark.parametrize("url", [r["url"] for r in RESOURCES if r["resourceType"] == "ValueSet"])
def test_every_value_set_expands(service: TerminologyService, url: str) -> None:
    expansion = service.expand(url)
    assert expansion.entries, url
    assert not expansion.partial


def test_series_modality_imports_the_image_modalities(service: TerminologyService) -> None:
    series = f"{BASE}/ValueSet/teleradiology-series-modality"
    images = service.codes(f"{BASE}/ValueSet/teleradiology-modality")
    assert images <= service.codes(series)
    assert service.contains(series, DCM, "SR") is True
    assert service.contains(series, DCM, "SC") is False  # RO-14: no secondary capture


@pytest.mark.parametrize(
    "concept_map", [r for r in RESOURCES if r["resourceType"] == "ConceptMap"],
    ids=lambda r: str(r["id"]),
)  # fmt: skip
def test_every_concept_map_translates(
    service: TerminologyService, concept_map: dict[str, Any]
) -> None:
    group = concept_map["group"][0]
    element = group["element"][0]
    found = service.translate(
        TranslateRequest([Coding(group["source"], element["code"])], url=concept_map["url"])
    )
    assert found["parameter"][0] == {"name": "result", "valueBoolean": True}
