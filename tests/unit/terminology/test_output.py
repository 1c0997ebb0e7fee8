"""The ValueSet ``$expand`` returns (http://hl7.org/fhir/R4/valueset-operation-expand.html):
text filter on code and display, activeOnly, paging with total and offset, designations on
request, and the parameters that shaped the expansion."""

from __future__ import annotations

from fhir_server.terminology import Entry, ExpandOptions, Expansion, expanded_value_set

ENTRIES = (
    Entry("urn:s", "a1", "Apple", designations=({"language": "fr", "value": "Pomme"},)),
    Entry("urn:s", "b1", "Banana", inactive=True),
    Entry("urn:s", "c1", "Cherry", abstract=True),
    Entry("urn:s", "d1", "Date"),
)
EXPANSION = Expansion("http://example.org/vs", "1", ENTRIES, ("urn:s|2",))
VS = {"resourceType": "ValueSet", "url": "http://example.org/vs", "text": {"div": "<div/>"}}


def codes(result: dict[str, object]) -> list[str]:
    expansion = result["expansion"]
    assert isinstance(expansion, dict)
    return [c["code"] for c in expansion.get("contains", [])]


def test_paging_total_and_parameters() -> None:
    result = expanded_value_set(VS, EXPANSION, ExpandOptions(count=2, offset=1), "2026-01-01")
    assert "text" not in result and result["url"] == VS["url"]
    expansion = result["expansion"]
    assert codes(result) == ["b1", "c1"]
    assert expansion["total"] == 4 and expansion["offset"] == 1
    assert expansion["timestamp"] == "2026-01-01"
    assert expansion["parameter"] == [
        {"name": "count", "valueInteger": 2},
        {"name": "offset", "valueInteger": 1},
        {"name": "version", "valueUri": "urn:s|2"},
    ]
    assert expansion["contains"][0]["inactive"] is True
    assert expansion["contains"][1]["abstract"] is True


def test_filter_active_only_and_designations() -> None:
    options = ExpandOptions(filter="A", active_only=True, include_designations=True)
    result = expanded_value_set(VS, EXPANSION, options, "2026-01-01")
    assert codes(result) == ["a1", "d1"]  # 'Banana' is inactive
    assert result["expansion"]["contains"][0]["designation"] == [
        {"language": "fr", "value": "Pomme"}
    ]
    assert (
        expanded_value_set(VS, EXPANSION, ExpandOptions(filter="c1"), "t")["expansion"]["total"]
        == 1
    )
