"""The reference walker (validation/references.py): every reference-like string of a resource,
and the local references among them.

The official examples are checked against an independent oracle: every string of the JSON,
resolved one by one with validation/paths.py (the locations the structural validation reports).
"""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core import fhirjson
from fhir_server.core.errors import UnprocessableResource
from fhir_server.validation import references, schema
from fhir_server.validation.paths import Loc, resolve
from fhir_server.validation.references import (
    CONDITIONAL,
    LocalReference,
    local_references,
    parse_local,
    reference_sites,
)
from tests.r4_examples import iter_parsed_examples

BASE = "https://fhir.example.org/r4"


def _strings(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    if isinstance(value, str):
        return [(loc, value)]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in _strings(item, (*loc, key))]
    if isinstance(value, list):
        return [s for i, item in enumerate(value) for s in _strings(item, (*loc, i))]
    return []


def _oracle(resource: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(path, kind, value) of every reference-like string, each resolved on its own."""
    root = schema.resource_node(resource["resourceType"])
    assert root is not None
    found = []
    for loc, value in _strings(resource, ()):
        if loc[-1] == "reference":
            holder = resolve(root, resource, loc[:-1])
            if holder.element is not None and holder.element.type_code == "Reference":
                found.append((holder.expression, "Reference", value))
                continue
        res = resolve(root, resource, loc)
        if res.element is not None and res.element.type_code in references.URI_KINDS:
            found.append((res.expression, res.element.type_code, value))
    return found


def _walked(resource: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s.path, s.kind, s.value) for s in reference_sites(resource)]


def test_sites_of_an_observation() -> None:
    observation = {
        "resourceType": "Observation",
        "meta": {"profile": ["http://example.org/p1", "http://example.org/p2"]},
        "extension": [
            {"url": "http://example.org/a", "valueString": "x"},
            {"url": "http://example.org/b", "valueReference": {"reference": "Patient/p"}},
        ],
        "contained": [
            {"resourceType": "Patient", "id": "c", "managingOrganization": {"reference": "O/o"}}
        ],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}]},
        "subject": {"reference": "Patient/p", "type": "Patient"},
        "performer": [{"display": "no literal"}, {"reference": "#c"}],
        "valueQuantity": {"value": 1, "system": "http://unitsofmeasure.org", "code": "mg"},
        "_status": {"extension": [{"url": "http://example.org/s", "valueUri": "urn:uuid:x"}]},
    }
    sites = list(reference_sites(observation))
    assert [(s.path, s.kind, s.value) for s in sites] == [
        ("Observation.meta.profile[0]", "canonical", "http://example.org/p1"),
        ("Observation.meta.profile[1]", "canonical", "http://example.org/p2"),
        ("Observation.extension[0].url", "uri", "http://example.org/a"),
        ("Observation.extension[1].url", "uri", "http://example.org/b"),
        ("Observation.extension[1].value.ofType(Reference)", "Reference", "Patient/p"),
        ("Observation.contained[0].managingOrganization", "Reference", "O/o"),
        ("Observation.code.coding[0].system", "uri", "http://loinc.org"),
        ("Observation.subject", "Reference", "Patient/p"),
        ("Observation.subject.type", "uri", "Patient"),
        ("Observation.performer[1]", "Reference", "#c"),
        ("Observation.value.ofType(Quantity).system", "uri", "http://unitsofmeasure.org"),
        ("Observation.status.extension[0].url", "uri", "http://example.org/s"),
        ("Observation.status.extension[0].value.ofType(uri)", "uri", "urn:uuid:x"),
    ]
    by_path = {s.path: s for s in sites}
    subject = by_path["Observation.subject"]
    assert subject.targets == frozenset({"Patient", "Group", "Device", "Location"})
    assert subject.holder is observation["subject"] and subject.key == "reference"
    assert by_path["Observation.extension[1].value.ofType(Reference)"].targets is None
    assert by_path["Observation.contained[0].managingOrganization"].targets == frozenset(
        {"Organization"}
    )
    profile = by_path["Observation.meta.profile[1]"]
    assert (profile.holder, profile.key, profile.index) == (observation["meta"], "profile", 1)
    assert profile.targets is None


def test_sites_can_be_rewritten_in_place() -> None:
    bundle_entry = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "urn:uuid:6f1c0b1e-1b1a-4c4e-9a52-3c3a8f1f0a11"},
        "derivedFrom": [{"reference": "urn:uuid:0d7e2a55-3b1e-4f1a-8f0e-2b7f5c1d9e42"}],
    }
    for site in reference_sites(bundle_entry):
        if site.value.startswith("urn:uuid:"):
            if site.index is None:
                site.holder[site.key] = "Patient/new"
            else:
                site.holder[site.key][site.index] = "Patient/new"
    assert bundle_entry["subject"] == {"reference": "Patient/new"}
    assert bundle_entry["derivedFrom"] == [{"reference": "Patient/new"}]


def test_content_references_and_nested_resources() -> None:
    questionnaire = {
        "resourceType": "Questionnaire",
        "status": "draft",
        "item": [{"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "choice",
            "answerOption": [{"valueReference": {"reference": "Practitioner/x"}}]}]}],
    }  # fmt: skip
    assert _walked(questionnaire) == [
        ("Questionnaire.item[0].item[0].answerOption[0].value.ofType(Reference)", "Reference",
         "Practitioner/x"),
    ]  # fmt: skip
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Parameters",
            "parameter": [{"name": "p", "resource": {"resourceType": "Observation",
                "status": "final", "code": {"text": "x"},
                "subject": {"reference": "Patient/p"}}}]}}],
    }  # fmt: skip
    assert _walked(bundle) == [
        ("Bundle.entry[0].fullUrl", "uri", "urn:uuid:1"),
        ("Bundle.entry[0].resource.parameter[0].resource.subject", "Reference", "Patient/p"),
    ]
    # references inside a stored Bundle's entries resolve inside the Bundle: never local
    assert local_references(bundle) == []


def test_nothing_for_non_resources() -> None:
    assert list(reference_sites({"resourceType": "NotAType", "x": {"reference": "a/b"}})) == []
    assert list(reference_sites({"subject": {"reference": "Patient/p"}})) == []
    broken = {"resourceType": "Observation", "subject": ["not", "an", "object"], "meta": 3}
    assert list(reference_sites(broken)) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient/p1", ("Patient", "p1", None)),
        ("Patient/p1/_history/3", ("Patient", "p1", 3)),
        (f"{BASE}/Patient/p1", ("Patient", "p1", None)),
        (f"{BASE}/Patient/p1/_history/12", ("Patient", "p1", 12)),
        ("Patient?identifier=http://x|1", CONDITIONAL),
        (f"{BASE}/Patient?identifier=1", CONDITIONAL),
        ("#contained", None),
        ("urn:uuid:6f1c0b1e-1b1a-4c4e-9a52-3c3a8f1f0a11", None),
        ("urn:oid:1.2.3", None),
        ("https://other.example.org/fhir/Patient/p1", None),
        (f"{BASE}x/Patient/p1", None),
        ("Patient", None),
        ("NotAType/p1", None),
        ("Patient/not valid!", None),
        ("Patient/p1/_history/x", None),
        ("Patient/p1/_history/٣", None),
        ("Patient/p1/extra", None),
        ("a?b", None),
    ],
)
def test_parse_local(text: str, expected: object) -> None:
    assert parse_local(text, BASE) == expected


def _diagnostic_report(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "x"},
        **elements,
    }


def test_local_references() -> None:
    report = _diagnostic_report(
        subject={"reference": f"{BASE}/Patient/p1"},
        imagingStudy=[{"reference": "ImagingStudy/s1/_history/2"}, {"reference": "#c"}],
        performer=[{"reference": "https://elsewhere.example.org/Practitioner/x"}],
        resultsInterpreter=[{"identifier": {"system": "urn:x", "value": "1"}}],
        specimen=[{"reference": "urn:uuid:6f1c0b1e-1b1a-4c4e-9a52-3c3a8f1f0a11"}],
    )
    assert local_references(report, BASE) == [
        LocalReference("DiagnosticReport.subject", "Patient", "p1"),
        LocalReference("DiagnosticReport.imagingStudy[0]", "ImagingStudy", "s1", 2),
    ]
    # without the base URL, only relative references are local
    assert local_references(report) == [
        LocalReference("DiagnosticReport.imagingStudy[0]", "ImagingStudy", "s1", 2)
    ]
    assert local_references(report, BASE + "/") == local_references(report, BASE)


def test_strict_refuses_wrong_types_and_conditional_references() -> None:
    report = _diagnostic_report(
        subject={"reference": "Patient/p1"},
        imagingStudy=[{"reference": "Patient/secret-id"}],
        basedOn=[{"reference": "ServiceRequest?identifier=secret-value"}],
    )
    assert local_references(report) == [
        LocalReference("DiagnosticReport.subject", "Patient", "p1"),
        LocalReference("DiagnosticReport.imagingStudy[0]", "Patient", "secret-id"),
    ]  # not strict: the wrong type is kept, the conditional reference skipped
    with pytest.raises(UnprocessableResource) as caught:
        local_references(report, strict=True)
    issues = caught.value.issues
    assert [i.expression for i in issues] == [
        ("DiagnosticReport.imagingStudy[0]",),
        ("DiagnosticReport.basedOn[0]",),
    ]
    assert "ImagingStudy only" in issues[0].diagnostics
    assert "conditional" in issues[1].diagnostics
    everything = caught.value.diagnostics + "".join(i.diagnostics for i in issues)
    assert "secret" not in everything  # RO-1.4: never a value of the resource
    # an element that allows any type
    any_target = _diagnostic_report(extension=[{"url": "http://x", "valueReference": {
        "reference": "Basic/b"}}])  # fmt: skip
    assert local_references(any_target, strict=True) == [
        LocalReference("DiagnosticReport.extension[0].value.ofType(Reference)", "Basic", "b")
    ]


def test_body_given_or_not() -> None:
    report = _diagnostic_report(subject={"reference": "Patient/p1"})
    body = fhirjson.dumps(report)
    assert local_references(report, body=body) == local_references(report)
    assert local_references(_diagnostic_report(), body=fhirjson.dumps(_diagnostic_report())) == []


def _forced(resource: dict[str, Any], mode: int) -> list[tuple[str, str]]:
    raws = references._raw_sites(resource, mode)
    return [(raw[0], raw[6]) for raw in raws]


@pytest.mark.examples
def test_every_official_example_against_the_oracle() -> None:
    """Every string the oracle finds, the walk finds, at the same path, and nothing else; the
    walk modes used for local references (pruned when there are no extensions) agree."""
    checked = 0
    for name, resource in iter_parsed_examples():
        if len(fhirjson.dumps(resource)) > 300_000:  # the oracle is quadratic; a few huge ones
            continue
        assert _walked(resource) == _oracle(resource), name
        references_only = [(p, v) for p, k, v in _walked(resource) if k == "Reference"]
        if resource["resourceType"] != "Bundle":
            assert _forced(resource, references._LOCAL) == references_only, name
            body = fhirjson.dumps(resource)
            if b'xtension":' not in body:
                assert _forced(resource, references._LEAN) == references_only, name
        checked += 1
    assert checked > 5000
