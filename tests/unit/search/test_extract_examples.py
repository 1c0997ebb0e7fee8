"""The Indexer on the official R4 package: every SearchParameter compiles and every example is
indexed (fhir_server.search.extract). The parameters and compartments are read from the package
here, independently of the registry, so that these tests check the indexer alone."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import cast

import pytest

from fhir_server.core import r4
from fhir_server.search.extract import Indexer, compile_param
from fhir_server.search.fhirpath import compile_path, split_union
from fhir_server.search.model import Component, ParamType, SearchParamDef, StringEntry
from tests.r4_examples import examples_dir, iter_parsed_examples


def _types_of(base: list[str]) -> list[str]:
    every = sorted(r4.resource_types())
    if "Resource" in base:
        return every
    if "DomainResource" in base:
        return [t for t in every if t not in ("Bundle", "Binary", "Parameters")]
    return [t for t in base if r4.is_resource_type(t)]


def _own_terms(expression: str, resource_type: str) -> str | None:
    """The union terms of a multi-base expression that apply to one type."""
    kept = []
    for term in split_union(expression):
        first = term.lstrip("(").split(".")[0].strip()
        if first in (resource_type, "Resource", "DomainResource") or first[:1].islower():
            kept.append(term)
    return " | ".join(kept) or None


def official_params(folder: Path) -> dict[str, dict[str, SearchParamDef]]:
    """Resource type -> code -> definition from the package's SearchParameter-*.json."""
    by_type: dict[str, dict[str, SearchParamDef]] = {}
    by_url: dict[tuple[str, str], SearchParamDef] = {}
    raws = [json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("SearchParameter-*.json"))]
    for raw in raws:
        for resource_type in _types_of(raw.get("base") or []):
            expression = raw.get("expression") and _own_terms(raw["expression"], resource_type)
            if raw.get("expression") and expression is None:
                continue  # e.g. "example-extension": base Patient, expression on DocumentReference
            kind = cast(ParamType, raw["type"])
            definition = SearchParamDef(raw["code"], resource_type, kind, expression, raw["url"])
            by_type.setdefault(resource_type, {})[raw["code"]] = definition
            by_url[(resource_type, raw["url"])] = definition
    for raw in raws:
        for resource_type in _types_of(raw.get("base") or []):
            current = by_type.get(resource_type, {}).get(raw["code"])
            if raw["type"] == "composite" and current is not None:
                parts = tuple(
                    Component(by_url[(resource_type, c["definition"])], c["expression"])
                    for c in raw["component"]
                )
                by_type[resource_type][raw["code"]] = SearchParamDef(
                    current.code,
                    resource_type,
                    "composite",
                    current.expression,
                    current.url,
                    components=parts,
                )
    return by_type


def official_compartments(folder: Path) -> Mapping[str, Mapping[str, tuple[str, ...]]]:
    found: dict[str, dict[str, tuple[str, ...]]] = {}
    for path in sorted(folder.glob("CompartmentDefinition-*.json")):
        definition = json.loads(path.read_text("utf-8"))
        if definition["url"].endswith("/example"):
            continue
        members = {r["code"]: tuple(r.get("param", ())) for r in definition["resource"]}
        found[definition["code"]] = members
    return found


@pytest.mark.examples
def test_every_official_search_parameter_compiles() -> None:
    params = official_params(examples_dir())
    compiled = 0
    for resource_type, codes in params.items():
        for definition in codes.values():
            if definition.expression is not None:
                compile_path(definition.expression, resource_type)  # the whole per-type union
            compile_param(definition)  # and its plan, composites' components included
            compiled += 1
    assert compiled > 2700


@pytest.mark.examples
def test_every_official_example_is_indexed() -> None:
    folder = examples_dir()
    indexer = Indexer(official_params(folder), official_compartments(folder))
    examples = dict(iter_parsed_examples())
    started = time.perf_counter()
    indexes = {name: indexer.index(resource) for name, resource in examples.items()}
    elapsed = time.perf_counter() - started
    print(f"indexed {len(indexes)} examples in {elapsed:.2f} s")
    assert len(indexes) > 2900
    example = indexes["Patient-example.json"]
    assert StringEntry("peter", "Peter") in example.entries["given"]
    assert example.compartments == (("Patient", "example"),)
    pressure = indexes["Observation-blood-pressure.json"]
    assert pressure.compartments == (("Patient", "example"), ("Practitioner", "example"))
    assert len(pressure.entries["component-code-value-quantity"]) == 2
    assert sum(len(i.entries) for i in indexes.values()) > 20_000
