"""_summary and _elements (R4 search.html#summary, #elements) on single resources."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.core.fhirjson import FhirDecimal
from fhir_server.core.r4 import is_resource_type
from fhir_server.interactions.subsetting import (
    SUBSETTED_CODE,
    SUBSETTED_SYSTEM,
    Subsetting,
    SummaryMode,
    apply_elements,
    apply_summary,
    parse_elements,
    parse_subsetting,
    parse_summary,
)
from tests.r4_examples import example_files

SUBSETTED = {"system": SUBSETTED_SYSTEM, "code": SUBSETTED_CODE, "display": "subsetted"}
OTHER_TAG = {"system": "http://example.org/tags", "code": "vip"}
Json = dict[str, Any]


def patient() -> Json:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "3", "tag": [OTHER_TAG]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">P</div>'},
        "extension": [{"url": "http://example.org/ext", "valueString": "x"}],
        "modifierExtension": [{"url": "http://example.org/mod", "valueBoolean": True}],
        "identifier": [{"system": "urn:oid:1.2.3", "value": "12345"}],
        "name": [{"family": "Chalmers", "given": ["Peter"], "_given": [{"id": "g1"}]}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://example.org/t", "valueTime": "14:35:45"}]},
        "deceasedBoolean": False,
        "maritalStatus": {"text": "married"},
        "contact": [{"name": {"family": "Du Marché"}, "gender": "female"}],
        "link": [
            {
                "id": "l1",
                "extension": [{"url": "http://example.org/e", "valueCode": "a"}],
                "other": {"reference": "Patient/p2"},
                "type": "seealso",
            }
        ],
    }


def observation() -> Json:
    return {
        "resourceType": "Observation",
        "id": "bp",
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">BP</div>',
        },
        "status": "final",
        "category": [{"text": "vital-signs"}],
        "code": {"text": "Blood pressure"},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2012-09-17",
        "valueQuantity": {"value": FhirDecimal("1.50"), "unit": "mmHg"},
        "interpretation": [{"text": "low"}],
        "note": [{"text": "resting"}],
        "component": [
            {
                "extension": [{"url": "http://example.org/e", "valueString": "x"}],
                "modifierExtension": [{"url": "http://example.org/m", "valueString": "y"}],
                "code": {"text": "Systolic"},
                "valueQuantity": {"value": 107, "unit": "mmHg"},
                "interpretation": [{"text": "normal"}],
                "referenceRange": [{"low": {"value": 90}}],
            },
            {"code": {"text": "Note"}, "valueString": "n/a", "_valueString": {"id": "v1"}},
        ],
        "referenceRange": [{"text": "normal"}],
    }


def questionnaire() -> Json:
    return {
        "resourceType": "Questionnaire",
        "id": "q1",
        "status": "active",
        "title": "Intake",
        "description": "Long description",
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "text": "About you",
                "item": [
                    {"linkId": "1.1", "type": "string", "text": "Name"},
                    {
                        "linkId": "1.2",
                        "type": "group",
                        "item": [{"linkId": "1.2.1", "type": "date"}],
                    },
                ],
            }
        ],
    }


def structure_map() -> Json:
    """StructureMap.group.rule.rule is ``#StructureMap.group.rule`` (a content reference)."""
    return {
        "resourceType": "StructureMap",
        "id": "sm",
        "url": "http://example.org/sm",
        "name": "Map",
        "status": "draft",
        "description": "not summary",
        "group": [
            {
                "name": "g",
                "typeMode": "none",
                "input": [{"name": "src", "mode": "source", "documentation": "dropped"}],
                "rule": [
                    {
                        "name": "outer",
                        "source": [{"context": "src"}],
                        "documentation": "dropped",
                        "rule": [
                            {"name": "inner", "source": [{"context": "x"}], "documentation": "d"},
                            {"name": "innermost", "source": [{"context": "y"}]},
                        ],
                    }
                ],
            }
        ],
    }


def tags(resource: Json) -> list[Json]:
    result: list[Json] = resource.get("meta", {}).get("tag", [])
    return result


def subsetted_count(resource: Json) -> int:
    return sum(1 for t in tags(resource) if t.get("code") == SUBSETTED_CODE)


# --- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["true", "text", "data", "false"])
def test_parse_summary_accepts_the_r4_codes(mode: str) -> None:
    assert parse_summary(mode) is SummaryMode(mode)
    assert parse_summary(f" {mode} ") is SummaryMode(mode)


@pytest.mark.parametrize("value", ["maybe", "TRUE", "", "1"])
def test_parse_summary_rejects_unknown_values_without_echoing_them(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_summary(value)
    message = caught.value.diagnostics
    assert "_summary" in message and "true, text, data, count, false" in message
    assert "maybe" not in message


def test_count_is_refused_unless_the_caller_allows_it() -> None:
    with pytest.raises(InvalidRequest, match="only meaningful for search"):
        parse_summary("count")
    assert parse_summary("count", allow_count=True) is SummaryMode.COUNT
    with pytest.raises(InvalidRequest, match="only meaningful for search"):
        apply_summary(patient(), SummaryMode.COUNT)


def test_parse_elements_canonicalises_and_ignores_blanks() -> None:
    names = parse_elements(
        " value[x], ,status,value,Observation.code,valueQuantity,", "Observation"
    )
    assert names == ("value", "status", "code", "valueQuantity")


@pytest.mark.parametrize("value", ["", " , ,", ","])
def test_parse_elements_rejects_an_empty_list(value: str) -> None:
    with pytest.raises(InvalidRequest, match="_elements is empty"):
        parse_elements(value, "Patient")


def test_parse_elements_names_unknown_elements_and_the_type() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_elements("name,foo,valueQuantity,name.family", "Patient")
    message = caught.value.diagnostics
    assert "Patient" in message and "foo" in message and "valueQuantity" in message
    assert "1 entry not shaped like an element name" in message
    assert caught.value.issues[0].expression == ("_elements",)


def test_parse_elements_does_not_echo_arbitrary_text() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_elements("name,Jane Doe 1974-12-25,Observation.code", "Patient")
    assert "Jane" not in caught.value.diagnostics
    assert "2 entries not shaped like an element name" in caught.value.diagnostics


def test_summary_and_elements_together() -> None:
    with pytest.raises(InvalidRequest, match="cannot be used together"):
        parse_subsetting("Patient", "true", "name")
    with pytest.raises(InvalidRequest, match="cannot be used together"):
        parse_subsetting("Patient", "data", "name")
    assert parse_subsetting("Patient", "false", "name") == Subsetting(SummaryMode.FALSE, ("name",))
    count = parse_subsetting("Patient", "count", "name", allow_count=True)
    assert count.summary is SummaryMode.COUNT
    assert parse_subsetting("Patient") == Subsetting()


def test_subsetting_apply() -> None:
    assert parse_subsetting("Patient").apply(patient()) == patient()
    by_elements = parse_subsetting("Patient", None, "gender").apply(patient())
    assert set(by_elements) == {"resourceType", "id", "meta", "gender"}
    by_summary = parse_subsetting("Patient", "data").apply(patient())
    assert "text" not in by_summary


# --- _summary -------------------------------------------------------------------------------------


def test_summary_true_on_patient() -> None:
    out = apply_summary(patient(), SummaryMode.TRUE)
    assert list(out) == [
        "resourceType",
        "id",
        "meta",
        "identifier",
        "name",
        "gender",
        "birthDate",
        "_birthDate",
        "deceasedBoolean",
        "link",
    ]
    assert out["name"] == patient()["name"]  # data types are kept whole, _given included
    assert out["link"] == [{"other": {"reference": "Patient/p2"}, "type": "seealso"}]
    assert out["meta"] == {"versionId": "3", "tag": [OTHER_TAG, SUBSETTED]}


def test_summary_true_follows_the_table_for_modifier_extension() -> None:
    # R4: DomainResource.modifierExtension is not summary; BackboneElement.modifierExtension is.
    assert "modifierExtension" not in apply_summary(patient(), SummaryMode.TRUE)
    component = apply_summary(observation(), SummaryMode.TRUE)["component"][0]
    assert "modifierExtension" in component


def test_summary_true_on_observation_choice_and_backbone() -> None:
    source = observation()
    out = apply_summary(source, SummaryMode.TRUE)
    assert set(out) == {
        "resourceType",
        "id",
        "meta",
        "status",
        "code",
        "subject",
        "effectiveDateTime",
        "valueQuantity",
        "component",
    }
    assert out["valueQuantity"]["value"] is source["valueQuantity"]["value"]
    assert out["component"] == [
        {
            "modifierExtension": [{"url": "http://example.org/m", "valueString": "y"}],
            "code": {"text": "Systolic"},
            "valueQuantity": {"value": 107, "unit": "mmHg"},
        },
        {"code": {"text": "Note"}, "valueString": "n/a", "_valueString": {"id": "v1"}},
    ]
    assert tags(out) == [SUBSETTED]


def test_summary_true_keeps_mandatory_non_summary_backbones() -> None:
    # AuditEvent.source is 1..1 without isSummary; its summary children remain.
    event = {
        "resourceType": "AuditEvent",
        "type": {"code": "rest"},
        "recorded": "2020-01-01T00:00:00Z",
        "agent": [{"requestor": True, "name": "dropped"}],
        "source": {"observer": {"display": "server"}, "site": "dropped"},
    }
    out = apply_summary(event, SummaryMode.TRUE)
    assert out["source"] == {"observer": {"display": "server"}}
    assert out["agent"] == [{"requestor": True}]


def test_summary_true_follows_content_references() -> None:
    out = apply_summary(structure_map(), SummaryMode.TRUE)
    assert "description" not in out
    group = out["group"][0]
    assert group["input"] == [{"name": "src", "mode": "source"}]
    outer = group["rule"][0]
    assert "documentation" not in outer
    assert outer["rule"] == [
        {"name": "inner", "source": [{"context": "x"}]},
        {"name": "innermost", "source": [{"context": "y"}]},
    ]


def test_summary_true_on_questionnaire_drops_items() -> None:
    # R4: Questionnaire.item is not isSummary, so the whole (nested) item tree leaves.
    out = apply_summary(questionnaire(), SummaryMode.TRUE)
    assert set(out) == {"resourceType", "id", "meta", "status", "title"}
    assert subsetted_count(out) == 1


def test_summary_true_drops_attachment_data() -> None:
    document = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [
            {"attachment": {"contentType": "text/plain", "data": "aGVsbG8=", "_data": {"id": "d"}}},
            {"attachment": {"data": "aGVsbG8="}},
        ],
    }
    out = apply_summary(document, SummaryMode.TRUE)
    assert out["content"] == [{"attachment": {"contentType": "text/plain"}}]
    assert subsetted_count(out) == 1


def test_summary_text() -> None:
    out = apply_summary(observation(), SummaryMode.TEXT)
    assert list(out) == ["resourceType", "id", "meta", "text", "status", "code"]
    assert out["text"] == observation()["text"]
    assert tags(out) == [SUBSETTED]


def test_summary_data() -> None:
    out = apply_summary(patient(), SummaryMode.DATA)
    expected = {k: v for k, v in patient().items() if k != "text"}
    expected["meta"] = {"versionId": "3", "tag": [OTHER_TAG, SUBSETTED]}
    assert out == expected


def test_nothing_removed_means_no_tag() -> None:
    source = {k: v for k, v in observation().items() if k != "text"}
    assert apply_summary(source, SummaryMode.DATA) == source
    minimal = {"resourceType": "Patient", "id": "p", "gender": "male"}
    assert apply_summary(minimal, SummaryMode.TRUE) == minimal


def test_summary_false_returns_everything_untagged() -> None:
    source = patient()
    out = apply_summary(source, SummaryMode.FALSE)
    assert out == source and out is not source


def test_tag_is_not_duplicated() -> None:
    source = patient()
    source["meta"]["tag"] = [SUBSETTED, OTHER_TAG]
    out = apply_summary(source, SummaryMode.TRUE)
    assert tags(out) == [SUBSETTED, OTHER_TAG]
    again = apply_summary(out, SummaryMode.TRUE)
    assert again == out


def test_meta_is_created_after_id_when_absent() -> None:
    source = {"resourceType": "Patient", "id": "p", "photo": [{"url": "http://x"}]}
    out = apply_elements(source, ("gender",))
    assert list(out) == ["resourceType", "id", "meta"]
    assert out["meta"] == {"tag": [SUBSETTED]}


# --- _elements ------------------------------------------------------------------------------------


def test_elements_on_patient() -> None:
    out = apply_elements(patient(), parse_elements("birthDate,deceased", "Patient"))
    assert list(out) == ["resourceType", "id", "meta", "birthDate", "_birthDate", "deceasedBoolean"]
    assert tags(out) == [OTHER_TAG, SUBSETTED]


def test_elements_keep_backbones_whole() -> None:
    out = apply_elements(patient(), ("contact", "link"))
    assert out["contact"] == patient()["contact"]
    assert out["link"] == patient()["link"]


def test_elements_choice_names_and_mandatory_elements() -> None:
    for names in (("value",), ("valueQuantity",)):
        out = apply_elements(observation(), names)
        assert set(out) == {"resourceType", "id", "meta", "status", "code", "valueQuantity"}
    out = apply_elements(observation(), ("valueString",))
    assert "valueQuantity" not in out


def test_elements_on_questionnaire_keep_nested_items() -> None:
    source = questionnaire()
    out = apply_elements(source, ("item",))
    assert set(out) == {"resourceType", "id", "meta", "status", "item"}
    assert out["item"] == source["item"]


def test_apply_elements_validates_names() -> None:
    with pytest.raises(InvalidRequest, match="Patient"):
        apply_elements(patient(), ("component",))


def test_not_a_resource() -> None:
    with pytest.raises(ValueError):
        apply_summary({"id": "x"}, SummaryMode.TRUE)
    with pytest.raises(ValueError):
        apply_elements({"resourceType": "Element"}, ("id",))
    with pytest.raises(ValueError):
        parse_elements("id", "NotAType")


# --- the input is never changed -------------------------------------------------------------------


@pytest.mark.parametrize("mode", [m for m in SummaryMode if m is not SummaryMode.COUNT])
@pytest.mark.parametrize("make", [patient, observation, questionnaire, structure_map])
def test_summary_never_mutates_the_input(mode: SummaryMode, make: Any) -> None:
    source = make()
    before = copy.deepcopy(source)
    meta_before = source.get("meta")
    out = apply_summary(source, mode)
    assert source == before
    assert source.get("meta") is meta_before
    if "meta" in source and subsetted_count(out):
        # the tag goes into new containers; unchanged sub-objects may be shared (read-only)
        assert out["meta"] is not source["meta"]
        assert out["meta"]["tag"] is not source["meta"].get("tag")


def test_elements_never_mutates_the_input() -> None:
    source = patient()
    before = copy.deepcopy(source)
    apply_elements(source, ("name",))
    assert source == before


# --- every official example -----------------------------------------------------------------------


def _empties_created(out: Any, source: Any) -> bool:
    """Whether subsetting built an empty object or array (shared sub-objects are skipped)."""
    if out is source:
        return False
    if isinstance(out, dict):
        src = source if isinstance(source, dict) else {}
        return not out or any(_empties_created(v, src.get(k)) for k, v in out.items())
    if isinstance(out, list):
        same = isinstance(source, list) and len(source) == len(out)
        pairs = zip(out, source if same else [None] * len(out), strict=True)
        return not out or any(_empties_created(v, s) for v, s in pairs)
    return False


@pytest.mark.examples
def test_summary_on_every_official_example() -> None:
    checked = 0
    for path in example_files():
        resource = orjson.loads(path.read_bytes())  # floats are fine here, and fast
        if not is_resource_type(str(resource.get("resourceType"))):
            continue
        before = orjson.dumps(resource)
        for mode in (SummaryMode.TRUE, SummaryMode.TEXT, SummaryMode.DATA):
            out = apply_summary(resource, mode)
            assert not _empties_created(out, resource), path.name
            assert out.get("id") == resource.get("id"), path.name
            assert subsetted_count(out) == 1 or out == resource, path.name
            assert apply_summary(out, mode) == out, path.name
        assert orjson.dumps(resource) == before, path.name
        checked += 1
    assert checked > 2000
