"""Shared fixtures for the in-memory matcher tests (test_matcher*.py): parameter definitions,
value and entry builders, and a one-parameter ``check``."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.search.matcher import MemoryIndex, match_test
from fhir_server.search.model import (
    Component,
    CompositeEntry,
    DateEntry,
    DateValue,
    IndexEntry,
    NumberValue,
    ParamTest,
    ParamType,
    Prefix,
    QuantityEntry,
    QuantityValue,
    ResourceIndex,
    SearchParamDef,
    SearchValue,
    StringEntry,
    TokenEntry,
    TokenValue,
)
from fhir_server.search.values import date_bounds, normalize_string

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2025, 6, 1, tzinfo=UTC)
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def sp(
    code: str, type_: ParamType, resource_type: str = "Observation", **kw: object
) -> SearchParamDef:
    url = f"http://hl7.org/fhir/SearchParameter/{resource_type}-{code}"
    return SearchParamDef(code, resource_type, type_, f"{resource_type}.{code}", url, **kw)  # type: ignore[arg-type]


CODE = sp("code", "token")
IDENTIFIER = sp("identifier", "token", "Patient")
ID = SearchParamDef(
    "_id", "Resource", "token", None, "http://hl7.org/fhir/SearchParameter/Resource-id"
)
NAME = sp("name", "string", "Patient")
BIRTHDATE = sp("birthdate", "date", "Patient")
DATE = sp("date", "date")
PROBABILITY = sp("probability", "number", "RiskAssessment")
VALUE_QUANTITY = sp("value-quantity", "quantity")
SUBJECT = sp("subject", "reference", targets=("Patient", "Group"))
ENCOUNTER = sp("encounter", "reference", targets=("Encounter",))
ENC_SUBJECT = sp("subject", "reference", "Encounter", targets=("Patient", "Group"))
PROFILE = SearchParamDef("_profile", "Resource", "uri", "Resource.meta.profile", "x")
LAST_UPDATED = SearchParamDef("_lastUpdated", "Resource", "date", "Resource.meta.lastUpdated", "x")
COMPONENT_CODE = sp("component-code", "token")
COMPONENT_VALUE = sp("component-value-quantity", "quantity")
COMBO = sp(
    "component-code-value-quantity",
    "composite",
    components=(
        Component(COMPONENT_CODE, "code"),
        Component(COMPONENT_VALUE, "value.as(Quantity)"),
    ),
)


def ix(**entries: tuple[IndexEntry | CompositeEntry, ...]) -> ResourceIndex:
    """An index from keyword codes (``value_quantity`` stands for ``value-quantity``)."""
    return ResourceIndex({code.replace("_", "-"): e for code, e in entries.items()})


def check(
    param: SearchParamDef,
    entries: tuple[IndexEntry | CompositeEntry, ...],
    *values: SearchValue,
    modifier: str | None = None,
    id: str = "1",
) -> bool:
    index = ResourceIndex({param.code: entries} if entries else {})
    test = ParamTest(param, modifier, values)
    return match_test(test, param.resource_type, id, index, MemoryIndex(), now=NOW)


def tok(code: str | None, system: str | None = None) -> TokenValue:
    return TokenValue(system, code)


def date(prefix: Prefix, text: str) -> DateValue:
    return DateValue(prefix, *date_bounds(text))


def dentry(text: str) -> DateEntry:
    return DateEntry(*date_bounds(text))


def num(prefix: Prefix, value: float, half: float = 0.5) -> NumberValue:
    return NumberValue(prefix, value, value - half, value + half)


def qty(
    prefix: Prefix, value: float, code: str | None = None, system: str | None = None
) -> QuantityValue:
    return QuantityValue(prefix, value, value - 0.5, value + 0.5, system, code)


def qentry(low: float, high: float | None = None, code: str | None = "mg") -> QuantityEntry:
    return QuantityEntry(low, low if high is None else high, UCUM, code, code)


def sentry(text: str) -> StringEntry:
    return StringEntry(normalize_string(text), text)


CODINGS = (TokenEntry(LOINC, "1234-5", "glucose"), TokenEntry(None, "local"))
