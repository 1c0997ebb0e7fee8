"""The random criteria of the search congruence test (tests/contract/test_search_congruence.py).

:class:`Queries` draws criteria over the corpus's value domains (every test kind, modifier and
prefix, OR lists, ANDs, chains, ``_has``, compartments, ``:missing``), so most of them hit.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fhir_server.search.model import (
    ChainTest,
    CompartmentTest,
    CompositeValue,
    Criteria,
    DateValue,
    HasTest,
    NumberValue,
    ParamTest,
    Prefix,
    QuantityValue,
    ReferenceValue,
    SearchParamDef,
    SearchValue,
    SortKey,
    StringValue,
    Test,
    TokenEntry,
    TokenValue,
    UriValue,
)
from fhir_server.search.values import date_bounds, normalize_string, number_bounds
from tests.contract.search_corpus import (
    AMOUNTS,
    CHAINS,
    CODES,
    COMPONENT_CODES,
    GENDER,
    HAS,
    IDENTIFIERS,
    LOINC,
    MASS_UNITS,
    NAMES,
    PROBABILITIES,
    PROFILES,
    SCT,
    SORTABLE,
    TIME_UNITS,
    TYPES,
    V2_0203,
    VALUE_STRINGS,
    World,
    date_text,
    definitions,
    some,
    token_entries,
)

PREFIXES: tuple[Prefix, ...] = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


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
