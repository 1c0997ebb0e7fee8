"""The search parser: result parameters, system search and _type, unknown and unsupported
parameters, lenient mode, error messages and conditional interactions, against the real R4
registry (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import (
    ParamTest,
    ReferenceValue,
    StringValue,
    TokenValue,
)
from fhir_server.search.parse import (
    MAX_COUNT,
    parse_conditional,
    parse_search,
)
from fhir_server.search.registry import SearchRegistry
from tests.unit.search.parse_helpers import BASE, error, parse

# --- result parameters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "count"), [("10", 10), ("0", 0), ("1000", 1000), ("5000", MAX_COUNT)]
)
def test_count(registry: SearchRegistry, raw: str, count: int) -> None:
    parsed = parse(registry, "Patient", ("_count", raw))
    assert parsed.count == count
    assert parsed.applied == (("_count", str(count)),)


@pytest.mark.parametrize("raw", ["-1", "ten", "1.5", "١٢"])
def test_bad_count(registry: SearchRegistry, raw: str) -> None:
    assert "'_count'" in error(registry, "Patient", ("_count", raw)).diagnostics


def test_defaults(registry: SearchRegistry) -> None:
    parsed = parse(registry, "Patient")
    assert parsed.criteria.types == ("Patient",)
    assert parsed.criteria.tests == ()
    assert (parsed.count, parsed.cursor, parsed.total, parsed.summary, parsed.elements) == (
        None,
        None,
        "none",
        None,
        None,
    )
    assert parsed.includes == parsed.revincludes == ()
    assert parsed.applied == ()
    assert parsed.ignored == ()


def test_total_summary_elements_cursor(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        "Patient",
        ("_total", "accurate"),
        ("_summary", "count"),
        ("_elements", "name,gender"),
        ("_cursor", "opaque-token"),
        ("_format", "json"),
    )
    assert parsed.total == "accurate"
    assert parsed.summary == "count"
    assert parsed.elements == "name,gender"
    assert parsed.cursor == "opaque-token"
    assert parsed.applied == (
        ("_total", "accurate"),
        ("_summary", "count"),
        ("_elements", "name,gender"),
    )


@pytest.mark.parametrize("name", ["_total", "_summary"])
def test_bad_choice(registry: SearchRegistry, name: str) -> None:
    message = error(registry, "Patient", (name, "maybe")).diagnostics
    assert f"'{name}'" in message and "expected one of" in message


# --- system search, _type ------------------------------------------------------------------------


def test_system_search_knows_the_common_parameters(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        None,
        ("_lastUpdated", "ge2020"),
        ("_tag", "a|b"),
        ("_type", "Patient,Observation"),
    )
    assert parsed.criteria.types == ("Patient", "Observation")
    assert [t.param.resource_type for t in parsed.criteria.tests if isinstance(t, ParamTest)] == [
        "Resource",
        "Resource",
    ]
    assert ("_type", "Patient,Observation") in parsed.applied
    assert "'name'" in error(registry, None, ("name", "x")).diagnostics
    assert "all types" in error(registry, None, ("name", "x")).diagnostics


def test_type_errors(registry: SearchRegistry) -> None:
    assert "'Nope' is not a resource type" in error(registry, None, ("_type", "Nope")).diagnostics
    message = error(registry, None, ("_type", "Patient"), ("_type", "Observation")).diagnostics
    assert "no type in common" in message


def test_compartment_wildcard_search_over_several_types(registry: SearchRegistry) -> None:
    parsed = parse_search(registry, ("Observation", "Condition"), [("_lastUpdated", "ge2020")])
    assert parsed.criteria.types == ("Observation", "Condition")
    assert len(parsed.criteria.tests) == 1


# --- unknown and unsupported; lenient ------------------------------------------------------------

UNSUPPORTED = ["_text", "_content", "_query", "_filter", "_list", "_contained", "_containedType"]


@pytest.mark.parametrize("name", [*UNSUPPORTED, "near"])
def test_unsupported_parameters_are_named(registry: SearchRegistry, name: str) -> None:
    resource_type = "Location" if name == "near" else "Patient"
    message = error(registry, resource_type, (name, "x")).diagnostics
    assert f"'{name}'" in message and "not supported" in message


def test_unknown_parameter(registry: SearchRegistry) -> None:
    caught = error(registry, "Patient", ("nmae", "x"))
    assert "Unknown search parameter 'nmae' on Patient" in caught.diagnostics
    assert caught.issues[0].expression == ("nmae",)


def test_lenient_drops_unknown_and_unsupported_and_reports_them(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        "Patient",
        ("nmae", "x"),
        ("_text", "y"),
        ("gender:in", "http://vs"),
        ("subject.name", "z"),
        ("name", "ok"),
        lenient=True,
    )
    assert parsed.ignored == ("nmae", "_text", "gender:in", "subject.name")
    assert parsed.applied == (("name", "ok"),)
    assert len(parsed.criteria.tests) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("birthdate", "not-a-date"), ("name:nope", "x"), ("_count", "x"), ("_sort", "nope")],
)
def test_lenient_still_refuses_bad_values_of_known_parameters(
    registry: SearchRegistry, name: str, value: str
) -> None:
    with pytest.raises(InvalidRequest):
        parse(registry, "Patient", (name, value), lenient=True)


def test_errors_never_echo_long_values(registry: SearchRegistry) -> None:
    secret = "S" * 500
    for params in [("birthdate", secret), ("subject", f"Patient/{secret}"), (secret, "x")]:
        message = error(registry, "Observation", params).diagnostics
        assert "S" * 61 not in message
        assert len(message) < 300


# --- conditional interactions ------------------------------------------------------------------


def test_conditional(registry: SearchRegistry) -> None:
    criteria = parse_conditional(
        registry, "Patient", "identifier=http%3A%2F%2Fids%7CA1&name=Peter+Pan", BASE
    )
    assert criteria.types == ("Patient",)
    first, second = criteria.tests
    assert isinstance(first, ParamTest) and isinstance(second, ParamTest)
    assert first.values == (TokenValue("http://ids", "A1"),)
    assert second.values == (StringValue("Peter Pan"),)


def test_conditional_resolves_this_servers_urls(registry: SearchRegistry) -> None:
    criteria = parse_conditional(registry, "Observation", f"subject={BASE}/Patient/1", BASE)
    [test] = criteria.tests
    assert isinstance(test, ParamTest) and test.values == (ReferenceValue("Patient", "1"),)


@pytest.mark.parametrize(
    "query",
    ["identifier=a&_sort=name", "_count=1", "_include=Patient:organization", "_type=Patient"],
)
def test_conditional_refuses_result_parameters(registry: SearchRegistry, query: str) -> None:
    with pytest.raises(InvalidRequest, match="conditional"):
        parse_conditional(registry, "Patient", query, BASE)


def test_conditional_is_strict(registry: SearchRegistry) -> None:
    with pytest.raises(InvalidRequest, match="nmae"):
        parse_conditional(registry, "Patient", "nmae=x", BASE)


def test_a_reference_value_outside_the_declared_targets_is_still_searched(
    registry: SearchRegistry,
) -> None:
    """Stored data holds such references (three official R4 examples do); refusing the search
    would hide them."""
    parsed = parse_search(registry, ("Observation",), [("subject", "Medication/1")])
    (test,) = parsed.criteria.tests
    assert isinstance(test, ParamTest)
    assert test.values == (ReferenceValue("Medication", "1"),)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("birthdate", "Popescu-Ionescu"),
        ("general-practitioner", "Popescu-Ionescu/1"),
        ("general-practitioner", "Popescu Ionescu"),
        ("_id", "Popescu Ionescu"),
        ("death-date", "geIonescu"),
    ],
)
def test_ro1_4_search_errors_never_echo_values(
    registry: SearchRegistry, name: str, raw: str
) -> None:
    """Search values may be personal data: errors name the parameter, never the value."""
    with pytest.raises(InvalidRequest) as caught:
        parse_search(registry, ("Patient",), [(name, raw)])
    message = str(caught.value)
    assert name in message
    assert "Popescu" not in message and "Ionescu" not in message
