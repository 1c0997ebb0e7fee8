"""Randomised congruence: every storage backend answers searches exactly like the oracle.

The qdrant-client pattern: a seeded random corpus (Patient, Encounter, Observation and
RiskAssessment, ~200 resources over small value domains so that queries hit) is written through
the storage port *and* into :class:`~fhir_server.search.matcher.MemoryIndex`; then ~300 random
criteria (every test kind, modifier and prefix, OR lists, ANDs, chains, ``_has``, compartments,
``:missing``) must give the same set (paged with ``count=37``), the same ``count`` and, under a
random ``_sort``, the same sequence of sort values (resources with equal sort values may come in
any order). Only the port is used, so a new backend runs this unchanged
(tests/contract/conftest.py). Every disagreement of a seed is collected and shown as the query in
URL form with a small diff.

``FHIR_CONGRUENCE_SEEDS`` runs other seeds: a number N (seeds 1..N) or a comma list.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TypeVar

import orjson
import pytest

from fhir_server.search import ucum
from fhir_server.search.matcher import MemoryIndex, SortValue, to_microseconds
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
    SortKey,
    StringEntry,
    StringValue,
    Test,
    TokenEntry,
    TokenValue,
    UriEntry,
    UriValue,
)
from fhir_server.search.values import date_bounds, normalize_string, number_bounds
from fhir_server.storage.port import ABSENT, ResourceStore, ResourceVersion, SearchQuery

QUERIES = 300
PAGE = 37
DEFAULT_SEEDS = (1, 2, 3, 4, 5)
T0 = datetime(2019, 1, 1, tzinfo=UTC)  # resources are updated in 2019-2022

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UNITS = "http://example.org/units"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
GENDER = "http://hl7.org/fhir/administrative-gender"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

Entries = tuple[IndexEntry | CompositeEntry, ...]
T = TypeVar("T")
Key = tuple[str, str]


def seeds() -> list[int]:
    text = os.environ.get("FHIR_CONGRUENCE_SEEDS", "").strip()
    if not text:
        return list(DEFAULT_SEEDS)
    if text.isdigit():
        return list(range(1, int(text) + 1))
    return [int(part) for part in text.split(",")]


# --- the parameters (inline definitions, names from R4) -----------------------------------------


def sp(resource_type: str, code: str, type_: ParamType, *targets: str) -> SearchParamDef:
    url = f"http://hl7.org/fhir/SearchParameter/{resource_type}-{code}"
    return SearchParamDef(
        code, resource_type, type_, f"{resource_type}.{code}", url, targets=targets
    )


@cache
def definitions() -> dict[str, dict[str, SearchParamDef]]:
    """Per resource type, its parameters by code (the common ones included)."""
    common = [
        SearchParamDef("_id", "Resource", "token", None, "http://hl7.org/fhir/SearchParameter/Resource-id"),
        SearchParamDef("_lastUpdated", "Resource", "date", "Resource.meta.lastUpdated",
                       "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"),
        SearchParamDef("_profile", "Resource", "uri", "Resource.meta.profile",
                       "http://hl7.org/fhir/SearchParameter/Resource-profile"),
    ]  # fmt: skip
    component_code = sp("Observation", "component-code", "token")
    component_value = sp("Observation", "component-value-quantity", "quantity")
    composite = SearchParamDef(
        "component-code-value-quantity",
        "Observation",
        "composite",
        "Observation.component",
        "http://hl7.org/fhir/SearchParameter/Observation-component-code-value-quantity",
        components=(
            Component(component_code, "code"),
            Component(component_value, "value.as(Quantity)"),
        ),
    )
    own = {
        "Patient": [
            sp("Patient", "name", "string"),
            sp("Patient", "gender", "token"),
            sp("Patient", "identifier", "token"),
            sp("Patient", "active", "token"),
            sp("Patient", "birthdate", "date"),
            sp("Patient", "link", "reference", "Patient"),
        ],
        "Encounter": [
            sp("Encounter", "status", "token"),
            sp("Encounter", "class", "token"),
            sp("Encounter", "date", "date"),
            sp("Encounter", "length", "quantity"),
            sp("Encounter", "subject", "reference", "Patient", "Group"),
            sp("Encounter", "patient", "reference", "Patient"),
        ],
        "Observation": [
            sp("Observation", "code", "token"),
            sp("Observation", "date", "date"),
            sp("Observation", "value-quantity", "quantity"),
            sp("Observation", "value-string", "string"),
            sp("Observation", "subject", "reference", "Patient", "Group"),
            sp("Observation", "patient", "reference", "Patient"),
            sp("Observation", "encounter", "reference", "Encounter"),
            component_code,
            component_value,
            composite,
        ],
        "RiskAssessment": [
            sp("RiskAssessment", "probability", "number"),
            sp("RiskAssessment", "subject", "reference", "Patient", "Group"),
            sp("RiskAssessment", "encounter", "reference", "Encounter"),
        ],
    }
    return {t: {p.code: p for p in [*common, *params]} for t, params in own.items()}


TYPES = ("Patient", "Encounter", "Observation", "RiskAssessment")
COUNTS = {"Patient": 40, "Encounter": 40, "Observation": 90, "RiskAssessment": 30}
CHAINS = {  # (reference parameter, target type)
    "Patient": [("link", "Patient")],
    "Encounter": [("subject", "Patient"), ("patient", "Patient")],
    "Observation": [("subject", "Patient"), ("patient", "Patient"), ("encounter", "Encounter")],
    "RiskAssessment": [("subject", "Patient"), ("encounter", "Encounter")],
}
HAS = {  # (source type, its reference parameter) pointing at the type
    "Patient": [("Observation", "subject"), ("Observation", "patient"), ("Encounter", "subject"),
                ("RiskAssessment", "subject"), ("Patient", "link")],
    "Encounter": [("Observation", "encounter"), ("RiskAssessment", "encounter")],
    "Observation": [],
    "RiskAssessment": [],
}  # fmt: skip
SORTABLE = {
    "Patient": ["name", "gender", "birthdate", "identifier", "link"],
    "Encounter": ["date", "length", "status", "subject"],
    "Observation": ["date", "code", "value-quantity", "value-string", "subject"],
    "RiskAssessment": ["probability", "subject"],
}

# --- value domains ------------------------------------------------------------------------------

NAMES = ["Émilie Dürr", "emilie durand", "ZOË Martin", "Zoe  martín", "Ana López", "anaïs Lopez",
         "Bo Chen", "bob chen", "Chloé", "ÑANDÚ ñu"]  # fmt: skip
VALUE_STRINGS = ["Positive", "négatif", "NEGATIVE", "trace  amounts"]
CODES = [(LOINC, "2339-0", "Glucose sérique"), (LOINC, "718-7", "Hémoglobine"),
         (SCT, "271649006", "Systolic blood pressure"), (None, "local-1", "Local test"),
         (SCT, "2339-0", "Same code, other system")]  # fmt: skip
COMPONENT_CODES = [(LOINC, "8480-6"), (LOINC, "8462-4"), (None, "8480-6")]
SD = "http://example.org/fhir/StructureDefinition"
PROFILES = [f"{SD}/a", f"{SD}/a/b", f"{SD}/b", "http://hl7.org/fhir/StructureDefinition/vitalsigns"]
MASS_UNITS = [
    (UCUM, "mg", "mg"),
    (UCUM, "g", "gram"),
    (UCUM, "kg", "kg"),
    (UNITS, "pill", "tablet"),
]
TIME_UNITS = [(UCUM, "min", "minutes"), (UCUM, "h", "h"), (UCUM, "d", "days")]
AMOUNTS = ["0.002", "0.5", "1", "2", "4.6", "5", "5.4", "10", "100", "500", "1000", "2000"]
PROBABILITIES = ["0.1", "0.2", "0.25", "0.5", "0.55", "0.75", "0.9", "1", "1.5", "100"]
IDENTIFIERS = [("urn:mrn", "100"), ("urn:mrn", "101"), ("urn:ssn", "100"), ("urn:ssn", "200")]


def date_text(rng: random.Random) -> str:
    """A date at year, month, day or second precision, over a small domain so values collide."""
    year = rng.choice([2019, 2020, 2021, 2022])
    month, day = rng.choice([1, 6, 12]), rng.choice([1, 15, 31 if rng.random() < 0.2 else 28])
    if month == 6 and day == 31:
        day = 30
    time = rng.choice(["00:00:00", "12:30:00", "23:59:59"])
    return rng.choice([f"{year}", f"{year}-{month:02}", f"{year}-{month:02}-{day:02}",
                       f"{year}-{month:02}-{day:02}T{time}Z"])  # fmt: skip


def iso(us: int) -> str:
    if us <= MIN_INSTANT:
        return "-inf"
    if us >= MAX_INSTANT:
        return "+inf"
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


# --- the corpus ---------------------------------------------------------------------------------


@dataclass
class World:
    """The resources written so far: ids per type, for references and queries."""

    rng: random.Random
    ids: dict[str, list[str]] = field(default_factory=dict)

    def pick(self, resource_type: str) -> str:
        return self.rng.choice(self.ids[resource_type])


def some(rng: random.Random, pool: list[T], most: int = 2) -> list[T]:
    return rng.sample(pool, rng.randint(1, min(most, len(pool))))


def token_entries(rng: random.Random, code: str) -> Entries:
    if code == "gender":
        gender = rng.choice(["male", "female", "other", "unknown"])
        return (TokenEntry(GENDER, gender, gender.capitalize()),)
    if code == "active":
        return (TokenEntry(None, rng.choice(["true", "false"])),)
    if code == "status":
        return (TokenEntry(None, rng.choice(["planned", "in-progress", "finished"])),)
    if code == "class":
        return (
            TokenEntry(
                ACT_CODE, rng.choice(["AMB", "IMP", "EMER"]), normalize_string("Ambulatory")
            ),
        )
    if code == "identifier":
        typed = [(V2_0203, rng.choice(["MR", "SS"])) if rng.random() < 0.7 else (None, None)]
        return tuple(TokenEntry(s, v, None, *typed[0]) for s, v in some(rng, IDENTIFIERS))
    entries: list[TokenEntry] = [
        TokenEntry(s, c, normalize_string(d)) for s, c, d in some(rng, CODES)
    ]
    if rng.random() < 0.4:
        entries.append(TokenEntry(None, None, normalize_string(rng.choice(CODES)[2])))
    return tuple(entries)


def quantity_entry(rng: random.Random, units: list[tuple[str, str, str]]) -> QuantityEntry:
    system, code, unit = rng.choice(units)
    values = sorted(float(rng.choice(AMOUNTS)) for _ in range(2))
    low, high = rng.choice([(values[0], values[0]), (values[0], values[0]), (values[0], values[1]),
                            (-float("inf"), values[1]), (values[0], float("inf"))])  # fmt: skip
    c_low, c_high = ucum.canonical(low, code), ucum.canonical(high, code)
    if system != UCUM or c_low is None or c_high is None:
        return QuantityEntry(low, high, system, code, unit)
    return QuantityEntry(low, high, system, code, unit, c_low[0], c_high[0], c_low[1])


def date_entry(rng: random.Random) -> DateEntry:
    first = date_bounds(date_text(rng))
    if rng.random() < 0.5:
        return DateEntry(*first)
    second = date_bounds(date_text(rng))
    low, high = min(first[0], second[0]), max(first[1], second[1])
    return DateEntry(*rng.choice([(low, high), (MIN_INSTANT, high), (low, MAX_INSTANT)]))


def reference_entries(world: World, target: str) -> Entries:
    rng = world.rng
    roll = rng.random()
    if target != "Patient" or roll < 0.7:
        return (ReferenceEntry(target, world.pick(target)),)
    if roll < 0.78:
        return (ReferenceEntry("Group", rng.choice(["p1", "g1"])),)
    if roll < 0.9:
        x = rng.choice(["x1", "x2"])
        return (ReferenceEntry("Patient", x, url=f"http://other.example/fhir/Patient/{x}"),)
    system, value = rng.choice(IDENTIFIERS)
    return (ReferenceEntry(None, None, identifier_system=system, identifier_value=value),)


def make_index(world: World, resource_type: str, id: str) -> ResourceIndex:
    """A random index for one resource; each parameter is absent one time in five."""
    rng = world.rng
    entries: dict[str, Entries] = {}
    for code, param in definitions()[resource_type].items():
        if code in ("_id", "_lastUpdated", "patient") or rng.random() < 0.2:
            continue
        entries[code] = value_entries(world, resource_type, param)
    subjects = entries.get("subject", ())
    patients = tuple(
        e for e in subjects if isinstance(e, ReferenceEntry) and e.target_type == "Patient"
    )
    if patients and "patient" in definitions()[resource_type]:
        entries["patient"] = patients
    # R4 CompartmentDefinitions: a Patient is in its own and its links'; the others are in the
    # compartments of the local Patient/Encounter they refer to (an Encounter in its own).
    compartments = {(resource_type, id)} if resource_type in ("Patient", "Encounter") else set()
    for code in ("subject", "link", "encounter"):
        for e in entries.get(code, ()):
            if not isinstance(e, ReferenceEntry) or e.url is not None or e.target_id is None:
                continue
            if e.target_type in ("Patient", "Encounter"):
                compartments.add((e.target_type, e.target_id))
    return ResourceIndex(entries, tuple(sorted(compartments)))


def value_entries(world: World, resource_type: str, param: SearchParamDef) -> Entries:
    rng = world.rng
    match param.type:
        case "token":
            return token_entries(rng, param.code)
        case "string":
            pool = NAMES if param.code == "name" else VALUE_STRINGS
            return tuple(StringEntry(normalize_string(s), s) for s in some(rng, pool))
        case "date":
            return (date_entry(rng),)
        case "number":
            return tuple(NumberEntry(float(x)) for x in some(rng, PROBABILITIES, 3))
        case "quantity":
            units = TIME_UNITS if param.code == "length" else MASS_UNITS
            return tuple(quantity_entry(rng, units) for _ in range(rng.randint(1, 2)))
        case "reference":
            return reference_entries(world, param.targets[0])
        case "uri":
            return tuple(UriEntry(u) for u in some(rng, PROFILES))
        case "composite":
            return tuple(
                CompositeEntry(
                    (
                        (TokenEntry(*rng.choice(COMPONENT_CODES)),),
                        (quantity_entry(rng, MASS_UNITS),),
                    )
                )
                for _ in range(rng.randint(1, 3))
            )
    raise AssertionError(param.type)


@dataclass
class Corpus:
    """What was written: the oracle and, per resource, its creation order."""

    world: World
    memory: MemoryIndex = field(default_factory=MemoryIndex)


async def write_corpus(store: ResourceStore, rng: random.Random) -> Corpus:
    """Create ~200 resources in a shuffled order, then update one in ten and delete one in
    twenty, through the port and into the oracle alike."""
    world = World(rng, {t: [f"{t[0].lower()}{i}" for i in range(COUNTS[t])] for t in TYPES})
    corpus = Corpus(world)
    keys = [(t, id) for t in TYPES for id in world.ids[t]]
    rng.shuffle(keys)
    stamps = iter(rng.sample(range(0, 4 * 365 * 86_400), 2 * len(keys)))
    versions: dict[Key, int] = {}
    orders = {key: order for order, key in enumerate(keys)}
    for key in keys:
        await put(store, corpus, key, 1, T0 + timedelta(seconds=next(stamps)), orders[key])
        versions[key] = 1
    for key in rng.sample(keys, len(keys) // 10):
        versions[key] += 1
        await put(
            store, corpus, key, versions[key], T0 + timedelta(seconds=next(stamps)), orders[key]
        )
    for key in rng.sample(keys, len(keys) // 20):
        versions[key] += 1
        deleted = ResourceVersion(*key, versions[key], T0 + timedelta(days=1500), "DELETE", None)
        async with store.unit_of_work() as uow:
            uow.put(deleted, expected_version=versions[key] - 1, interaction="delete")
        corpus.memory.delete(*key)
    return corpus


async def put(
    store: ResourceStore, corpus: Corpus, key: Key, n: int, at: datetime, order: int
) -> None:
    resource_type, id = key
    index = make_index(corpus.world, resource_type, id)
    instant = to_microseconds(at)
    index = ResourceIndex(
        {**index.entries, "_lastUpdated": (DateEntry(instant, instant),)}, index.compartments
    )
    body = orjson.dumps({"resourceType": resource_type, "id": id, "meta": {"versionId": str(n)}})
    version = ResourceVersion(resource_type, id, n, at, "POST" if n == 1 else "PUT", body)
    async with store.unit_of_work() as uow:
        uow.put(version, expected_version=ABSENT if n == 1 else n - 1,
                interaction="create" if n == 1 else "update", index=index)  # fmt: skip
    corpus.memory.put(resource_type, id, index, at, order)


# --- random criteria ----------------------------------------------------------------------------


@dataclass
class Queries:
    """Random criteria over the world's value domains (so most of them hit something)."""

    world: World

    @property
    def rng(self) -> random.Random:
        return self.world.rng

    def criteria(self) -> tuple[Criteria, tuple[SortKey, ...]]:
        rng = self.rng
        if rng.random() < 0.06:  # every type: the common parameters and compartments only
            tests = tuple(self.common_test() for _ in range(rng.randint(1, 2)))
            sort = (
                SortKey(
                    definitions()["Patient"][rng.choice(["_id", "_lastUpdated"])],
                    rng.random() < 0.5,
                ),
            )
            return Criteria((), tuple(tests)), sort if rng.random() < 0.5 else ()
        resource_type = rng.choice(TYPES)
        tests = tuple(
            self.test(resource_type, 0) for _ in range(rng.choice([0, 1, 1, 1, 1, 1, 2, 2, 3]))
        )
        return Criteria((resource_type,), tests), self.sort(resource_type)

    def sort(self, resource_type: str) -> tuple[SortKey, ...]:
        if self.rng.random() < 0.6:
            return ()
        params = definitions()[resource_type]
        codes = self.rng.sample(
            [*SORTABLE[resource_type], "_id", "_lastUpdated", "_profile"], self.rng.randint(1, 2)
        )
        return tuple(SortKey(params[c], self.rng.random() < 0.5) for c in codes)

    def common_test(self) -> Test:
        rng, params = self.rng, definitions()["Patient"]
        match rng.choice(["id", "updated", "profile", "compartment"]):
            case "id":
                all_ids = [id for t in TYPES for id in self.world.ids[t]]
                return ParamTest(
                    params["_id"], None, tuple(TokenValue(None, i) for i in some(rng, all_ids, 8))
                )
            case "compartment":
                return self.compartment("Patient")
            case code:
                param = params["_lastUpdated" if code == "updated" else "_profile"]
                return ParamTest(param, *self.values(param, rng.choice(TYPES)))

    def test(self, resource_type: str, depth: int) -> Test:
        rng = self.rng
        roll = rng.random()
        if depth < 2 and roll < 0.12 and CHAINS[resource_type]:
            code, target = rng.choice(CHAINS[resource_type])
            param = definitions()[resource_type][code]
            return ChainTest(param, (target,), self.test(target, depth + 1))
        if depth < 2 and roll < 0.22 and HAS[resource_type]:
            source, code = rng.choice(HAS[resource_type])
            return HasTest(source, definitions()[source][code], self.test(source, depth + 1))
        if depth == 0 and roll < 0.28:
            return self.compartment(resource_type)
        params = list(definitions()[resource_type].values())  # each type equally likely
        kind = rng.choice(sorted({p.type for p in params}))
        param = rng.choice([p for p in params if p.type == kind])
        if roll < 0.36:
            return ParamTest(param, "missing", (), missing=rng.random() < 0.5)
        return ParamTest(param, *self.values(param, resource_type))

    def compartment(self, resource_type: str) -> CompartmentTest:
        kind = (
            "Encounter"
            if resource_type in ("Observation", "RiskAssessment") and self.rng.random() < 0.3
            else "Patient"
        )
        return CompartmentTest(kind, self.world.pick(kind))

    def values(
        self, param: SearchParamDef, resource_type: str
    ) -> tuple[str | None, tuple[SearchValue, ...]]:
        """A modifier and one to three values (an OR list) for the parameter."""
        rng = self.rng
        n = rng.choice([1, 1, 1, 2, 3])
        match param.type:
            case "token" if param.code == "_id":
                ids = self.world.ids[resource_type if rng.random() < 0.8 else rng.choice(TYPES)]
                return rng.choice([None, None, "not"]), tuple(
                    TokenValue(None, i) for i in some(rng, ids, n)
                )
            case "token":
                modifier = rng.choice(
                    [None, None, None, "not"]
                    + (["text"] * 2 if param.code in ("code", "class", "gender") else [])
                    + (["of-type"] * 2 if param.code == "identifier" else [])
                )
                return modifier, tuple(self.token(param.code, modifier) for _ in range(n))
            case "string":
                modifier = rng.choice([None, None, "exact", "contains"])
                pool = NAMES if param.code == "name" else VALUE_STRINGS
                return modifier, tuple(self.string(rng.choice(pool), modifier) for _ in range(n))
            case "date":
                return None, tuple(
                    DateValue(rng.choice(PREFIXES), *date_bounds(date_text(rng))) for _ in range(n)
                )
            case "number":
                return None, tuple(
                    NumberValue(rng.choice(PREFIXES), *number_bounds(rng.choice(PROBABILITIES)))
                    for _ in range(n)
                )
            case "quantity":
                units = TIME_UNITS if param.code == "length" else MASS_UNITS
                return None, tuple(self.quantity(units) for _ in range(n))
            case "reference":
                return self.reference(param, n)
            case "uri":
                modifier = rng.choice([None, "above", "below"])
                pool = [
                    *PROFILES,
                    "http://example.org/fhir",
                    "http://example.org/fhir/StructureDefinition/a/b/c",
                ]
                return modifier, tuple(UriValue(u) for u in some(rng, pool, n))
            case "composite":
                parts = [
                    CompositeValue(
                        (TokenValue(*rng.choice(COMPONENT_CODES)), self.quantity(MASS_UNITS))
                    )
                    for _ in range(n)
                ]
                return None, tuple(parts)
        raise AssertionError(param.type)

    def token(self, code: str, modifier: str | None) -> TokenValue:
        rng = self.rng
        if modifier == "text":
            texts = {
                "code": [c[2] for c in CODES],
                "class": ["Ambulatory", "amb"],
                "gender": ["Male", "fem", "Other"],
            }
            text = rng.choice(texts.get(code, ["ambul", "gluc", "x"]))
            return TokenValue(None, rng.choice([text, text[: rng.randint(1, len(text))].upper()]))
        if modifier == "of-type":
            system, value = rng.choice(IDENTIFIERS)
            return TokenValue(rng.choice([V2_0203, None]), rng.choice(["MR", "SS"]), value)
        entry = rng.choice(
            [e for e in token_entries(rng, code) if isinstance(e, TokenEntry) and e.code]
            or [TokenEntry(None, "none")]
        )
        assert isinstance(entry, TokenEntry)
        form = rng.choice(["code", "system|code", "|code", "system|"])
        if form == "code":
            return TokenValue(None, entry.code)
        if form == "|code":
            return TokenValue("", entry.code)
        if entry.system is None and rng.random() < 0.7:
            return TokenValue(rng.choice([None, ""]), entry.code)
        system = entry.system or rng.choice([LOINC, SCT, GENDER])
        return TokenValue(system, entry.code if form == "system|code" else None)

    def string(self, text: str, modifier: str | None) -> StringValue:
        rng = self.rng
        variant = rng.choice([text, text.upper(), text.lower(), normalize_string(text)])
        if modifier == "exact":
            return StringValue(rng.choice([text, text, variant]))
        start = rng.randint(0, len(variant) - 1) if modifier == "contains" else 0
        return StringValue(variant[start : rng.randint(start + 1, len(variant))])

    def quantity(self, units: list[tuple[str, str, str]]) -> QuantityValue:
        rng = self.rng
        value, low, high = number_bounds(rng.choice(AMOUNTS))
        system, code, unit = rng.choice(units)
        system_sent, code_sent = rng.choice(
            [(None, None), (None, code), (system, code), (None, unit), (None, code)]
        )
        return QuantityValue(rng.choice(PREFIXES), value, low, high, system_sent, code_sent)

    def reference(
        self, param: SearchParamDef, n: int
    ) -> tuple[str | None, tuple[SearchValue, ...]]:
        rng = self.rng
        target = param.targets[0]
        form = rng.choice(["Type/id", "Type/id", "id", ":Type", "identifier", "url"])
        if form == "identifier":
            pairs = some(rng, IDENTIFIERS, n)
            by_identifier = [
                ReferenceValue(None, None, None, None, rng.choice([s, None]), v) for s, v in pairs
            ]
            return "identifier", tuple(by_identifier)
        if form == "url":
            return None, tuple(
                ReferenceValue(None, None, f"http://other.example/fhir/Patient/x{i}")
                for i in some(rng, [1, 2, 3], n)
            )
        ids = [self.world.pick(target) for _ in range(n)] + rng.choice([[], ["p1"], ["x1"]])
        types = [rng.choice([*param.targets, target]) for _ in ids]
        if form == "id":
            return None, tuple(ReferenceValue(None, i) for i in ids)
        if form == ":Type":
            return target, tuple(ReferenceValue(target, i) for i in ids)
        return None, tuple(ReferenceValue(t, i) for t, i in zip(types, ids, strict=True))


# --- the query in URL form, for failure messages ------------------------------------------------


def render_value(value: SearchValue, modifier: str | None) -> str:
    match value:
        case TokenValue(system, code, identifier) if modifier == "of-type":
            return f"{system or ''}|{code}|{identifier}"
        case TokenValue(None, code):
            return f"{code}"
        case TokenValue(system, code):
            return f"{system}|{code or ''}"
        case StringValue(text):
            return text
        case DateValue(prefix, low, high):
            return f"{prefix}[{iso(low)}..{iso(high)}]"
        case NumberValue(prefix, number):
            return f"{prefix}{number:g}"
        case QuantityValue(prefix, number, _, _, system, code):
            return f"{prefix}{number:g}|{system or ''}|{code or ''}"
        case ReferenceValue(_, _, _, _, system, identifier) if modifier == "identifier":
            return f"{system or ''}|{identifier}"
        case ReferenceValue(target_type, target_id, None):
            return f"{target_type}/{target_id}" if target_type else f"{target_id}"
        case ReferenceValue(_, _, url, version):
            return f"{url}|{version}" if version else f"{url}"
        case UriValue(uri):
            return uri
        case CompositeValue(parts):
            return "$".join(render_value(part, None) for part in parts)
    raise AssertionError(value)


def render_test(test: Test) -> str:
    match test:
        case ParamTest(param, "missing", _, missing):
            return f"{param.code}:missing={str(missing).lower()}"
        case ParamTest(param, modifier, values):
            suffix = f":{modifier}" if modifier else ""
            return f"{param.code}{suffix}=" + ",".join(render_value(v, modifier) for v in values)
        case ChainTest(param, targets, inner):
            return f"{param.code}:{'|'.join(targets)}.{render_test(inner)}"
        case HasTest(source, param, inner):
            return f"_has:{source}:{param.code}:{render_test(inner)}"
        case CompartmentTest(kind, id):
            return f"[compartment {kind}/{id}]"
    raise AssertionError(test)


def render(criteria: Criteria, sort: tuple[SortKey, ...] = ()) -> str:
    parts = [render_test(t) for t in criteria.tests]
    if sort:
        parts.append(
            "_sort=" + ",".join(("-" if k.descending else "") + k.param.code for k in sort)
        )
    return f"{'|'.join(criteria.types) or '*'}?{'&'.join(parts)}"


def short(keys: set[Key] | list[Key], most: int = 8) -> str:
    listed = sorted(f"{t}/{i}" for t, i in keys)
    return ", ".join(listed[:most]) + (f" ... ({len(listed)} in all)" if len(listed) > most else "")


# --- comparing a backend with the oracle --------------------------------------------------------


async def fetch_all(
    store: ResourceStore, criteria: Criteria, sort: tuple[SortKey, ...]
) -> tuple[list[Key], list[str]]:
    """Every page of the search (following next cursors), and the paging problems seen: a page
    over ``count``, a loop, or a previous cursor that does not give back the page before."""
    pages: list[list[Key]] = []
    cursors: list[str | None] = []
    problems: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.search(SearchQuery(criteria, sort, count=PAGE, cursor=cursor))
        keys = [(v.resource_type, v.id) for v in page.entries]
        if len(keys) > PAGE:
            problems.append(f"page {len(pages) + 1} has {len(keys)} entries (> {PAGE})")
        pages.append(keys)
        cursors.append(page.previous_cursor)
        if page.next_cursor is None or not keys:
            break
        if len(pages) > 2 * sum(COUNTS.values()) // PAGE + 2:
            problems.append("next cursors never end")
            break
        cursor = page.next_cursor
    if len(pages) >= 2 and cursors[-1] is not None:
        back = await store.search(SearchQuery(criteria, sort, count=PAGE, cursor=cursors[-1]))
        if [(v.resource_type, v.id) for v in back.entries] != pages[-2]:
            problems.append("the last page's previous cursor does not give back the page before")
    elif len(pages) >= 2:
        problems.append("a page after the first has no previous cursor")
    return [key for keys in pages for key in keys], problems


def groups(
    memory: MemoryIndex, keys: list[Key], sort: tuple[SortKey, ...]
) -> list[tuple[tuple[SortValue | None, ...], set[Key]]]:
    """Consecutive resources with the same sort values, as (values, resources)."""
    out: list[tuple[tuple[SortValue | None, ...], set[Key]]] = []
    for key in keys:
        values = memory.sort_values(key, sort)
        if out and out[-1][0] == values:
            out[-1][1].add(key)
        else:
            out.append((values, {key}))
    return out


async def disagreement(
    store: ResourceStore, memory: MemoryIndex, criteria: Criteria, sort: tuple[SortKey, ...]
) -> str | None:
    """None when the backend agrees with the oracle, else what differs (a few lines)."""
    query = render(criteria, sort)
    try:
        found, problems = await fetch_all(store, criteria, sort)
        counted = await store.count(criteria)
    except Exception as error:  # a crash is a disagreement to report like the others
        return f"{query}\n    raised {type(error).__name__}: {str(error)[:200]}"
    expected_order = memory.search(criteria, sort)
    expected = set(expected_order)
    lines = list(problems)
    if len(found) != len(set(found)):
        lines.append(f"duplicates: {short([k for k, n in Counter(found).items() if n > 1])}")
    if set(found) != expected:
        lines.append(f"only backend ({len(set(found) - expected)}): {short(set(found) - expected)}")
        lines.append(f"only oracle ({len(expected - set(found))}): {short(expected - set(found))}")
    if counted != len(expected):
        lines.append(f"count {counted}, oracle {len(expected)}")
    if sort and not lines:
        mine, theirs = groups(memory, found, sort), groups(memory, expected_order, sort)
        if mine != theirs:
            at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b)
            lines.append(
                f"order differs at sort group {at}: backend {mine[at][0]} {short(mine[at][1], 4)}"
                f" / oracle {theirs[at][0]} {short(theirs[at][1], 4)}"
            )
    return f"{query}\n    " + "\n    ".join(lines) if lines else None


def summary(failures: list[str], total: int) -> str:
    """The first failures in full, then how often each kind of crash happened."""
    crashes = Counter(f.split("raised ", 1)[1] for f in failures if "\n    raised " in f)
    head = "\n".join(failures[:15])
    kinds = "\n".join(f"  {n} x {what}" for what, n in crashes.most_common(5))
    return f"{len(failures)} of {total} queries disagree with the oracle:\n{head}\n" + (
        f"crashes by kind:\n{kinds}" if crashes else ""
    )


@pytest.mark.parametrize("seed", seeds())
async def test_backend_search_agrees_with_the_oracle(store: ResourceStore, seed: int) -> None:
    rng = random.Random(seed)
    corpus = await write_corpus(store, rng)
    queries = Queries(corpus.world)
    failures: list[str] = []
    hits = 0
    for _ in range(QUERIES):
        criteria, sort = queries.criteria()
        hits += bool(corpus.memory.matches(criteria))
        failure = await disagreement(store, corpus.memory, criteria, sort)
        if failure:
            failures.append(failure)
    assert hits > QUERIES // 3, (
        f"only {hits} of {QUERIES} queries match anything: widen the domains"
    )
    assert not failures, summary(failures, QUERIES)
