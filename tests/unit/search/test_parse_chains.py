"""The search parser: chains, reverse chains (_has), _include/_revinclude and _sort,
against the real R4 registry (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

import pytest

from fhir_server.search.model import (
    ChainTest,
    HasTest,
    ParamTest,
    ReferenceValue,
    StringValue,
    TokenValue,
)
from fhir_server.search.parse import (
    Include,
)
from fhir_server.search.registry import SearchRegistry
from tests.unit.search.parse_helpers import LOINC, error, one, parse

# --- chains and _has ---------------------------------------------------------------------------


def test_chain_with_type(registry: SearchRegistry) -> None:
    test = one(registry, "Observation", "subject:Patient.name", "peter")
    assert isinstance(test, ChainTest)
    assert test.param.code == "subject"
    assert test.target_types == ("Patient",)
    assert isinstance(test.test, ParamTest)
    assert test.test.param.resource_type == "Patient"
    assert test.test.values == (StringValue("peter"),)


def test_chain_without_type_covers_every_target_having_the_parameter(
    registry: SearchRegistry,
) -> None:
    test = one(registry, "Observation", "subject.name", "x")
    assert isinstance(test, ChainTest)
    assert test.target_types == ("Location", "Patient")  # Device and Group have no `name`


def test_chain_modifier_on_the_last_link(registry: SearchRegistry) -> None:
    test = one(registry, "Observation", "subject:Patient.name:exact", "Peter")
    assert isinstance(test, ChainTest) and isinstance(test.test, ParamTest)
    assert test.test.modifier == "exact"


def test_chain_two_and_three_levels(registry: SearchRegistry) -> None:
    two = one(registry, "Observation", "subject:Patient.organization.name", "acme")
    assert isinstance(two, ChainTest) and isinstance(two.test, ChainTest)
    assert two.test.param.code == "organization"
    assert two.test.target_types == ("Organization",)
    assert isinstance(two.test.test, ParamTest) and two.test.test.param.code == "name"
    three = one(registry, "Observation", "subject:Patient.organization.partof.name", "acme")
    assert isinstance(three, ChainTest) and isinstance(three.test, ChainTest)
    assert isinstance(three.test.test, ChainTest)
    assert three.test.test.param.code == "partof"
    assert isinstance(three.test.test.test, ParamTest)


def test_chain_too_deep(registry: SearchRegistry) -> None:
    name = "subject:Patient.organization.partof.partof.name"
    message = error(registry, "Observation", (name, "x")).diagnostics
    assert "levels deep" in message and "'subject:Patient.organization" in message


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("code.name", "only references chain"),
        ("subject:Medication.code", "Medication is not a target of subject"),
        ("subject.", "needs a parameter after"),
        ("subject:Patient.nope", "Unknown search parameter 'nope' on Patient"),
    ],
)
def test_chain_errors(registry: SearchRegistry, name: str, says: str) -> None:
    message = error(registry, "Observation", (name, "x")).diagnostics
    assert says in message
    assert name.split(".")[0] in message


def test_reverse_chain(registry: SearchRegistry) -> None:
    test = one(registry, "Patient", "_has:Observation:patient:code", f"{LOINC}|1234-5")
    assert isinstance(test, HasTest)
    assert test.source_type == "Observation"
    assert test.param.code == "patient" and test.param.resource_type == "Observation"
    assert isinstance(test.test, ParamTest)
    assert test.test.values == (TokenValue(LOINC, "1234-5"),)


def test_nested_reverse_chain(registry: SearchRegistry) -> None:
    name = "_has:Observation:patient:_has:AuditEvent:entity:agent"
    test = one(registry, "Patient", name, "Practitioner/1")
    assert isinstance(test, HasTest) and isinstance(test.test, HasTest)
    assert test.test.source_type == "AuditEvent"
    assert isinstance(test.test.test, ParamTest)
    assert test.test.test.values == (ReferenceValue("Practitioner", "1"),)


def test_reverse_chain_with_a_chain_and_a_modifier(registry: SearchRegistry) -> None:
    test = one(registry, "Patient", "_has:Observation:patient:performer:Practitioner.name", "x")
    assert isinstance(test, HasTest) and isinstance(test.test, ChainTest)
    assert test.test.target_types == ("Practitioner",)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("_has:Observation:encounter:code", "Observation.encounter cannot refer to Patient"),
        ("_has:Observation:code:code", "'code' is not a reference parameter of Observation"),
        ("_has:Nope:patient:code", "'Nope' is not a resource type"),
        ("_has:Observation:patient", "_has takes _has:Type:parameter:parameter"),
        ("_has:Observation:patient:nope", "Unknown search parameter 'nope' on Observation"),
    ],
)
def test_reverse_chain_errors(registry: SearchRegistry, name: str, says: str) -> None:
    message = error(registry, "Patient", (name, "x")).diagnostics
    assert says in message and "'_has:" in message


def test_reverse_chain_needs_a_type(registry: SearchRegistry) -> None:
    message = error(registry, None, ("_has:Observation:patient:code", "x")).diagnostics
    assert "not a system search" in message


# --- _sort ------------------------------------------------------------------------------------


def test_sort(registry: SearchRegistry) -> None:
    parsed = parse(registry, "Observation", ("_sort", "-date,code,_id"))
    assert [(k.param.code, k.descending) for k in parsed.sort] == [
        ("date", True),
        ("code", False),
        ("_id", False),
    ]
    assert parsed.sort[0].param.resource_type == "Observation"
    assert parsed.applied == (("_sort", "-date,code,_id"),)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ((("_sort", "nope"),), "cannot sort by 'nope'"),
        ((("_sort", "-code-value-quantity"),), "composite"),
        ((("_sort", "date"), ("_sort", "code")), "may appear only once"),
        ((("_sort:asc", "date"),), "takes no modifier"),
    ],
)
def test_sort_errors(
    registry: SearchRegistry, params: tuple[tuple[str, str], ...], says: str
) -> None:
    message = error(registry, "Observation", *params).diagnostics
    assert "'_sort" in message and says in message


# --- _include and _revinclude -------------------------------------------------------------------


def test_includes(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        "Observation",
        ("_include", "Observation:subject"),
        ("_include", "Observation:subject:Patient"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_include:recurse", "Patient:organization"),
        ("_include", "Observation:subject"),  # a repeat adds nothing
        ("_revinclude", "Provenance:target"),
        ("_revinclude:iterate", "Observation:*"),
    )
    subject = registry.for_type("Observation")["subject"]
    patient = registry.for_type("Patient")
    assert parsed.includes == (
        Include("Observation", subject, None, False),
        Include("Observation", subject, "Patient", False),
        Include("Patient", patient["general-practitioner"], None, True),
        Include("Patient", patient["organization"], None, True),
    )
    assert parsed.revincludes == (
        Include("Provenance", registry.for_type("Provenance")["target"], None, False),
        Include("Observation", None, None, True),
    )
    assert ("_include:iterate", "Patient:general-practitioner") in parsed.applied


def test_include_wildcard(registry: SearchRegistry) -> None:
    assert parse(registry, "Observation", ("_include", "*")).includes == (
        Include("Observation", None, None, False),
    )
    assert parse(registry, None, ("_include:iterate", "*")).includes == (
        Include("*", None, None, True),
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("_include", "Observation", "expected Type:parameter"),
        ("_include", "Observation:subject:Patient:x", "expected Type:parameter"),
        ("_include", "Nope:subject", "'Nope' is not a resource type"),
        ("_include", "Observation:nope", "'nope' is not a reference parameter of Observation"),
        ("_include", "Observation:code", "'code' is not a reference parameter of Observation"),
        ("_include", "Observation:subject:Nope", "'Nope' is not a resource type"),
        ("_include", "Observation:subject:Medication", "Medication is not a target"),
        ("_include:deep", "Observation:subject", "takes :iterate"),
        ("_revinclude", "*", "name the source type"),
    ],
)
def test_include_errors(registry: SearchRegistry, name: str, value: str, says: str) -> None:
    message = error(registry, "Observation", (name, value)).diagnostics
    assert f"'{name}'" in message and says in message
