"""ValueSet expansion (http://hl7.org/fhir/R4/valueset.html#compose, terminology-service.html
#expand): includes, excludes, filters, imports, hierarchy, inactive codes, systems not held."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.conformance import Conformance
from fhir_server.terminology import TerminologyService
from fhir_server.terminology.errors import ExpansionNotSupported, TooCostly, UnknownValueSet
from tests.unit.terminology.fixtures import BASE, SHAPES, SHAPES_CS, include, value_set

ALL = value_set("all", include(system=SHAPES))


def service(*resources: dict[str, Any], max_expansion: int = 10_000) -> TerminologyService:
    return TerminologyService(Conformance.of([SHAPES_CS, *resources]), max_expansion)


def codes(ts: TerminologyService, url: str) -> set[str]:
    return {e.code for e in ts.expand(url).entries}


def test_whole_system_and_flags() -> None:
    ts = service(ALL)
    expansion = ts.expand(ALL["url"])
    by_code = {e.code: e for e in expansion.entries}
    assert set(by_code) == {"shape", "polygon", "triangle", "square", "round", "circle",
                            "ellipse", "blob"}  # fmt: skip
    assert by_code["polygon"].abstract and not by_code["square"].abstract
    assert by_code["blob"].inactive
    assert by_code["square"].display == "Square" and by_code["square"].version == "1.0"
    assert expansion.used == (f"{SHAPES}|1.0",)


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("is-a", "round", {"round", "circle", "ellipse"}),  # nested and parent property
        ("descendent-of", "shape", {"polygon", "triangle", "square", "round", "circle", "ellipse"}),
        ("is-not-a", "polygon", {"shape", "round", "circle", "ellipse", "blob"}),
        ("in", "square,circle", {"square", "circle"}),
        ("not-in", "square,circle,blob", {"shape", "polygon", "triangle", "round", "ellipse"}),
        ("regex", "s.*e", {"shape", "square"}),
    ],
)
def test_concept_filters(op: str, value: str, expected: set[str]) -> None:
    vs = value_set("f", include(system=SHAPES, filter=[{"property": "concept", "op": op,
                                                        "value": value}]))  # fmt: skip
    if op == "regex":
        vs = value_set("f", include(system=SHAPES, filter=[{"property": "code", "op": op,
                                                            "value": value}]))  # fmt: skip
    assert codes(service(vs), vs["url"]) == expected


def test_property_filters_and_them_anded() -> None:
    sides = {"property": "sides", "op": "=", "value": "4"}
    vs = value_set("p", include(system=SHAPES, filter=[sides]))
    assert codes(service(vs), vs["url"]) == {"square"}
    both = value_set("b", include(system=SHAPES, filter=[
        {"property": "concept", "op": "is-a", "value": "polygon"},
        {"property": "status", "op": "exists", "value": "false"}]))  # fmt: skip
    assert codes(service(both), both["url"]) == {"polygon", "triangle", "square"}


def test_enumerated_concepts_excludes_and_listed_display() -> None:
    vs = value_set("e", {
        "include": [{"system": SHAPES, "concept": [
            {"code": "square", "display": "A square"}, {"code": "circle"}, {"code": "nope"}]}],
        "exclude": [{"system": SHAPES, "concept": [{"code": "circle"}]}],
    })  # fmt: skip
    entries = service(vs).expand(vs["url"]).entries
    assert [(e.code, e.display) for e in entries] == [("square", "A square")]


def test_imports_are_intersected_and_cycles_detected() -> None:
    polygons = value_set("polygons", include(system=SHAPES, filter=[
        {"property": "concept", "op": "is-a", "value": "polygon"}]))  # fmt: skip
    four = value_set("four", include(system=SHAPES, filter=[
        {"property": "sides", "op": "=", "value": "4"}]))  # fmt: skip
    both = value_set("both", include(valueSet=[polygons["url"], four["url"]]))
    either = value_set("either", {"include": [{"valueSet": [polygons["url"]]},
                                              {"valueSet": [four["url"]]}]})  # fmt: skip
    ts = service(polygons, four, both, either)
    assert codes(ts, both["url"]) == {"square"}
    assert codes(ts, either["url"]) == {"polygon", "triangle", "square"}
    a = value_set("a", include(valueSet=[f"{BASE}/ValueSet/b"]))
    b = value_set("b", include(valueSet=[f"{BASE}/ValueSet/a"]))
    with pytest.raises(ExpansionNotSupported, match="cycle"):
        service(a, b).expand(a["url"])


def test_inactive_left_out_when_compose_says_so() -> None:
    vs = value_set("active", {"inactive": False, "include": [{"system": SHAPES}]})
    assert "blob" not in codes(service(vs), vs["url"])


def test_system_not_held_needs_enumerated_codes() -> None:
    snomed = "http://snomed.info/sct"
    listed = value_set("listed", include(system=snomed, concept=[{"code": "1", "display": "x"}]))
    ts = service(listed)
    assert [(e.system, e.code) for e in ts.expand(listed["url"]).entries] == [(snomed, "1")]
    whole = value_set("whole", include(system=snomed))
    filtered = value_set("filtered", include(system=snomed, filter=[
        {"property": "concept", "op": "is-a", "value": "1"}]))  # fmt: skip
    ts = service(whole, filtered)
    with pytest.raises(ExpansionNotSupported, match=r"all codes of code system 'http://snomed"):
        ts.expand(whole["url"])
    with pytest.raises(ExpansionNotSupported, match="a filter on"):
        ts.expand(filtered["url"])


def test_expansion_only_value_set_is_used_as_is() -> None:
    vs: dict[str, Any] = {"resourceType": "ValueSet", "url": f"{BASE}/ValueSet/x", "expansion": {
        "timestamp": "2020-01-01", "contains": [{"system": "urn:a", "code": "1", "contains": [
            {"system": "urn:a", "code": "2"}]}]}}  # fmt: skip
    assert codes(service(vs), vs["url"]) == {"1", "2"}


def test_unknown_too_large_and_cache_invalidation() -> None:
    ts = service(ALL, max_expansion=3)
    with pytest.raises(TooCostly, match="more than 3 codes"):
        ts.expand(ALL["url"])
    with pytest.raises(UnknownValueSet, match="http://nowhere"):
        service().expand("http://nowhere")
    registry = Conformance.of([SHAPES_CS, ALL])
    ts = TerminologyService(registry)
    assert "hexagon" not in codes(ts, ALL["url"])
    changed = {**SHAPES_CS, "concept": [*SHAPES_CS["concept"], {"code": "hexagon"}]}
    registry.add(changed)  # a new generation: the cached expansion is dropped
    assert "hexagon" in codes(ts, ALL["url"])


def test_contains_is_a_set_lookup_and_none_when_unknown() -> None:
    ts = service(ALL)
    assert ts.contains(ALL["url"], SHAPES, "square") is True
    assert ts.contains(ALL["url"], SHAPES, "hexagon") is False
    assert ts.contains(ALL["url"], None, "square") is True
    assert ts.contains(ALL["url"], "urn:other", "square") is False
    assert ts.contains("http://nowhere", SHAPES, "square") is None


def test_subsumption_below_and_above() -> None:
    ts = service()
    assert ts.subsumption(SHAPES, "round", "below") == [
        (SHAPES, "round"), (SHAPES, "circle"), (SHAPES, "ellipse"),
    ]  # fmt: skip
    assert ts.subsumption(SHAPES, "circle", "above") == [
        (SHAPES, "circle"), (SHAPES, "round"), (SHAPES, "shape"),
    ]  # fmt: skip
    with pytest.raises(ExpansionNotSupported, match="urn:nowhere"):
        ts.subsumption("urn:nowhere", "x", "below")


def test_subsumption_in_r4_v3_act_code() -> None:
    act_code = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
    ts = TerminologyService(Conformance.core())
    below = {code for _, code in ts.subsumption(act_code, "IMP", "below")}
    assert below == {"IMP", "ACUTE", "NONAC"}
    assert "_ActEncounterCode" in {code for _, code in ts.subsumption(act_code, "IMP", "above")}
