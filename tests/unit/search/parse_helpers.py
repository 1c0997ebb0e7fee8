"""Shared helpers for the search parser tests (test_parse*.py): constants and thin wrappers
around ``parse_search`` that return the parsed search, its single test, or the error."""

from __future__ import annotations

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import ParamTest, Test
from fhir_server.search.parse import ParsedSearch, parse_search
from fhir_server.search.registry import SearchRegistry

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BASE = "https://fhir.example.org/r4"


def parse(
    registry: SearchRegistry,
    resource_type: str | None,
    *params: tuple[str, str],
    lenient: bool = False,
) -> ParsedSearch:
    types = (resource_type,) if resource_type else ()
    return parse_search(registry, types, list(params), lenient=lenient, base_url=BASE)


def one(registry: SearchRegistry, resource_type: str | None, name: str, value: str) -> Test:
    [test] = parse(registry, resource_type, (name, value)).criteria.tests
    return test


def param_test(registry: SearchRegistry, resource_type: str, name: str, value: str) -> ParamTest:
    test = one(registry, resource_type, name, value)
    assert isinstance(test, ParamTest)
    return test


def error(
    registry: SearchRegistry, resource_type: str | None, *params: tuple[str, str]
) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(registry, resource_type, *params)
    return caught.value
