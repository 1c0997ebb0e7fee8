"""The committed search tables (fhir_server/search/data) are what the generator builds.

``scripts/gen_search_tables.py`` reads the official package ``hl7.fhir.r4.examples@4.0.1``
(``make r4-examples`` fetches it, ``make search-tables`` regenerates the tables).
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.r4_examples import examples_dir

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "fhir_server" / "search" / "data"
TABLES = ("compartments.json", "search_parameters.json")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_search_tables", ROOT / "scripts/gen_search_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _generate(package: Path) -> dict[str, Any]:
    """What ``make search-tables`` would write, by table name (built once per test run)."""
    tables: dict[str, Any] = _generator().build_tables(package)
    return tables


@pytest.mark.examples
@pytest.mark.parametrize("name", TABLES)
def test_committed_tables_match_the_package(name: str) -> None:
    generated = _generate(examples_dir())  # fails (not errors, not skips) without the package
    committed = (DATA / name).read_text(encoding="utf-8")
    assert json.loads(committed) == generated[name], f"{name} is stale: run `make search-tables`"
    assert committed == _generator().render(generated[name]), f"{name}: not in generated form"


@pytest.mark.examples
def test_the_registry_is_the_official_bundle_and_nothing_else() -> None:
    """The package's other SearchParameter-*.json files are examples and extension parameters
    (one redefines Condition.subject): they must not leak into the base registry."""
    urls = {p["url"] for p in _generate(examples_dir())["search_parameters.json"]["parameters"]}
    assert len(urls) == 1375
    assert "http://hl7.org/fhir/SearchParameter/example-reference" not in urls
    assert "http://hl7.org/fhir/SearchParameter/Resource-id" in urls


def test_only_the_tables_and_their_source_note_are_shipped() -> None:
    assert sorted(p.name for p in DATA.iterdir()) == ["SOURCE", *TABLES]
    note = (DATA / "SOURCE").read_text(encoding="utf-8")
    assert "hl7.fhir.r4.examples@4.0.1" in note
    assert "HL7 International" in note
    assert "CC0-1.0" in note


def test_tables_are_compact() -> None:
    """Minified, and the Reference(Any) target lists written once (``"*"``)."""
    text = (DATA / "search_parameters.json").read_text(encoding="utf-8")
    assert "\n" not in text.rstrip("\n")
    assert len(text) < 450_000
    table = json.loads(text)
    assert sum(1 for p in table["parameters"] if p.get("target") == "*") > 50
    assert "Patient" in table["anyTarget"]
    assert "Parameters" not in table["anyTarget"]


def test_descriptions_keep_one_sentence_per_type() -> None:
    gen = _generator()
    text = (
        "Multiple Resources: \r\n\r\n* [Condition](condition.html): Code for the condition\r\n"
        "* [Observation](observation.html): The code. More detail here\r\n"
    )
    assert gen.description(text) == {
        "Condition": "Code for the condition",
        "Observation": "The code.",
    }
    assert gen.description("First one.  Second one.") == "First one."
    assert gen.description("No full stop\nat all") == "No full stop at all"
