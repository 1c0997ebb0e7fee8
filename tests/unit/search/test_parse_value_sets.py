"""``:in`` and ``:not-in`` on token parameters (http://hl7.org/fhir/R4/search.html#token): the
value set's codes become a plain token test (``:not-in``: the ``:not`` of it), through the
expansion callable the composition root injects (the terminology service)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from fhir_server.core.errors import FhirError, InvalidRequest
from fhir_server.search.model import ParamTest, TokenValue
from fhir_server.search.parse import parse_search
from fhir_server.search.parse_terminology import MAX_CODES as MAX_VALUE_SET_CODES
from fhir_server.search.parse_tests import Ignorable
from fhir_server.search.registry import SearchRegistry
from fhir_server.terminology.errors import ExpansionNotSupported, TooCostly, UnknownValueSet

STATUS = "http://hl7.org/fhir/observation-status"
SETS = {
    "http://vs/final": [(STATUS, "final"), (STATUS, "amended")],
    "http://vs/prelim": [(STATUS, "preliminary"), (STATUS, "final")],
    "http://vs/huge": [("urn:s", str(i)) for i in range(MAX_VALUE_SET_CODES + 1)],
    "http://vs/largest": [("urn:s", str(i)) for i in range(MAX_VALUE_SET_CODES)],
}


class Terminology:
    """A stand-in answering from SETS and a two-level hierarchy (the real service is tested in
    tests/unit/terminology and over HTTP)."""

    def codes(self, url: str) -> Iterable[tuple[str, str]]:
        if url == "http://vs/costly":
            raise TooCostly("The expansion of ValueSet 'http://vs/costly' is too large")
        if url not in SETS:
            raise UnknownValueSet(url)
        return SETS[url]

    def subsumption(self, system: str, code: str, direction: str) -> Iterable[tuple[str, str]]:
        if system != "urn:h":
            raise ExpansionNotSupported(f"CodeSystem '{system}' is not held by this server")
        return [(system, code), (system, f"{code}-{direction}")]


TERMINOLOGY = Terminology()


def one(registry: SearchRegistry, name: str, value: str) -> ParamTest:
    parsed = parse_search(registry, ("Observation",), [(name, value)], terminology=TERMINOLOGY)
    [test] = parsed.criteria.tests
    assert isinstance(test, ParamTest)
    assert parsed.applied == ((name, value),)
    return test


def test_in_is_the_value_sets_codes(registry: SearchRegistry) -> None:
    test = one(registry, "status:in", "http://vs/final")
    assert test.modifier is None
    assert test.values == (
        TokenValue(STATUS, "final"),
        TokenValue("", "final"),  # a `code` element has no system in the index
        TokenValue(STATUS, "amended"),
        TokenValue("", "amended"),
    )
    either = one(registry, "status:in", "http://vs/final,http://vs/prelim")
    assert len(either.values) == 6  # any of the value sets, each code once


def test_up_to_the_limit(registry: SearchRegistry) -> None:
    assert len(one(registry, "code:in", "http://vs/largest").values) == 2 * MAX_VALUE_SET_CODES


def test_not_in_is_not_of_the_codes(registry: SearchRegistry) -> None:
    test = one(registry, "code:not-in", "http://vs/final")
    assert test.modifier == "not"
    assert TokenValue(STATUS, "amended") in test.values and len(test.values) == 4


@pytest.mark.parametrize(
    ("value", "code", "text"),
    [
        ("http://vs/unknown", "not-found", "ValueSet 'http://vs/unknown' is not known"),
        ("http://vs/costly", "too-costly", "too large"),
        ("http://vs/huge", "too-costly", f"more than {MAX_VALUE_SET_CODES} codes"),
        ("urn:other|1", "not-supported", "CodeSystem 'urn:other' is not held"),
    ],
)
def test_errors_name_the_parameter(
    registry: SearchRegistry, value: str, code: str, text: str
) -> None:
    name = "code:below" if value.startswith("urn:") else "code:in"
    with pytest.raises(InvalidRequest) as raised:
        one(registry, name, value)
    [issue] = raised.value.issues
    assert issue.code == code
    assert issue.expression == (name,)
    assert f"'{name}'" in issue.diagnostics and text in issue.diagnostics


@pytest.mark.parametrize("direction", ["above", "below"])
def test_subsumption_is_the_related_codes(registry: SearchRegistry, direction: str) -> None:
    test = one(registry, f"code:{direction}", "urn:h|a")
    assert test.modifier is None
    assert TokenValue("urn:h", f"a-{direction}") in test.values
    assert TokenValue("urn:h", "a") in test.values
    with pytest.raises(InvalidRequest, match=r"takes system\|code"):
        one(registry, f"code:{direction}", "a")


def test_without_a_terminology_service_the_modifiers_are_unsupported(
    registry: SearchRegistry,
) -> None:
    with pytest.raises(Ignorable, match="needs terminology"):
        parse_search(registry, ("Observation",), [("code:in", "http://vs/final")])
    with pytest.raises(FhirError, match="needs terminology"):
        parse_search(registry, ("Observation",), [("code:above", "urn:h|x")])
