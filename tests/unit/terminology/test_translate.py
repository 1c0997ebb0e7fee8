"""$translate over ConceptMaps (http://hl7.org/fhir/R4/conceptmap-operation-translate.html):
equivalence, reverse, unmapped provided/fixed, and the R4 core gender map."""

from __future__ import annotations

from typing import Any

from fhir_server.conformance import Conformance
from fhir_server.terminology import Coding, TerminologyService, TranslateRequest

A, B = "urn:system:a", "urn:system:b"
MAP: dict[str, Any] = {
    "resourceType": "ConceptMap",
    "url": "http://example.org/ConceptMap/a-to-b",
    "status": "active",
    "sourceUri": "http://example.org/ValueSet/a",
    "targetUri": "http://example.org/ValueSet/b",
    "group": [
        {
            "source": A,
            "target": B,
            "element": [
                {"code": "1", "target": [{"code": "one", "display": "One",
                                          "equivalence": "equivalent"}]},
                {"code": "2", "target": [{"code": "two", "equivalence": "wider"},
                                         {"code": "deux", "equivalence": "disjoint"}]},
            ],
            "unmapped": {"mode": "fixed", "code": "other", "display": "Other"},
        }
    ],
}  # fmt: skip


def matches(parameters: dict[str, Any]) -> list[tuple[str, str | None]]:
    out = []
    for p in parameters["parameter"]:
        if p["name"] == "match":
            parts = {x["name"]: x for x in p["part"]}
            concept = parts.get("concept", {}).get("valueCoding", {})
            out.append((parts["equivalence"]["valueCode"], concept.get("code")))
    return out


def result(parameters: dict[str, Any]) -> bool:
    return bool(parameters["parameter"][0]["valueBoolean"])


def test_translate_by_url_source_target_and_reverse() -> None:
    ts = TerminologyService(Conformance.of([MAP]))
    one = ts.translate(TranslateRequest([Coding(A, "1")], url=MAP["url"]))
    assert result(one) and matches(one) == [("equivalent", "one")]
    two = ts.translate(TranslateRequest([Coding(A, "2")], source="http://example.org/ValueSet/a"))
    assert matches(two) == [("wider", "two"), ("disjoint", "deux")]
    back = ts.translate(TranslateRequest([Coding(B, "one")], reverse=True))
    assert matches(back) == [("equivalent", "1")]
    fixed = ts.translate(TranslateRequest([Coding(A, "9")], target="http://example.org/ValueSet/b"))
    assert matches(fixed) == [("inexact", "other")]
    none = ts.translate(TranslateRequest([Coding(A, "1")], target="http://example.org/other"))
    assert not result(none) and matches(none) == []


def test_unmapped_provided_keeps_the_code() -> None:
    provided = {**MAP, "group": [{**MAP["group"][0], "unmapped": {"mode": "provided"}}]}
    ts = TerminologyService(Conformance.of([provided]))
    assert matches(ts.translate(TranslateRequest([Coding(A, "7")]))) == [("equal", "7")]


def test_r4_core_gender_map() -> None:
    ts = TerminologyService(Conformance.core())
    found = ts.translate(
        TranslateRequest(
            [Coding("http://hl7.org/fhir/administrative-gender", "male")],
            url="http://hl7.org/fhir/ConceptMap/cm-administrative-gender-v3",
        )
    )
    assert result(found) and matches(found) == [("equal", "M")]
