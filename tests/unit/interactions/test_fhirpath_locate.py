"""The FHIRPath subset of patch paths: parsing, evaluation and the locations of what is found."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.interactions.fhirpath_check import check_path
from fhir_server.interactions.fhirpath_locate import EvaluationError, PathError, evaluate
from fhir_server.interactions.fhirpath_path import (
    Binary,
    Call,
    Index,
    Literal,
    Name,
    PathSyntaxError,
    This,
    TypeOp,
    parse_path,
)

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "active": True,
    "identifier": [
        {"use": "official", "system": "http://a", "value": "1"},
        {"system": "http://b", "value": "2"},
        {"system": "http://b", "value": "3", "period": {"start": "2020"}},
    ],
    "name": [{"family": "Doe", "given": ["Ann", "Bea"], "_given": [None, {"id": "g"}]}],
    "deceasedBoolean": False,
    "_gender": {"extension": [{"url": "http://x/e", "valueCode": "asked"}]},
    "contained": [{"resourceType": "Organization", "id": "o", "name": "Org"}],
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"/>'},
}


def values(path: str, resource: dict[str, Any] = PATIENT) -> list[Any]:
    return [node.value for node in evaluate(parse_path(path), resource)]


def test_grammar_and_precedence() -> None:
    assert parse_path("Patient.name[0]") == Index(Name(Name(This(), "Patient"), "name"), 0)
    parsed = parse_path("a = 'x' or b and not()")
    assert isinstance(parsed, Binary) and parsed.op == "or"
    assert isinstance(parsed.right, Binary) and parsed.right.op == "and"
    assert parse_path("value as FHIR.Quantity") == TypeOp(Name(This(), "value"), "as", "Quantity")
    assert parse_path("x.ofType(System.String)") == Call(Name(This(), "x"), "ofType", (), "String")
    assert parse_path("text.div") == Name(Name(This(), "text"), "div")  # 'div' is also an operator
    assert parse_path("'a\\'b\\u0041'") == Literal("a'bA")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "empty"),
        ("Patient.", "ends too early"),
        ("Patient.name[x]", "indexer"),
        ("Patient.name[-1]", "indexer"),
        ("Patient.name.where()", "does not take 0"),
        ("Patient.name.first(1)", "does not take 1"),
        ("Patient.name.descendants()", "'descendants()' is not supported"),
        ("Patient.link.other.resolve()", "resolve()"),
        ("%context.name", "'%context' is not supported"),
        ("Patient.name > 1", "operator '>'"),
        ("Patient.name ; x", "unexpected character"),
        ("'\\uZZZZ'", "four hexadecimal digits"),
        ("Patient.ofType(1)", "type name"),
    ],
)
def test_paths_outside_the_subset(path: str, problem: str) -> None:
    with pytest.raises(PathSyntaxError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        parse_path(path)


def test_navigation_indexers_and_functions() -> None:
    assert values("Patient.name.given") == ["Ann", "Bea"]
    assert values("name.given[1]") == ["Bea"]
    assert values("Patient.identifier.last().value") == ["3"]
    assert values("Patient.identifier.first().value") == ["1"]
    assert values("Patient.identifier[5]") == []
    assert values("Patient.identifier.where(period.exists()).value") == ["3"]
    assert values("Patient.identifier.where(period.empty() and use.exists().not()).value") == ["2"]
    assert values("Patient.identifier.where(system = 'http://b' xor value = '3').value") == ["2"]
    implied = "Patient.identifier.where(period.exists() implies system = 'http://b').value"
    assert values(implied) == ["1", "2", "3"]
    assert values("Patient.identifier.where(use = 'official' implies value = '1').value") == ["1"]
    assert values("Patient.identifier.where($this.value != '2').value") == ["1", "3"]
    assert values("Patient.identifier.count() = 3") == [True]
    assert values("Patient.identifier.exists(value = '2')") == [True]
    assert values("%resource.active") == [True]
    assert values("Patient.active.hasValue()") == [True]
    assert values("Patient.gender.hasValue()") == [False]
    assert values("Patient.active.single()") == [True]
    assert values("Patient.where(active = true).id") == []
    with pytest.raises(EvaluationError):
        values("Patient.identifier.value.single()")


def test_types_choices_and_contained_resources() -> None:
    assert values("Patient.deceased") == [False]
    assert values("Patient.deceasedBoolean") == [False]
    assert values("Patient.deceased.ofType(boolean)") == [False]
    assert values("Patient.deceased.ofType(dateTime)") == []
    assert values("Patient.deceased is Boolean") == [True]
    assert values("Patient.contained.ofType(Organization).name") == ["Org"]
    assert values("Patient.contained.where(id = 'o').name") == ["Org"]
    mixed = {**PATIENT, "contained": [*PATIENT["contained"], {"resourceType": "Medication"}]}
    assert values("Patient.contained.name", mixed) == ["Org"]  # a Medication has no name
    assert values("Observation.status") == []  # a type test on the focus
    assert values("DomainResource.active") == [True]
    assert values("Patient.text.div") == [PATIENT["text"]["div"]]


def test_primitives_found_through_their_underscore_sibling() -> None:
    gender = evaluate(parse_path("Patient.gender"), PATIENT)
    assert [n.value for n in gender] == [None]  # only an extension
    assert values("Patient.gender.extension('http://x/e').value") == ["asked"]
    assert values("Patient.name.given[1].id") == ["g"]
    assert values("Patient.name.given.id") == ["g"]


def test_locations_point_into_the_json() -> None:
    (given,) = evaluate(parse_path("Patient.name[0].given[1]"), PATIENT)
    assert given.location is not None
    assert given.location.container is PATIENT["name"][0]
    assert (given.location.key, given.location.index) == ("given", 1)
    assert given.location.info.path == "HumanName.given"
    parent = given.location.parent
    assert parent is not None and parent.container is PATIENT and parent.key == "name"
    (extension,) = evaluate(parse_path("Patient.gender.extension"), PATIENT)
    assert extension.location is not None and extension.location.in_shadow
    assert extension.location.container is PATIENT["_gender"]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("Patient.nickname", "'nickname' is not an element of Patient"),
        ("Patient.name.surname", "'surname' is not an element of HumanName"),
        ("Patient.contact.nickname", "'nickname' is not an element of Patient.contact"),
        ("Patinet.name", "'Patinet' is not a FHIR type"),
        ("Patient.name.ofType(Nope)", "'Nope' is not a FHIR type"),
        ("Patient.deceasedString", "'deceasedString' is not an element"),
    ],
)
def test_unknown_names_are_path_errors(path: str, problem: str) -> None:
    with pytest.raises(PathError, match=problem):
        check_path(parse_path(path), "Patient")
    if "contact" not in path:  # evaluation meets only the names of elements that are present
        with pytest.raises(PathError, match=problem):
            values(path)


@pytest.mark.parametrize(
    "path",
    [
        "Patient.contact.name.given.extension.url",
        "Patient.contained.ofType(Organization).name",
        "Patient.contained.anything.goes",  # type known only at run time
        "Patient.identifier.where(period.start.exists() and %resource.active).value",
        "Observation.value.value",  # Quantity.value, though value may also be a string
        "Patient.birthDate.extension('http://x').value.ofType(string)",
    ],
)
def test_static_check_accepts_names_some_type_has(path: str) -> None:
    check_path(parse_path(path), "Patient" if path.startswith("Patient") else "Observation")


def test_static_check_follows_where_criteria() -> None:
    with pytest.raises(PathError, match="'sytem' is not an element of Identifier"):
        check_path(parse_path("Patient.identifier.where(sytem = 'x')"), "Patient")
