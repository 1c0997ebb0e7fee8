"""The pure parts of batch/transaction processing: reading entries, routing an entry's request
to an interaction of the table, and rewriting links (bundle.html#references)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core.errors import FeatureNotSupported, InvalidRequest, PayloadTooLarge
from fhir_server.interactions.transaction.dispatch import route
from fhir_server.interactions.transaction.entries import read_bundle, relocated
from fhir_server.interactions.transaction.references import (
    base_of,
    conditional_reference,
    rewrite,
)

BASE = "https://fhir.example.org/fhir"


@pytest.mark.parametrize(
    ("method", "url", "handler", "path", "query"),
    [
        ("POST", "Patient", "create", {"type": "Patient"}, ""),
        ("PUT", "Patient/1", "update", {"type": "Patient", "id": "1"}, ""),
        ("PUT", "Patient?identifier=a", "update-conditional", {"type": "Patient"}, "identifier=a"),
        ("PATCH", "Patient/1", "patch", {"type": "Patient", "id": "1"}, ""),
        ("DELETE", "Patient/1", "delete", {"type": "Patient", "id": "1"}, ""),
        ("DELETE", "Patient?name=x", "delete-conditional", {"type": "Patient"}, "name=x"),
        ("GET", "/Patient/1", "read", {"type": "Patient", "id": "1"}, ""),
        ("HEAD", "Patient/1", "read", {"type": "Patient", "id": "1"}, ""),
        ("GET", "Patient/1/_history/2", "vread", {"type": "Patient", "id": "1", "vid": "2"}, ""),
        ("GET", "Patient/1/_history", "history-instance", {"type": "Patient", "id": "1"}, ""),
        ("GET", "Patient/_history", "history-type", {"type": "Patient"}, ""),
        ("GET", "_history", "history-system", {}, ""),
        ("GET", "metadata", "capabilities", {}, ""),
        ("GET", "?_type=Patient", "search-system", {}, "_type=Patient"),
        ("GET", "Patient?name=x&_count=2", "search-type", {"type": "Patient"}, "name=x&_count=2"),
        ("GET", "Patient/1/Observation", "search-compartment",
         {"ctype": "Patient", "cid": "1", "type": "Observation"}, ""),
        ("GET", f"{BASE}/Patient/1", "read", {"type": "Patient", "id": "1"}, ""),
        ("PUT", "http://hl7.org/fhir/us/sdc/Questionnaire/q1", "update",
         {"type": "Questionnaire", "id": "q1"}, ""),
    ],
)  # fmt: skip
def test_route(method: str, url: str, handler: str, path: dict[str, str], query: str) -> None:
    target = route(method, url, BASE)
    assert (target.handler, target.path, target.query) == (handler, path, query)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "NotAType/1"),
        ("PATCH", "Patient"),
        ("POST", "Patient/1"),
        ("PUT", "metadata"),
        ("POST", ""),  # a nested batch/transaction
    ],
)
def test_route_refuses_what_no_interaction_serves(method: str, url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        route(method, url, BASE)
    assert caught.value.issues[0].expression == ("request.url",)


def test_operations_are_not_supported_in_bundles() -> None:
    with pytest.raises(FeatureNotSupported):
        route("POST", "ValueSet/$lookup", BASE)


def test_read_bundle_limits_and_checks() -> None:
    entry = {"request": {"method": "GET", "url": "Patient"}}
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [entry] * 3}
    assert len(read_bundle(bundle, max_entries=3).entries) == 3
    with pytest.raises(PayloadTooLarge):
        read_bundle(bundle, max_entries=2)
    with pytest.raises(InvalidRequest) as caught:
        read_bundle({**bundle, "type": "collection"})
    assert caught.value.issues[0].expression == ("Bundle.type",)
    bad = {**bundle, "entry": [entry, {"request": {"method": "GET", "url": 5}}]}
    with pytest.raises(InvalidRequest) as caught:
        read_bundle(bad)
    assert caught.value.issues[0].expression == ("Bundle.entry[1].request.url",)


def test_relocated_errors_keep_their_kind_and_point_into_the_bundle() -> None:
    entry = read_bundle(
        {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": "Patient"}},
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}},
        ]}
    ).entries[1]  # fmt: skip
    error = InvalidRequest("bad date", expression=["Patient.birthDate"])
    moved = relocated(entry, error)
    assert isinstance(moved, InvalidRequest)
    issue = moved.issues[0]
    assert issue.expression == ("Bundle.entry[1].resource.birthDate",)
    assert "Entry 1 (fullUrl urn:uuid:1)" in issue.diagnostics
    moved = relocated(entry, InvalidRequest("no", expression=["request.ifMatch"]))
    assert moved.issues[0].expression == ("Bundle.entry[1].request.ifMatch",)


def test_conditional_reference_and_base() -> None:
    assert conditional_reference("Patient?identifier=a|b") == ("Patient", "identifier=a|b")
    assert conditional_reference("Patient/1") is None
    assert conditional_reference("Nope?x=1") is None
    assert base_of("http://x.org/fhir/Patient/1") == "http://x.org/fhir"
    assert base_of("http://x.org/fhir/Patient/1/_history/2") == "http://x.org/fhir"
    assert base_of("urn:uuid:1") is None


def test_rewrite_replaces_links_but_not_canonicals_or_the_own_url() -> None:
    pat = "urn:uuid:aaaaaaaa-0000-4000-8000-000000000001"
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "url": pat,
        "status": "active",
        "subjectType": ["Patient"],
        "derivedFrom": [pat],  # canonical: left alone
        "text": {"status": "generated", "div": f'<div><img src="{pat}"/><a href="x">x</a></div>'},
        "extension": [{"url": "http://x.org/e", "valueUri": pat}],
        "contained": [{"resourceType": "Patient", "id": "p", "link": [
            {"other": {"reference": pat}, "type": "seealso"}
        ]}],
    }  # fmt: skip
    rewrite(resource, None, {pat: "Patient/42"})
    assert resource["url"] == pat
    assert resource["derivedFrom"] == [pat]
    assert resource["extension"][0]["valueUri"] == "Patient/42"
    assert resource["contained"][0]["link"][0]["other"]["reference"] == "Patient/42"
    assert 'src="Patient/42"' in resource["text"]["div"]
    assert 'href="x"' in resource["text"]["div"]


def test_relative_references_resolve_against_an_absolute_full_url() -> None:
    resource = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                "subject": {"reference": "Patient/a2"}}  # fmt: skip
    rewrite(
        resource, "http://x.org/fhir/Observation/o1", {"http://x.org/fhir/Patient/a2": "Patient/9"}
    )
    assert resource["subject"]["reference"] == "Patient/9"
