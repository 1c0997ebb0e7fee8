"""The random corpus of the search congruence test (tests/contract/test_search_congruence.py).

The search parameters (inline definitions, names from R4), small value domains so that queries
hit, and :func:`write_corpus`: ~200 seeded random resources written through the storage port and
into the :class:`~fhir_server.search.matcher.MemoryIndex` oracle alike.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TypeVar

import orjson

from fhir_server.search import ucum
from fhir_server.search.matcher import MemoryIndex, to_microseconds
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    Component,
    CompositeEntry,
    DateEntry,
    IndexEntry,
    NumberEntry,
    ParamType,
    QuantityEntry,
    ReferenceEntry,
    ResourceIndex,
    SearchParamDef,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.search.values import date_bounds, normalize_string
from fhir_server.storage.port import ABSENT, ResourceStore, ResourceVersion

T0 = datetime(2019, 1, 1, tzinfo=UTC)  # resources are updated in 2019-2022

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"
SCT = "http://snomed.info/sct"
UNITS = "http://example.org/units"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
GENDER = "http://hl7.org/fhir/administrative-gender"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

Entries = tuple[IndexEntry | CompositeEntry, ...]
T = TypeVar("T")
Key = tuple[str, str]


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
