"""The Indexer (fhir_server.search.extract): entries per parameter type and FHIR type, composites,
compartments (the official package's parameters and examples: test_extract_examples.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from fhir_server.core.fhirjson import FhirDecimal
from fhir_server.search.extract import Indexer, compile_param
from fhir_server.search.fhirpath import UnsupportedExpression
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    Component,
    CompositeEntry,
    DateEntry,
    NumberEntry,
    ParamType,
    QuantityEntry,
    ReferenceEntry,
    SearchParamDef,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.search.values import date_bounds

UCUM = "http://unitsofmeasure.org"


def define(resource_type: str, code: str, kind: str, expression: str | None) -> SearchParamDef:
    url = f"http://example.org/SearchParameter/{resource_type}-{code}"
    return SearchParamDef(code, resource_type, cast(ParamType, kind), expression, url)


def entries(resource: dict[str, Any], kind: str, expression: str | None) -> tuple[object, ...]:
    definition = define(resource["resourceType"], "p", kind, expression)
    return Indexer({definition.resource_type: {"p": definition}}, {}).entries(resource, "p")


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", **elements}


def observation(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final", **elements}


# --- string and token ------------------------------------------------------------------------


def test_string_entries_from_names_addresses_and_primitives() -> None:
    name = {"family": "Dürr", "given": ["Émilie", "Anne"], "prefix": ["Dr"], "text": "É. Dürr"}
    found = entries(patient(name=[name]), "string", "Patient.name")
    assert found == (
        StringEntry("durr", "Dürr"),
        StringEntry("emilie", "Émilie"),
        StringEntry("anne", "Anne"),
        StringEntry("dr", "Dr"),
        StringEntry("e. durr", "É. Dürr"),
    )
    address = {
        "line": ["1 Main St", "Apt 2"],
        "city": "Genève",
        "postalCode": "1201",
        "use": "home",
    }
    found = entries(patient(address=[address]), "string", "Patient.address")
    assert [e.exact for e in found if isinstance(e, StringEntry)] == [
        "1 Main St",
        "Apt 2",
        "Genève",
        "1201",
    ]
    assert entries(patient(gender="male"), "string", "Patient.gender") == (
        StringEntry("male", "male"),
    )
    assert entries(patient(name=[{"family": "  "}]), "string", "Patient.name") == ()


def test_token_entries_from_codings_and_concepts() -> None:
    concept = {
        "coding": [
            {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic BP"},
            {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic BP"},
            {"display": "display only"},
            {"system": "http://x"},  # neither code nor display: skipped
        ],
        "text": "Blood Préssure",
    }
    assert entries(observation(code=concept), "token", "Observation.code") == (
        TokenEntry("http://loinc.org", "8480-6", "systolic bp"),
        TokenEntry(None, None, "display only"),
        TokenEntry(None, None, "blood pressure"),
    )
    tag = {"system": "http://s", "code": "c"}
    assert entries(patient(meta={"tag": [tag]}), "token", "Patient.meta.tag") == (
        TokenEntry("http://s", "c"),
    )


def test_token_entries_from_identifiers_carry_their_type() -> None:
    v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    typed = {
        "system": "urn:oid:1.2.36",
        "value": "12345",
        "type": {"coding": [{"system": v2, "code": "MR"}, {"code": "X"}], "text": "Medical record"},
    }
    plain = {"system": "http://ids", "value": "A1"}
    found = entries(patient(identifier=[typed, plain]), "token", "Patient.identifier")
    assert found == (
        TokenEntry("urn:oid:1.2.36", "12345", "medical record", v2, "MR"),
        TokenEntry("urn:oid:1.2.36", "12345", "medical record", None, "X"),
        TokenEntry("http://ids", "A1"),
    )
    assert entries(patient(identifier=[{"use": "official"}]), "token", "Patient.identifier") == ()


def test_token_entries_from_contact_points_codes_and_booleans() -> None:
    telecom = [{"system": "phone", "value": "555-1"}, {"system": "email"}]
    assert entries(patient(telecom=telecom), "token", "Patient.telecom") == (
        TokenEntry(None, "555-1"),
    )
    assert entries(patient(gender="female"), "token", "Patient.gender") == (
        TokenEntry(None, "female"),
    )
    assert entries(patient(active=False), "token", "Patient.active") == (TokenEntry(None, "false"),)
    deceased = "Patient.deceased.exists() and Patient.deceased != false"
    assert entries(patient(), "token", deceased) == (TokenEntry(None, "false"),)
    assert entries(patient(deceasedDateTime="2020"), "token", deceased) == (
        TokenEntry(None, "true"),
    )


# --- date, number, quantity ------------------------------------------------------------------


def test_date_entries_follow_precision_and_time_zones() -> None:
    found = entries(patient(birthDate="1974-12"), "date", "Patient.birthDate")
    assert found == (DateEntry(*date_bounds("1974-12")),)
    moment = observation(effectiveDateTime="2020-02-03T10:00:00+02:00")
    assert entries(moment, "date", "Observation.effective") == (
        DateEntry(*date_bounds("2020-02-03T08:00:00Z")),
    )
    assert entries(patient(birthDate="1974-02-30"), "date", "Patient.birthDate") == ()


def test_date_entries_from_periods_with_open_ends() -> None:
    def period(**bounds: str) -> tuple[object, ...]:
        return entries(observation(effectivePeriod=bounds), "date", "Observation.effective")

    start, end = date_bounds("2020-01-01"), date_bounds("2020-01-31T12:00:00Z")
    assert period(start="2020-01-01", end="2020-01-31T12:00:00Z") == (DateEntry(start[0], end[1]),)
    assert period(start="2020-01-01") == (DateEntry(start[0], MAX_INSTANT),)
    assert period(end="2020-01-31T12:00:00Z") == (DateEntry(MIN_INSTANT, end[1]),)
    assert period() == ()


def test_date_entries_from_timings_span_events_and_bounds() -> None:
    timing = {
        "event": ["2021-03-01T08:00:00Z", "2021-02-01"],
        "repeat": {"boundsPeriod": {"start": "2021-01-15", "end": "2021-02-20"}},
    }
    request = {"resourceType": "ServiceRequest", "occurrenceTiming": timing}
    found = entries(request, "date", "ServiceRequest.occurrence")
    low, high = date_bounds("2021-01-15")[0], date_bounds("2021-03-01T08:00:00Z")[1]
    assert found == (DateEntry(low, high),)
    no_dates = {"resourceType": "ServiceRequest", "occurrenceTiming": {"repeat": {"count": 3}}}
    assert entries(no_dates, "date", "ServiceRequest.occurrence") == ()


def test_number_entries() -> None:
    risk = {
        "resourceType": "RiskAssessment",
        "prediction": [
            {"probabilityDecimal": FhirDecimal("0.25")},
            {"probabilityRange": {"low": {"value": 1}, "high": {"value": 2}}},
        ],
    }
    assert entries(risk, "number", "RiskAssessment.prediction.probability") == (
        NumberEntry(0.25),
        NumberEntry(1.0),
        NumberEntry(2.0),
    )


def test_quantity_entries_with_ucum_canonical_form() -> None:
    value = {"value": FhirDecimal("5.0"), "unit": "mg/dL", "system": UCUM, "code": "mg/dL"}
    [entry] = entries(observation(valueQuantity=value), "quantity", "Observation.value")
    assert entry == QuantityEntry(5.0, 5.0, UCUM, "mg/dL", "mg/dL", 50.0, 50.0, "g.m-3")
    unit_only = {"value": 12, "unit": "a"}  # no system: a unit text that is UCUM is used
    [entry] = entries(observation(valueQuantity=unit_only), "quantity", "Observation.value")
    assert entry == QuantityEntry(12.0, 12.0, None, None, "a", 378691200.0, 378691200.0, "s")
    text = {"value": 12, "unit": "mmHg"}
    assert entries(observation(valueQuantity=text), "quantity", "Observation.value") == (
        QuantityEntry(12.0, 12.0, None, None, "mmHg"),
    )
    local = {"value": 5, "unit": "tabs", "system": "http://local", "code": "mg/dL"}
    assert entries(observation(valueQuantity=local), "quantity", "Observation.value") == (
        QuantityEntry(5.0, 5.0, "http://local", "mg/dL", "tabs"),
    )


def test_quantity_comparators_ranges_money_and_ages() -> None:
    def value(**quantity: Any) -> object:
        [entry] = entries(observation(valueQuantity=quantity), "quantity", "Observation.value")
        return entry

    inf = float("inf")
    assert value(value=5, comparator="<") == QuantityEntry(-inf, 5.0, None, None, None)
    assert value(value=5, comparator=">=") == QuantityEntry(5.0, inf, None, None, None)
    span = {"low": {"value": 2, "system": UCUM, "code": "g"}}
    assert entries(observation(valueRange=span), "quantity", "Observation.value") == (
        QuantityEntry(2.0, inf, UCUM, "g", None, 2.0, inf, "g"),
    )
    assert entries(observation(valueRange={}), "quantity", "Observation.value") == ()
    claim = {"resourceType": "Claim", "total": {"value": 12.5, "currency": "EUR"}}
    assert entries(claim, "quantity", "Claim.total") == (
        QuantityEntry(12.5, 12.5, "urn:iso:std:iso:4217", "EUR", "EUR"),
    )
    age = {"value": 40, "system": UCUM, "code": "a"}
    condition = {"resourceType": "Condition", "onsetAge": age}
    [entry] = entries(condition, "quantity", "Condition.onset.as(Age)")
    assert isinstance(entry, QuantityEntry) and entry.canonical_code == "s"
    sampled = observation(valueSampledData={"origin": {"value": 1}, "period": 1, "dimensions": 1})
    assert entries(sampled, "quantity", "Observation.value") == ()


# --- reference and uri -----------------------------------------------------------------------


def test_reference_entries() -> None:
    def subject(**reference: Any) -> tuple[object, ...]:
        return entries(observation(subject=reference), "reference", "Observation.subject")

    assert subject(reference="Patient/1") == (ReferenceEntry("Patient", "1"),)
    assert subject(reference="Patient/1/_history/4") == (ReferenceEntry("Patient", "1"),)
    url = "https://other.org/fhir/Patient/9"
    assert subject(reference=url) == (ReferenceEntry("Patient", "9", url),)
    uuid = "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"
    assert subject(reference=uuid) == (ReferenceEntry(None, None, uuid),)
    assert subject(reference="#contained") == ()
    assert subject(reference="abc") == (ReferenceEntry(None, "abc", "abc"),)  # invalid, but seen
    assert subject(display="nobody") == ()
    logical = subject(type="Patient", identifier={"system": "http://ids", "value": "7"})
    assert logical == (ReferenceEntry("Patient", None, None, None, "http://ids", "7"),)
    both = subject(reference="Patient/1", identifier={"value": "7"})
    assert both == (ReferenceEntry("Patient", "1", None, None, None, "7"),)


def test_reference_entries_respect_resolve_is_filter() -> None:
    expression = "Observation.subject.where(resolve() is Patient)"
    assert entries(observation(subject={"reference": "Group/1"}), "reference", expression) == ()
    found = entries(observation(subject={"reference": "Patient/2"}), "reference", expression)
    assert found == (ReferenceEntry("Patient", "2"),)


def test_canonical_references_and_uris() -> None:
    plan = {
        "resourceType": "PlanDefinition",
        "url": "http://example.org/PlanDefinition/p",
        "library": ["http://example.org/Library/lib|1.2.0", "Library/local"],
    }
    assert entries(plan, "reference", "PlanDefinition.library") == (
        ReferenceEntry(None, None, "http://example.org/Library/lib", "1.2.0"),
        ReferenceEntry("Library", "local", "Library/local"),
    )
    assert entries(plan, "uri", "PlanDefinition.url") == (
        UriEntry("http://example.org/PlanDefinition/p"),
    )
    bundle = {
        "resourceType": "Bundle",
        "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}],
    }
    assert entries(bundle, "reference", "Bundle.entry[0].resource") == (
        ReferenceEntry("Composition", "c"),
    )
    composition = SearchParamDef(
        "composition", "Bundle", "reference", "Bundle.entry[0].resource", "u", targets=("Patient",)
    )
    indexer = Indexer({"Bundle": {"composition": composition}}, {})
    assert indexer.entries(bundle, "composition") == ()  # not a target: not a document
    contained = {"resourceType": "PlanDefinition", "library": ["#logic"]}
    assert entries(contained, "reference", "PlanDefinition.library") == ()


# --- composite, special, extensions ----------------------------------------------------------


def composite_indexer(expression: str, parts: list[tuple[str, str, str]]) -> Indexer:
    defs = {code: define("Observation", code, kind, None) for code, kind, _ in parts}
    components = tuple(Component(defs[code], expr) for code, _, expr in parts)
    base = define("Observation", "combo", "composite", expression)
    combo = SearchParamDef(
        base.code, "Observation", "composite", expression, base.url, components=components
    )
    return Indexer({"Observation": {"combo": combo}}, {})


def test_composites_pair_components_of_the_same_element() -> None:
    indexer = composite_indexer(
        "Observation.component",
        [("code", "token", "code"), ("value", "quantity", "value.as(Quantity)")],
    )
    loinc = "http://loinc.org"
    resource = observation(
        component=[
            {
                "code": {"coding": [{"system": loinc, "code": "8480-6"}]},
                "valueQuantity": {"value": 120},
            },
            {
                "code": {"coding": [{"system": loinc, "code": "8462-4"}]},
                "valueQuantity": {"value": 80},
            },
            {"code": {"coding": [{"system": loinc, "code": "no-value"}]}},
        ]
    )
    assert indexer.entries(resource, "combo") == (
        CompositeEntry(
            ((TokenEntry(loinc, "8480-6"),), (QuantityEntry(120, 120, None, None, None),))
        ),
        CompositeEntry(
            ((TokenEntry(loinc, "8462-4"),), (QuantityEntry(80, 80, None, None, None),))
        ),
    )
    on_resource = composite_indexer(
        "Observation", [("code", "token", "code"), ("value", "string", "value.as(string)")]
    )
    text = observation(code={"text": "Mood"}, valueString="Good")
    assert on_resource.entries(text, "combo") == (
        CompositeEntry(((TokenEntry(None, None, "mood"),), (StringEntry("good", "Good"),))),
    )


def test_special_and_engine_parameters_have_no_entries() -> None:
    near = define("Location", "near", "special", "Location.position")
    text = define("Patient", "_text", "string", None)
    assert compile_param(near) is None and compile_param(text) is None
    indexer = Indexer({"Location": {"near": near}, "Patient": {"_text": text}}, {})
    located = {"resourceType": "Location", "position": {"longitude": 1, "latitude": 2}}
    assert indexer.index(located).entries == {}
    assert indexer.entries(patient(), "unknown") == ()
    assert indexer.index({"no": "type"}).entries == {}


def test_extension_parameters_index_the_extension_value() -> None:
    url = "http://example.org/eye-colour"
    resource = patient(extension=[{"url": url, "valueCodeableConcept": {"text": "Blue"}}])
    assert entries(resource, "token", f"Patient.extension('{url}')") == (
        TokenEntry(None, None, "blue"),
    )
    assert entries(resource, "string", f"Patient.extension('{url}').value.text") == (
        StringEntry("blue", "Blue"),
    )


def test_unsupported_custom_expressions_fail_when_compiled() -> None:
    with pytest.raises(UnsupportedExpression):
        compile_param(define("Patient", "x", "string", "Patient.name.given.substring(0, 1)"))


# --- compartments ----------------------------------------------------------------------------


def test_compartments() -> None:
    subject = define("Observation", "subject", "reference", "Observation.subject")
    performer = define("Observation", "performer", "reference", "Observation.performer")
    link = define("Patient", "link", "reference", "Patient.link.other")
    encounter = define("Encounter", "subject", "reference", "Encounter.subject")
    compartments: dict[str, dict[str, tuple[str, ...]]] = {
        "Patient": {"Observation": ("subject", "performer"), "Patient": ("link",)},
        "Practitioner": {"Observation": ("performer",)},
        "Encounter": {"Encounter": ("{def}",), "Observation": ()},
    }
    params = {
        "Observation": {"subject": subject, "performer": performer},
        "Patient": {"link": link},
        "Encounter": {"subject": encounter},
    }
    indexer = Indexer(params, compartments)
    obs = observation(
        subject={"reference": "Patient/1"},
        performer=[
            {"reference": "Practitioner/2"},
            {"reference": "Patient/1"},
            {"reference": "Organization/3"},
        ],
    )
    assert indexer.index(obs).compartments == (("Patient", "1"), ("Practitioner", "2"))
    linked = patient(link=[{"other": {"reference": "Patient/p0"}, "type": "replaces"}])
    assert indexer.index(linked).compartments == (("Patient", "p0"), ("Patient", "p1"))
    visit = {"resourceType": "Encounter", "id": "e1", "subject": {"reference": "Patient/1"}}
    assert indexer.index(visit).compartments == (("Encounter", "e1"),)


def test_malformed_values_give_no_entries_rather_than_errors() -> None:
    params = {
        "Patient": {
            "name": define("Patient", "name", "string", "Patient.name"),
            "birthdate": define("Patient", "birthdate", "date", "Patient.birthDate"),
            "identifier": define("Patient", "identifier", "token", "Patient.identifier"),
            "organization": define(
                "Patient", "organization", "reference", "Patient.managingOrganization"
            ),
        }
    }
    broken = patient(
        name=["not an object", {"given": "Ann", "family": 3}, None],
        birthDate=19740101,
        identifier={"type": "x", "value": ["a"]},
        managingOrganization={"reference": 5, "identifier": "x"},
    )
    index = Indexer(params, {}).index(broken)
    assert index.entries == {"name": (StringEntry("ann", "Ann"),)}
