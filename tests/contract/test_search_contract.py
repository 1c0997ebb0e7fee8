"""The search half of the storage contract: every backend answers docs/search.md the same way.

Indexes are built by hand (no extraction code) and stored through ``uow.put(..., index=...)``;
only the port is used, so a new backend runs this suite unchanged. This module covers every
parameter type, modifier and prefix with their boundaries, composites, ``:missing``, chains,
``_has`` and compartments; test_search_paging_contract.py covers sorting, keyset paging under
concurrent writes, count, and race-free conditional puts, with the helpers defined here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from fhir_server.search import ucum
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    ChainTest,
    CompartmentTest,
    Component,
    CompositeEntry,
    CompositeValue,
    Criteria,
    DateEntry,
    DateValue,
    HasTest,
    IndexEntry,
    NumberEntry,
    NumberValue,
    ParamTest,
    ParamType,
    Prefix,
    QuantityEntry,
    QuantityValue,
    ReferenceEntry,
    ReferenceValue,
    ResourceIndex,
    SearchParamDef,
    SearchValue,
    StringEntry,
    StringValue,
    Test,
    TokenEntry,
    TokenValue,
    UriEntry,
    UriValue,
)
from fhir_server.search.values import date_bounds, number_bounds
from fhir_server.storage.port import ResourceStore, ResourceVersion, SearchQuery

T0 = datetime(2026, 1, 1, tzinfo=UTC)
UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
Entries = dict[str, tuple[IndexEntry | CompositeEntry, ...]]


def param(code: str, type: ParamType, on: str = "Patient", **kw: object) -> SearchParamDef:
    url = f"http://example.org/SearchParameter/{on}-{code}"
    return SearchParamDef(code, on, type, f"{on}.{code}", url, **kw)  # type: ignore[arg-type]


ID = SearchParamDef(
    "_id", "Patient", "token", None, "http://hl7.org/fhir/SearchParameter/Resource-id"
)
CODE, NAME, BIRTH = param("code", "token"), param("name", "string"), param("birthdate", "date")
LENGTH, WEIGHT, URL = param("length", "number"), param("weight", "quantity"), param("url", "uri")
SUBJECT = param("subject", "reference", "Observation", targets=("Patient", "Group"))
ORG = param("organization", "reference", targets=("Organization",))
ORG_NAME = param("name", "string", "Organization")
OBS_CODE = param("code", "token", "Observation")
ENC_SUBJECT = param("subject", "reference", "Encounter", targets=("Patient",))
OBS_ENCOUNTER = param("encounter", "reference", "Observation", targets=("Encounter",))
VALUE_QUANTITY = param("value-quantity", "quantity", "Observation")
CODE_VALUE = param(
    "code-value-quantity",
    "composite",
    "Observation",
    components=(Component(OBS_CODE, "code"), Component(VALUE_QUANTITY, "value")),
)


async def put(
    store: ResourceStore,
    type: str,
    id: str,
    entries: Entries | None = None,
    compartments: tuple[tuple[str, str], ...] = (),
    *,
    deleted: bool = False,
) -> None:
    """Create, update or (``deleted``) delete a resource with a hand-made index."""
    current = await store.read(type, id)
    n = current.version + 1 if current else 1
    body = None if deleted else orjson.dumps({"resourceType": type, "id": id, "n": n})
    method = "DELETE" if deleted else "PUT"
    v = ResourceVersion(type, id, n, T0 + timedelta(seconds=n), method, body)
    index = None if deleted else ResourceIndex(entries or {}, compartments)
    async with store.unit_of_work() as uow:
        uow.put(v, expected_version=n - 1, interaction="update", index=index)


def t(p: SearchParamDef, *values: SearchValue, modifier: str | None = None) -> ParamTest:
    return ParamTest(p, modifier, values)


async def found(
    store: ResourceStore, *tests: Test, types: tuple[str, ...] = ("Patient",)
) -> set[str]:
    page = await store.search(SearchQuery(Criteria(types, tests), count=1000))
    assert page.next_cursor is None
    return {v.id for v in page.entries}


async def test_token_forms_and_modifiers(store: ResourceStore) -> None:
    mr = "http://terminology.hl7.org/CodeSystem/v2-0203"
    await put(store, "Patient", "a", {"code": (TokenEntry(LOINC, "1234-5", "blood pressure"),)})
    await put(store, "Patient", "b", {"code": (TokenEntry(None, "1234-5"),)})
    await put(
        store,
        "Patient",
        "c",
        {"code": (TokenEntry("http://sct", "99"), TokenEntry(None, None, "blood sugar"))},
    )
    await put(store, "Patient", "d")
    await put(store, "Patient", "e", {"code": (TokenEntry("urn:mrn", "42", None, mr, "MR"),)})
    assert await found(store, t(CODE, TokenValue(None, "1234-5"))) == {"a", "b"}
    assert await found(store, t(CODE, TokenValue(LOINC, "1234-5"))) == {"a"}
    assert await found(store, t(CODE, TokenValue("", "1234-5"))) == {"b"}
    assert await found(store, t(CODE, TokenValue("http://sct", None))) == {"c"}
    assert await found(store, t(CODE, TokenValue(None, "99"), TokenValue(LOINC, "1234-5"))) == {
        "a",
        "c",
    }
    assert await found(store, t(CODE, TokenValue(None, "Blood"), modifier="text")) == {"a", "c"}
    assert await found(store, t(CODE, TokenValue(None, "blood s"), modifier="text")) == {"c"}
    not_either = t(CODE, TokenValue(None, "1234-5"), TokenValue(None, "99"), modifier="not")
    assert await found(store, not_either) == {"d", "e"}  # without the parameter included
    assert await found(store, t(CODE, TokenValue(None, "1234-5"), modifier="not")) == {
        "c",
        "d",
        "e",
    }
    assert await found(store, t(CODE, TokenValue(mr, "MR", "42"), modifier="of-type")) == {"e"}
    assert await found(store, t(CODE, TokenValue(mr, "MR", "43"), modifier="of-type")) == set()
    ids = t(ID, TokenValue(None, "a"), TokenValue(None, "d"), TokenValue(None, "zz"))
    assert await found(store, ids) == {"a", "d"}
    assert await found(store, ids, t(CODE, TokenValue(None, "1234-5"))) == {"a"}  # AND


async def test_string_prefix_exact_contains(store: ResourceStore) -> None:
    await put(store, "Patient", "a", {"name": (StringEntry("eve", "Eve"),)})
    await put(store, "Patient", "b", {"name": (StringEntry("evelyn", "Evelyn"),)})
    await put(store, "Patient", "c", {"name": (StringEntry("severine", "Séverine"),)})
    assert await found(store, t(NAME, StringValue("EVE"))) == {"a", "b"}
    assert await found(store, t(NAME, StringValue("Sév"))) == {"c"}
    assert await found(store, t(NAME, StringValue("Eve"), modifier="exact")) == {"a"}
    assert await found(store, t(NAME, StringValue("eve"), modifier="exact")) == set()
    assert await found(store, t(NAME, StringValue("Séverine"), modifier="exact")) == {"c"}
    assert await found(store, t(NAME, StringValue("eve"), modifier="contains")) == {"a", "b", "c"}
    assert await found(store, t(NAME, StringValue("VÉR"), modifier="contains")) == {"c"}
    assert await found(store, t(NAME, StringValue("x%"), modifier="contains")) == set()


def dv(prefix: Prefix, text: str) -> DateValue:
    return DateValue(prefix, *date_bounds(text))


@pytest.mark.parametrize(
    ("prefix", "text", "expected"),
    [
        ("eq", "2020-03-15", {"day", "second"}),
        ("eq", "2020", {"year", "day", "second"}),
        ("eq", "2020-03-15T10:00:00Z", {"second"}),  # equal ranges: bounds are inclusive
        ("ne", "2020-03-15", {"year", "open_end", "open_start", "far"}),
        ("gt", "2020-03-15", {"year", "open_end"}),
        ("ge", "2020-03-15", {"year", "open_end", "day", "second"}),
        ("lt", "2020-03-15", {"year", "open_start", "far"}),
        ("le", "2020-03-15", {"year", "open_start", "far", "day", "second"}),
        ("sa", "2020-03-14", {"day", "second", "open_end"}),
        ("sa", "2020-03-15", set()),
        ("eb", "2020-03-16", {"day", "second", "open_start", "far"}),
        ("eb", "2020-03-15", {"open_start", "far"}),
        ("ap", "2020-03-15", {"year", "day", "second", "open_end", "open_start"}),
    ],
)
async def test_date_prefixes(
    store: ResourceStore, prefix: Prefix, text: str, expected: set[str]
) -> None:
    await put(store, "Patient", "year", {"birthdate": (DateEntry(*date_bounds("2020")),)})
    await put(store, "Patient", "day", {"birthdate": (DateEntry(*date_bounds("2020-03-15")),)})
    second = DateEntry(*date_bounds("2020-03-15T10:00:00Z"))
    await put(store, "Patient", "second", {"birthdate": (second,)})
    open_end = DateEntry(date_bounds("2020-03-15")[0], MAX_INSTANT)  # Period without end
    await put(store, "Patient", "open_end", {"birthdate": (open_end,)})
    open_start = DateEntry(MIN_INSTANT, date_bounds("2019-12-31")[1])
    await put(store, "Patient", "open_start", {"birthdate": (open_start,)})
    await put(store, "Patient", "far", {"birthdate": (DateEntry(*date_bounds("2010-01-01")),)})
    await put(store, "Patient", "none")
    assert await found(store, t(BIRTH, dv(prefix, text))) == expected


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("eq", {"100", "100.4", "99.5"}),  # [99.5, 100.5): low inclusive, high exclusive
        ("ne", {"100.5", "0.5"}),
        ("gt", {"100.4", "100.5"}),
        ("ge", {"100", "100.4", "100.5"}),
        ("lt", {"99.5", "0.5"}),
        ("le", {"100", "99.5", "0.5"}),
        ("sa", {"100.4", "100.5"}),
        ("eb", {"99.5", "0.5"}),
        ("ap", {"100", "100.4", "99.5", "100.5"}),
    ],
)
async def test_number_prefixes(store: ResourceStore, prefix: Prefix, expected: set[str]) -> None:
    for value in ("100", "100.4", "99.5", "100.5", "0.5"):
        await put(store, "Patient", value, {"length": (NumberEntry(float(value)),)})
    await put(store, "Patient", "none")
    assert await found(store, t(LENGTH, NumberValue(prefix, *number_bounds("100")))) == expected


def quantity(low: float, high: float, code: str, system: str | None = UCUM) -> QuantityEntry:
    c_low, c_high = ucum.canonical(low, code), ucum.canonical(high, code)
    if c_low is None or c_high is None or system != UCUM:
        return QuantityEntry(low, high, system, code, code)
    return QuantityEntry(low, high, system, code, code, c_low[0], c_high[0], c_low[1])


def qv(prefix: Prefix, text: str, code: str | None, system: str | None = None) -> QuantityValue:
    return QuantityValue(prefix, *number_bounds(text), system, code)


async def test_quantity_units_ranges_and_prefixes(store: ResourceStore) -> None:
    await put(store, "Patient", "mg", {"weight": (quantity(5.4, 5.4, "mg"),)})
    await put(store, "Patient", "g", {"weight": (quantity(0.0054, 0.0054, "g"),)})
    other = QuantityEntry(5.4, 5.4, "http://other", "xyz", "xyz units")
    await put(store, "Patient", "other", {"weight": (other,)})
    await put(store, "Patient", "range", {"weight": (quantity(1, 3, "mg"),)})  # a Range
    await put(store, "Patient", "below", {"weight": (quantity(float("-inf"), 2, "mg"),)})  # <2
    assert await found(store, t(WEIGHT, qv("eq", "5.4", None))) == {"mg", "other"}
    assert await found(store, t(WEIGHT, qv("eq", "5.4", "mg", UCUM))) == {"mg", "g"}  # canonical
    assert await found(store, t(WEIGHT, qv("eq", "5.4", "mg"))) == {"mg", "g"}
    assert await found(store, t(WEIGHT, qv("eq", "5.4", "xyz"))) == {"other"}
    assert await found(store, t(WEIGHT, qv("eq", "5.4", "xyz units"))) == {"other"}  # the unit
    assert await found(store, t(WEIGHT, qv("eq", "5.4", "xyz", "http://else"))) == set()
    assert await found(store, t(WEIGHT, qv("eq", "2", "mg"))) == {"range", "below"}
    assert await found(store, t(WEIGHT, qv("gt", "2", "mg"))) == {"mg", "g", "range"}
    assert await found(store, t(WEIGHT, qv("ge", "2", "mg"))) == {"mg", "g", "range", "below"}
    assert await found(store, t(WEIGHT, qv("lt", "2", "mg"))) == {"range", "below"}
    assert await found(store, t(WEIGHT, qv("le", "1", "mg"))) == {"range", "below"}
    assert await found(store, t(WEIGHT, qv("ne", "5.4", "mg"))) == {"range", "below"}
    assert await found(store, t(WEIGHT, qv("ap", "5", "mg"))) == {"mg", "g"}


async def test_reference_forms(store: ResourceStore) -> None:
    obs = ("Observation",)
    url = "http://other.org/fhir/Patient/9"
    canon = "http://x.org/Questionnaire/q"
    await put(store, "Observation", "o1", {"subject": (ReferenceEntry("Patient", "p1"),)})
    await put(store, "Observation", "o2", {"subject": (ReferenceEntry("Group", "p1"),)})
    await put(store, "Observation", "o3", {"subject": (ReferenceEntry("Patient", "9", url),)})
    logical = ReferenceEntry(None, None, identifier_system="urn:mrn", identifier_value="42")
    await put(store, "Observation", "o4", {"subject": (logical,)})
    await put(store, "Observation", "o5", {"subject": (ReferenceEntry(None, None, canon, "2"),)})
    assert await found(store, t(SUBJECT, ReferenceValue("Patient", "p1")), types=obs) == {"o1"}
    assert await found(store, t(SUBJECT, ReferenceValue(None, "p1")), types=obs) == {"o1", "o2"}
    group = t(SUBJECT, ReferenceValue("Group", "p1"), modifier="Group")
    assert await found(store, group, types=obs) == {"o2"}
    assert await found(store, t(SUBJECT, ReferenceValue(None, None, url)), types=obs) == {"o3"}
    assert await found(store, t(SUBJECT, ReferenceValue(None, None, canon)), types=obs) == {"o5"}
    versioned = t(
        SUBJECT, ReferenceValue(None, None, canon, "2"), ReferenceValue(None, None, canon, "3")
    )
    assert await found(store, versioned, types=obs) == {"o5"}
    assert (
        await found(store, t(SUBJECT, ReferenceValue(None, None, canon, "3")), types=obs) == set()
    )
    by_identifier = ReferenceValue(None, None, identifier_system="urn:mrn", identifier_value="42")
    assert await found(store, t(SUBJECT, by_identifier, modifier="identifier"), types=obs) == {"o4"}
    any_system = ReferenceValue(None, None, identifier_value="42")
    assert await found(store, t(SUBJECT, any_system, modifier="identifier"), types=obs) == {"o4"}
    wrong = ReferenceValue(None, None, identifier_system="urn:x", identifier_value="42")
    assert await found(store, t(SUBJECT, wrong, modifier="identifier"), types=obs) == set()


async def test_uri_equal_above_below(store: ResourceStore) -> None:
    await put(store, "Patient", "vs", {"url": (UriEntry("http://acme.org/fhir/ValueSet/123"),)})
    await put(store, "Patient", "base", {"url": (UriEntry("http://acme.org/fhir"),)})
    await put(
        store, "Patient", "v5", {"url": (UriEntry("http://acme.org/fhir/ValueSet/123/_history/5"),)}
    )
    assert await found(store, t(URL, UriValue("http://acme.org/fhir/ValueSet/123"))) == {"vs"}
    above = UriValue("http://acme.org/fhir/ValueSet/123/_history/5")
    assert await found(store, t(URL, above, modifier="above")) == {"vs", "base", "v5"}
    below = UriValue("http://acme.org/fhir/ValueSet")
    assert await found(store, t(URL, below, modifier="below")) == {"vs", "v5"}
    assert await found(store, t(URL, UriValue("http://acme.org/fhir/"), modifier="above")) == {
        "base"
    }


async def test_composite_pairs_values_of_one_element(store: ResourceStore) -> None:
    def element(code: str, value: float) -> CompositeEntry:
        return CompositeEntry(
            ((TokenEntry(LOINC, code),), (QuantityEntry(value, value, UCUM, "mm[Hg]", "mmHg"),))
        )

    await put(
        store,
        "Observation",
        "bp",
        {"code-value-quantity": (element("8480-6", 120), element("8462-4", 80))},
    )
    await put(store, "Observation", "plain", {"code": (TokenEntry(LOINC, "8480-6"),)})

    def pair(code: str, value: str) -> CompositeValue:
        return CompositeValue(
            (TokenValue(LOINC, code), QuantityValue("eq", *number_bounds(value), None, None))
        )

    obs = ("Observation",)
    assert await found(store, t(CODE_VALUE, pair("8480-6", "120")), types=obs) == {"bp"}
    assert await found(store, t(CODE_VALUE, pair("8462-4", "80")), types=obs) == {"bp"}
    assert await found(store, t(CODE_VALUE, pair("8480-6", "80")), types=obs) == set()  # across
    gt = CompositeValue(
        (TokenValue(None, "8462-4"), QuantityValue("gt", *number_bounds("100"), None, None))
    )
    assert await found(store, t(CODE_VALUE, gt), types=obs) == set()
    missing = ParamTest(CODE_VALUE, "missing", (), missing=True)
    assert await found(store, missing, types=obs) == {"plain"}


async def test_missing_true_and_false(store: ResourceStore) -> None:
    await put(
        store,
        "Patient",
        "with",
        {"code": (TokenEntry(None, "x"),), "name": (StringEntry("a", "a"),)},
    )
    await put(store, "Patient", "without", {"name": (StringEntry("b", "b"),)})
    assert await found(store, ParamTest(CODE, "missing", (), missing=True)) == {"without"}
    assert await found(store, ParamTest(CODE, "missing", (), missing=False)) == {"with"}
    assert await found(store, ParamTest(BIRTH, "missing", (), missing=True)) == {"with", "without"}
    assert await found(store, ParamTest(ID, "missing", (), missing=False)) == {"with", "without"}


async def test_chain_two_levels_follows_current_targets(store: ResourceStore) -> None:
    await put(store, "Organization", "org1", {"name": (StringEntry("acme", "Acme"),)})
    await put(store, "Organization", "org2", {"name": (StringEntry("globex", "Globex"),)})
    await put(store, "Patient", "p1", {"organization": (ReferenceEntry("Organization", "org1"),)})
    await put(store, "Patient", "p2", {"organization": (ReferenceEntry("Organization", "org2"),)})
    for obs, patient in (("o1", "p1"), ("o2", "p2"), ("o3", "gone")):
        await put(store, "Observation", obs, {"subject": (ReferenceEntry("Patient", patient),)})
    inner = ChainTest(ORG, ("Organization",), t(ORG_NAME, StringValue("acme")))
    chain = ChainTest(SUBJECT, ("Patient",), inner)
    assert await found(store, chain, types=("Observation",)) == {"o1"}
    untyped = ChainTest(SUBJECT, (), inner)  # the parameter's own targets
    assert await found(store, untyped, types=("Observation",)) == {"o1"}
    await put(store, "Organization", "org1", deleted=True)
    assert await found(store, chain, types=("Observation",)) == set()


async def test_has_nested_and_compartments(store: ResourceStore) -> None:
    for patient in ("p1", "p2", "p3"):
        await put(store, "Patient", patient, compartments=(("Patient", patient),))
    for enc, patient in (("e1", "p1"), ("e2", "p2")):
        compartments = (("Patient", patient),)
        await put(
            store,
            "Encounter",
            enc,
            {"subject": (ReferenceEntry("Patient", patient),)},
            compartments,
        )
    for obs, enc, code in (("o1", "e1", "x"), ("o2", "e2", "y")):
        entries: Entries = {
            "encounter": (ReferenceEntry("Encounter", enc),),
            "code": (TokenEntry(None, code),),
        }
        await put(store, "Observation", obs, entries, (("Patient", "p1" if enc == "e1" else "p2"),))
    coded = t(OBS_CODE, TokenValue(None, "x"))
    assert await found(
        store, HasTest("Observation", OBS_ENCOUNTER, coded), types=("Encounter",)
    ) == {"e1"}
    nested = HasTest("Encounter", ENC_SUBJECT, HasTest("Observation", OBS_ENCOUNTER, coded))
    assert await found(store, nested) == {"p1"}
    assert await found(store, CompartmentTest("Patient", "p2"), types=("Observation",)) == {"o2"}
    assert await found(store, CompartmentTest("Patient", "p1"), types=()) == {"p1", "e1", "o1"}
    await put(store, "Observation", "o1", deleted=True)
    assert await found(store, nested) == set()
