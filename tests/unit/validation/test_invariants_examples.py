"""The invariants of the R4 core StructureDefinitions over every R4 example.

The walk here is deliberately simple (the validator has its own): from the example's resource
type SD it follows the snapshot paths into the JSON, enters the SD of each complex datatype (or
of its core profile, e.g. SimpleQuantity) and each nested resource (contained, Bundle entries,
Parameters), and evaluates every constraint met on every instance. Each (example, key) that
fails must be in :data:`KNOWN_EXAMPLE_ERRORS` with its reason, and nothing may be left
unevaluable (None) unless listed there too. Constraints of severity warning (dom-6, the
``xxx-0`` name rules) are counted and printed, not asserted: the examples break them freely.

Cost: the whole package is ~4.4 million evaluations (mostly native ele-1), about 5 minutes
here, nearly all in the spec's definition Bundles and the StructureDefinitions (about 20
fhirpathpy invariants per ElementDefinition). By default the definition Bundles are skipped
(their entries are the package's own files) and the conformance resources are sampled, one
in :data:`SAMPLE_EVERY`; ``FHIR_INVARIANTS_EXHAUSTIVE=1`` runs everything.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from fhir_server.validation.invariants import Constraint, Primitive, compile_invariant
from fhir_server.validation.invariants_fhirpath import evaluate, parse_expression, truth
from tests.r4_examples import examples_dir, iter_parsed_examples

pytestmark = pytest.mark.examples

CORE = "http://hl7.org/fhir/StructureDefinition/"

EXHAUSTIVE = os.environ.get("FHIR_INVARIANTS_EXHAUSTIVE") == "1"
#: The spec's own definitions repackaged as Bundles (10-35 MB each).
DEFINITION_BUNDLES = frozenset(
    f"Bundle-{name}.json"
    for name in [
        "resources",
        "dataelements",
        "valueset-expansions",
        "valuesets",
        "v3-valuesets",
        "v2-valuesets",
        "profiles-others",
        "extensions",
        "types",
        "searchParams",
    ]
)
#: Conformance resources, many and large: one in SAMPLE_EVERY runs by default.
SAMPLED_TYPES = frozenset(
    {"StructureDefinition", "ValueSet", "CodeSystem", "SearchParameter", "ConceptMap"}
)
SAMPLE_EVERY = 5

#: (example file, constraint key) -> why the failure is right (a genuine error in the example)
#: or why the expression is wrong.
_WHITESPACE_DIV = (
    "genuine: the narrative div holds only whitespace; txt-2 'The narrative SHALL have some "
    "non-whitespace content' (R4's htmlChecks() in the reference validator did not check it)"
)
_LOGICAL_NO_BASE = (
    "genuine: a logical model of the spec's patterns (abstract false, no baseDefinition); sdf-4 "
    "'If the structure is not abstract, then there SHALL be a baseDefinition'"
)
KNOWN_EXAMPLE_ERRORS: dict[tuple[str, str], str] = {
    ("ActivityDefinition-blood-tubes-supply.json", "txt-2"): _WHITESPACE_DIV,
    ("ActivityDefinition-heart-valve-replacement.json", "txt-2"): _WHITESPACE_DIV,
    ("EventDefinition-example.json", "txt-2"): _WHITESPACE_DIV,
    ("Questionnaire-zika-virus-exposure-assessment.json", "txt-2"): _WHITESPACE_DIV,
    ("StructureDefinition-Definition.json", "sdf-4"): _LOGICAL_NO_BASE,
    ("StructureDefinition-Event.json", "sdf-4"): _LOGICAL_NO_BASE,
    ("StructureDefinition-FiveWs.json", "sdf-4"): _LOGICAL_NO_BASE,
    ("StructureDefinition-Request.json", "sdf-4"): _LOGICAL_NO_BASE,
    ("Bundle-dataelements.json", "bdl-7"): (
        "genuine: a collection Bundle with 7 duplicate fullUrls (de-Quantity.value and the "
        "other de-Quantity.* data elements appear twice); bdl-7 'FullUrl must be unique in a "
        "bundle, or else entries with the same fullUrl must have different meta.versionId'"
    ),
}


class Definitions:
    """The snapshots of the core package, indexed for the walk."""

    def __init__(self, folder: Path) -> None:
        self.by_url: dict[str, dict[str, Any]] = {}
        for path in folder.glob("StructureDefinition-*.json"):
            sd = json.loads(path.read_text())
            self.by_url[sd["url"]] = sd
        self.elements: dict[str, dict[str, dict[str, Any]]] = {}
        self.children: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for url, sd in self.by_url.items():
            elements = [e for e in sd.get("snapshot", {}).get("element", []) if ":" not in e["id"]]
            self.elements[url] = {e["path"]: e for e in elements}
            kids: dict[str, list[dict[str, Any]]] = {}
            for e in elements:
                parent = e["path"].rpartition(".")[0]
                if parent:
                    kids.setdefault(parent, []).append(e)
            self.children[url] = kids


def _constraints(element: dict[str, Any], url: str) -> list[Constraint]:
    return [
        Constraint(c["key"], c["severity"], c["human"], c["expression"], c.get("source", url))
        for c in element.get("constraint", [])
        if c.get("expression")
    ]


class Walk:
    """Evaluates every constraint on every instance of one example; collects the failures."""

    def __init__(self, defs: Definitions) -> None:
        self.defs = defs
        self.failures: set[tuple[str, str]] = set()
        self.warnings: set[tuple[str, str]] = set()
        self.errors: set[tuple[str, str]] = set()
        self.evaluations = 0

    def resource(self, data: dict[str, Any], root: dict[str, Any]) -> None:
        url = CORE + str(data.get("resourceType"))
        if url not in self.defs.elements:
            return
        self.element(data, url, data["resourceType"], data["resourceType"], data, root)

    def check(self, node: Any, url: str, path: str, base: str, res: Any, root: Any) -> None:
        element = self.defs.elements[url].get(path)
        if element is None:
            return
        for constraint in _constraints(element, url):
            self.evaluations += 1
            verdict = compile_invariant(constraint).holds(node, base, res, root)
            where = (constraint.key, f"{base} ({constraint.expression})")
            if verdict is None:
                self.errors.add(where)
            elif not verdict and constraint.severity == "error":
                self.failures.add(where)
            elif not verdict:
                self.warnings.add(where)

    def element(self, node: Any, url: str, path: str, base: str, res: Any, root: Any) -> None:
        self.check(node, url, path, base, res, root)
        if not isinstance(node, dict):
            return
        element = self.defs.elements[url][path]
        if "contentReference" in element:
            path = element["contentReference"].lstrip("#")
        kids = self.defs.children[url].get(path)
        if kids is None:
            self.datatype(node, element, res, root)
            return
        for kid in kids:
            for key, type_code, instance in _instances(node, kid):
                child_base = base + "." + key
                if type_code == "Resource" or (type_code and type_code in _RESOURCE_TYPES):
                    if isinstance(instance, dict):
                        # %rootResource: the container for contained resources; a Bundle
                        # entry's or a Parameters' resource is its own root.
                        nested_root = root if key == "contained" else instance
                        self.resource(instance, nested_root)
                    continue
                self.element(instance, url, kid["path"], child_base, res, root)

    def datatype(self, node: dict[str, Any], element: dict[str, Any], res: Any, root: Any) -> None:
        types = element.get("type") or []
        if len(types) != 1:
            return
        code = types[0]["code"]
        urls = [p for p in types[0].get("profile", []) if p in self.defs.elements]
        url = urls[0] if urls else CORE + code
        if url not in self.defs.elements or code in ("Element", "BackboneElement"):
            return
        root_path = self.defs.by_url[url]["type"]
        self.element(node, url, root_path, root_path, res, root)


_RESOURCE_TYPES: set[str] = set()


def _instances(node: dict[str, Any], kid: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(JSON name, type code, instance) of a child element in ``node``."""
    name = kid["path"].rpartition(".")[2]
    if name.endswith("[x]"):
        stem = name[:-3]
        names = [
            (stem + t["code"][0].upper() + t["code"][1:], t["code"]) for t in kid.get("type", [])
        ]
    else:
        types = kid.get("type") or [{"code": ""}]
        names = [(name, types[0]["code"] if len(types) == 1 else "")]
    for key, code in names:
        if key not in node and "_" + key not in node:
            continue
        values, extras = node.get(key), node.get("_" + key)
        primitive = code[:1].islower() or code.startswith("http://hl7.org/fhirpath/")
        if isinstance(values, list) or isinstance(extras, list):
            values = values if isinstance(values, list) else [None] * len(extras or [])
            extras = extras if isinstance(extras, list) else [None] * len(values)
            for value, extra in zip(values, extras, strict=False):
                yield key, code, Primitive(value, extra) if primitive else value
        else:
            yield key, code, Primitive(values, extras) if primitive else values


@cache
def definitions() -> Definitions:
    defs = Definitions(examples_dir())
    _RESOURCE_TYPES.update(
        sd["type"]
        for sd in defs.by_url.values()
        if sd.get("kind") == "resource" and sd.get("derivation") == "specialization"
    )
    return defs


def selected(index: int, name: str) -> bool:
    """Whether the default (sampled) run includes an example."""
    if EXHAUSTIVE:
        return True
    if name in DEFINITION_BUNDLES:
        return False
    if any(name == known for known, _ in KNOWN_EXAMPLE_ERRORS):
        return True
    return name.split("-")[0] not in SAMPLED_TYPES or index % SAMPLE_EVERY == 0


@dataclass
class Run:
    failures: dict[tuple[str, str], str] = field(default_factory=dict)
    warnings: int = 0
    examples: set[str] = field(default_factory=set)
    evaluations: int = 0
    seconds: float = 0.0


def run_examples() -> Run:
    defs = definitions()
    run = Run()
    start = time.perf_counter()
    for index, (name, resource) in enumerate(iter_parsed_examples()):
        if not selected(index, name):
            continue
        run.examples.add(name)
        walk = Walk(defs)
        walk.resource(resource, resource)
        run.evaluations += walk.evaluations
        run.warnings += len(walk.warnings)
        for key, where in sorted(walk.failures):
            run.failures.setdefault((name, key), where)
        for key, where in sorted(walk.errors):
            run.failures.setdefault((name, key), "not evaluable: " + where)
    run.seconds = time.perf_counter() - start
    return run


def test_invariants_of_the_core_hold_on_the_r4_examples() -> None:
    run = run_examples()
    print(
        f"\n{len(run.examples)} R4 examples, {run.evaluations} evaluations in "
        f"{run.seconds:.1f} s; {run.warnings} warning-level findings"
    )
    unexplained = {k: v for k, v in run.failures.items() if k not in KNOWN_EXAMPLE_ERRORS}
    assert not unexplained, "\n".join(f"{k}: {v}" for k, v in sorted(unexplained.items()))
    stale = {k for k in KNOWN_EXAMPLE_ERRORS if k[0] in run.examples} - set(run.failures)
    assert not stale, f"KNOWN_EXAMPLE_ERRORS that no longer fail: {sorted(stale)}"


def test_natives_agree_with_fhirpathpy_where_it_can_evaluate_them() -> None:
    """ext-1 and dom-2/4/5/6 natives give fhirpathpy's verdict on the examples' resources."""
    expressions = {
        "dom-2": "contained.contained.empty()",
        "dom-4": "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()",
        "dom-5": "contained.meta.security.empty()",
        "dom-6": "text.`div`.exists()",
    }
    from fhir_server.validation import invariants_native as native

    checked = 0
    for _name, resource in iter_parsed_examples():
        for key, expression in expressions.items():
            expected = truth(
                evaluate(parse_expression(expression), resource, "", resource, resource)
            )
            assert native.NATIVES[key](resource) == expected, (_name, key)
            checked += 1
        for extension in resource.get("extension", []):
            expected = truth(
                evaluate(
                    parse_expression("extension.exists() != value.exists()"),
                    extension,
                    "Extension",
                    resource,
                    resource,
                )
            )
            assert native.ext_1(extension) == expected, (_name, extension)
    assert checked > 1000
