"""The indexer's fast paths give what the general evaluation gives (fhir_server.search.extract,
extract_plans, fhirpath_needs, fhirpath_chains, fhirpath_steps).

Three shortcuts, each checked against the slow way: parameters are skipped when the resource
lacks every top-level key their expression needs (:func:`needs`); plain key paths are walked
directly (:func:`chains`); the common ``where(...)`` criteria are tested on the JSON. The
examples tests run all three over the whole official package."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fhir_server.search.extract import Indexer, compile_param
from fhir_server.search.fhirpath import compile_path
from fhir_server.search.fhirpath_chains import chains
from fhir_server.search.fhirpath_needs import Needs, needs
from fhir_server.search.fhirpath_parse import parse
from fhir_server.search.fhirpath_types import resource_ctx
from fhir_server.search.model import (
    CompositeEntry,
    IndexEntry,
    ReferenceEntry,
    SearchParamDef,
    StringEntry,
    TokenEntry,
)
from fhir_server.search.normalize import normalizer
from fhir_server.search.registry import SearchRegistry
from fhir_server.search.values import normalize_string
from tests.r4_examples import iter_parsed_examples


def _needs(expression: str, resource_type: str) -> Needs | None:
    return needs(parse(expression), [resource_ctx(resource_type)])


def _chain_keys(expression: str, resource_type: str) -> list[tuple[str, ...]] | None:
    found = chains(parse(expression), resource_ctx(resource_type))
    return None if found is None else [keys for keys, _ in found]


# --- what an expression needs ----------------------------------------------------------------


def test_needs_are_the_top_level_keys_a_path_starts_from() -> None:
    assert _needs("Patient.name.given", "Patient") == ((frozenset({"name"}),),)
    assert _needs("Patient.name | Patient.telecom", "Patient") == (
        (frozenset({"name", "telecom"}),),
    )
    assert _needs("Observation.subject.where(resolve() is Patient)", "Observation") == (
        (frozenset({"subject"}),),
    )
    assert _needs("Observation.extension('http://x')", "Observation") == (
        (frozenset({"extension"}),),
    )


def test_needs_of_a_choice_read_as_one_type_are_its_keys_of_that_type() -> None:
    quantity = _needs("Observation.value as Quantity", "Observation")
    assert quantity == ((frozenset({"valueQuantity"}),),)
    period = _needs("Observation.effective.ofType(Period)", "Observation")
    assert period == ((frozenset({"effectivePeriod"}),),)
    every = _needs("Observation.value", "Observation")
    assert isinstance(every, tuple)
    assert {"valueQuantity", "valueString", "valueCodeableConcept"} <= every[0][0]


@pytest.mark.parametrize(
    "expression",
    [
        "Patient.deceased.exists() and Patient.deceased != false",  # selects false when absent
        "Patient.name.empty()",
        "%resource.name",
        "Patient",  # the resource itself
    ],
)
def test_expressions_that_may_select_without_any_key_need_nothing(expression: str) -> None:
    found = _needs(expression, "Patient")
    assert found is None or () in found


# --- plain key paths -------------------------------------------------------------------------


def test_chains_follow_keys_and_split_a_choice_on_the_resource() -> None:
    assert _chain_keys("Patient.address.city", "Patient") == [("address", "city")]
    effective = _chain_keys("Observation.effective", "Observation")
    assert effective is not None and ("effectiveDateTime",) in effective
    assert ("effectivePeriod",) in effective
    assert _chain_keys("(Observation.value as Quantity) | Observation.code", "Observation") == [
        ("valueQuantity",),
        ("code",),
    ]


@pytest.mark.parametrize(
    "expression",
    [
        "Observation.component.value",  # a choice on each component: keys interleave per node
        "Observation.subject.where(resolve() is Patient)",
        "Observation.code.coding.first()",
        "Observation.component[0].code",
    ],
)
def test_other_expressions_are_not_chains(expression: str) -> None:
    assert _chain_keys(expression, "Observation") is None


def test_a_chain_yields_what_the_compiled_path_yields_in_the_same_order() -> None:
    observation = {
        "resourceType": "Observation",
        "code": {"text": "c"},
        "component": [
            {"code": {"text": "a"}, "valueString": "x"},
            {"code": {"text": "b"}, "valueQuantity": {"value": 1}},
        ],
    }
    expression = "Observation.component.code | Observation.code"
    selected = [value for value, _ in compile_path(expression, "Observation")(observation)]
    assert selected == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    definition = SearchParamDef("p", "Observation", "token", expression, "http://x/p")
    indexer = Indexer({"Observation": {"p": definition}}, {})
    assert indexer.entries(observation, "p") == (
        TokenEntry(None, None, "a"),
        TokenEntry(None, None, "b"),
        TokenEntry(None, None, "c"),
    )


def test_nulls_in_arrays_are_skipped() -> None:
    """FHIR JSON aligns a primitive array with its ``_name`` extensions using nulls."""
    resource = {
        "resourceType": "Patient",
        "name": [None, {"given": ["a", None, "b"]}],
        "_name": [{"id": "x"}, None],
    }
    given = SearchParamDef("given", "Patient", "string", "Patient.name.given", "http://x/g")
    name = SearchParamDef("name", "Patient", "string", "Patient.name", "http://x/n")
    indexer = Indexer({"Patient": {"given": given, "name": name}}, {})
    found = indexer.index(resource).entries
    assert [e.exact for e in found["given"] if isinstance(e, StringEntry)] == ["a", "b"]
    assert found["name"] == found["given"]


# --- where(...) --------------------------------------------------------------------------------


def _telecom(*points: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Patient", "telecom": list(points)}


@pytest.mark.parametrize(
    ("point", "equal", "different"),
    [
        ({"system": "phone", "value": "1"}, True, False),
        ({"system": "email", "value": "1"}, False, True),
        ({"value": "1"}, False, False),  # no system: the comparison is empty either way
        ({"system": True, "value": "1"}, False, True),  # a boolean never equals a string
    ],
)
def test_where_equals_a_literal(point: dict[str, Any], equal: bool, different: bool) -> None:
    resource = _telecom(point)
    assert bool(compile_path("Patient.telecom.where(system='phone')", "Patient")(resource)) is (
        equal
    )
    assert bool(compile_path("Patient.telecom.where(system!='phone')", "Patient")(resource)) is (
        different
    )


def test_where_equals_compares_a_single_value_only() -> None:
    """Several values are never equal to one literal (so ``!=`` keeps the item)."""
    resource = {"resourceType": "Patient", "name": [{"given": ["a", "b"]}, {"given": ["a"]}]}
    equal = compile_path("Patient.name.where(given='a')", "Patient")(resource)
    assert [value for value, _ in equal] == [{"given": ["a"]}]
    different = compile_path("Patient.name.where(given!='a')", "Patient")(resource)
    assert [value for value, _ in different] == [{"given": ["a", "b"]}]


def test_where_resolve_is_a_type() -> None:
    resource = {
        "resourceType": "Observation",
        "subject": {"reference": "Patient/1"},
        "performer": [{"reference": "Practitioner/2"}, {"reference": "#c"}],
        "contained": [{"resourceType": "Patient", "id": "c"}],
    }
    subject = compile_path("Observation.subject.where(resolve() is Patient)", "Observation")
    assert [v for v, _ in subject(resource)] == [{"reference": "Patient/1"}]
    performer = compile_path("Observation.performer.where(resolve() is Patient)", "Observation")
    assert [v for v, _ in performer(resource)] == [{"reference": "#c"}]


# --- skipped parameters and memoised entries -------------------------------------------------


def test_a_composite_needs_every_component_on_the_resource(registry: SearchRegistry) -> None:
    indexer = Indexer(registry.params(), registry.compartments())
    code = {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}
    without_value = {"resourceType": "Observation", "status": "final", "code": code}
    assert "code-value-quantity" not in indexer.index(without_value).entries
    with_value = {**without_value, "valueQuantity": {"value": 120, "code": "mm[Hg]"}}
    found = indexer.index(with_value).entries["code-value-quantity"]
    assert len(found) == 1 and isinstance(found[0], CompositeEntry)


def test_the_index_follows_changes_to_the_same_objects(registry: SearchRegistry) -> None:
    """Nothing is remembered by object between two calls: only by value."""
    indexer = Indexer(registry.params(), registry.compartments())
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1"}]},
        "subject": {"reference": "Patient/a"},
    }
    first = indexer.index(resource)
    resource["code"]["coding"][0]["code"] = "2"
    resource["subject"]["reference"] = "Patient/b"
    resource["status"] = "amended"
    second = indexer.index(resource)
    assert first.entries["code"] == (TokenEntry("http://loinc.org", "1"),)
    assert second.entries["code"] == (TokenEntry("http://loinc.org", "2"),)
    assert second.entries["status"] == (TokenEntry(None, "amended"),)
    assert second.entries["subject"] == (ReferenceEntry("Patient", "b"),)
    assert second.compartments == (("Patient", "b"),)


def test_string_folding_of_ascii_and_unicode_whitespace() -> None:
    assert normalize_string("  Peter\t JAMES\n") == "peter james"
    assert normalize_string("a\u2003b\x1cc\u00a0d") == "a b c d"
    assert normalize_string("\uff24\uff55  Marche\u0301") == "du marche"


# --- the whole official package --------------------------------------------------------------


@pytest.fixture(scope="module")
def examples() -> list[dict[str, Any]]:
    return [resource for _, resource in iter_parsed_examples()]


def _general(definition: SearchParamDef) -> Callable[[dict[str, Any]], tuple[IndexEntry, ...]]:
    """The entries by the general evaluation: every node the compiled path selects,
    normalised by type (what the indexer did before its fast paths)."""
    normalize = normalizer(definition.type)
    assert normalize is not None and definition.expression is not None
    path = compile_path(definition.expression, definition.resource_type)
    targets = definition.targets if definition.type == "reference" else ()

    def general(resource: dict[str, Any]) -> tuple[IndexEntry, ...]:
        found: list[IndexEntry] = []
        for value, fhir_type in path(resource):
            for entry in normalize(value, fhir_type):
                inline = fhir_type == "Resource" and targets
                if not inline or (
                    isinstance(entry, ReferenceEntry) and entry.target_type in targets
                ):
                    found.append(entry)
        return tuple(dict.fromkeys(found))

    return general


@pytest.mark.examples
def test_direct_walks_give_the_general_entries_on_every_example(
    registry: SearchRegistry, examples: list[dict[str, Any]]
) -> None:
    by_type: dict[str, list[tuple[str, Any, Any]]] = {}
    for kind, codes in registry.params().items():
        for code, definition in codes.items():
            if definition.type == "composite":
                continue
            plan = compile_param(definition)
            if plan is not None and plan.path.chains is not None:
                by_type.setdefault(kind, []).append((code, plan, _general(definition)))
    compared = 0
    for resource in examples:
        for code, plan, general in by_type.get(resource["resourceType"], []):
            assert plan.entries(resource) == general(resource), code
            compared += 1
    assert compared > 100_000


@pytest.mark.examples
def test_skipping_parameters_never_drops_an_entry(
    registry: SearchRegistry, examples: list[dict[str, Any]]
) -> None:
    """index() skips parameters by the keys they need; entries() evaluates each one."""
    indexer = Indexer(registry.params(), registry.compartments())
    params = registry.params()
    for resource in examples:
        codes = params.get(resource["resourceType"], {})
        every = {code: indexer.entries(resource, code) for code in codes}
        expected = {code: found for code, found in every.items() if found}
        assert dict(indexer.index(resource).entries) == expected, resource.get("id")
