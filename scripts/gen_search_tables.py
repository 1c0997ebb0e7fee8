"""Generate fhir_server/search/data/*.json from the official R4 package.

Source: npm ``hl7.fhir.r4.examples@4.0.1`` (HL7 International, CC0-1.0). The official search
parameter registry (http://hl7.org/fhir/R4/searchparameter-registry.html) is the package's
``Bundle-searchParams.json``; the other ``SearchParameter-*.json`` files of the package are
examples and extension parameters, not part of the base registry, and are left out (one of
them, ``example-reference``, would even redefine ``Condition.subject``). The compartments are the
five base ``CompartmentDefinition-*.json``.

Run ``make search-tables`` and commit the output; tests/unit/search/test_search_tables.py checks
that the committed tables equal what this script builds from the package.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "fhir_server" / "search" / "data"
SOURCE = "npm hl7.fhir.r4.examples@4.0.1 (HL7 International, CC0-1.0)"
COMPARTMENTS = ("patient", "encounter", "relatedPerson", "practitioner", "device")

# "* [AllergyIntolerance](allergyintolerance.html): Code that identifies ..."
_PER_TYPE_LINE = re.compile(r"^\*\s*\[([A-Za-z]+)\]\([^)]*\):\s*(.*)$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(text: str) -> str:
    """The first sentence, on one line: enough for CapabilityStatement documentation."""
    flat = " ".join(text.split())
    return _SENTENCE_END.split(flat, maxsplit=1)[0]


def description(text: str) -> str | dict[str, str]:
    """A parameter shared by several types documents each type on its own markdown line
    (``Multiple Resources: * [Type](...): text``): keep one sentence per type; else one."""
    if not text.startswith("Multiple Resources"):
        return first_sentence(text)
    per_type: dict[str, str] = {}
    for line in text.splitlines():
        match = _PER_TYPE_LINE.match(line.strip())
        if match:
            per_type[match.group(1)] = first_sentence(match.group(2))
    return per_type


def compact_parameter(resource: dict[str, Any], any_target: list[str]) -> dict[str, Any]:
    """The elements the registry needs, under their FHIR names; absent ones are left out.
    A ``target`` naming every type in ``any_target`` (Reference(Any), 80 parameters) is written
    ``"*"``: it would otherwise be a third of the file."""
    out: dict[str, Any] = {
        "url": resource["url"],
        "code": resource["code"],
        "base": resource["base"],
        "type": resource["type"],
        "description": description(resource.get("description", "")),
    }
    if "expression" in resource:
        out["expression"] = resource["expression"]
    if resource.get("target"):
        out["target"] = "*" if sorted(resource["target"]) == any_target else resource["target"]
    for name in ("modifier", "comparator"):
        if resource.get(name):
            out[name] = resource[name]
    if resource.get("component"):
        out["component"] = [
            {"definition": c["definition"], "expression": c["expression"]}
            for c in resource["component"]
        ]
    for name in ("multipleOr", "multipleAnd"):
        if name in resource:
            out[name] = resource[name]
    return out


def build_search_parameters(package: Path) -> dict[str, Any]:
    bundle = json.loads((package / "Bundle-searchParams.json").read_text(encoding="utf-8"))
    resources = [entry["resource"] for entry in bundle["entry"]]
    any_target = widest_target(resources)
    parameters = [
        compact_parameter(r, any_target)
        for r in resources
        if r["resourceType"] == "SearchParameter"
    ]
    return {
        "source": SOURCE,
        "fhirVersion": "4.0.1",
        "nonDomainResourceTypes": non_domain_resource_types(package),
        "anyTarget": any_target,
        "parameters": sorted(parameters, key=lambda p: p["url"]),
    }


def widest_target(resources: list[dict[str, Any]]) -> list[str]:
    """The longest ``target`` list of the registry: every type a Reference(Any) can name."""
    widest: list[str] = []
    for resource in resources:
        target: list[str] = resource.get("target", [])
        if len(target) > len(widest):
            widest = target
    return sorted(widest)


def non_domain_resource_types(package: Path) -> list[str]:
    """Concrete resource types that are not DomainResources (``_text`` does not apply)."""
    found = []
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        if (
            sd.get("kind") == "resource"
            and sd.get("derivation") == "specialization"
            and not sd.get("abstract")
            and sd.get("baseDefinition") == "http://hl7.org/fhir/StructureDefinition/Resource"
        ):
            found.append(sd["type"])
    return sorted(found)


def build_compartments(package: Path) -> dict[str, Any]:
    """Compartment type -> resource type -> codes of the parameters linking it (``{def}`` kept);
    resource types that can never be in the compartment are left out."""
    compartments: dict[str, dict[str, list[str]]] = {}
    for name in COMPARTMENTS:
        path = package / f"CompartmentDefinition-{name}.json"
        definition = json.loads(path.read_text(encoding="utf-8"))
        compartments[definition["code"]] = {
            entry["code"]: entry["param"] for entry in definition["resource"] if entry.get("param")
        }
    return {"source": SOURCE, "fhirVersion": "4.0.1", "compartments": compartments}


def build_tables(package: Path) -> dict[str, Any]:
    return {
        "search_parameters.json": build_search_parameters(package),
        "compartments.json": build_compartments(package),
    }


def render(table: Any) -> str:
    return json.dumps(table, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"


SOURCE_NOTE = f"""Generated by scripts/gen_search_tables.py (`make search-tables`); do not edit.

Source: {SOURCE}: Bundle-searchParams.json (the R4 search parameter registry) and
CompartmentDefinition-{{{",".join(COMPARTMENTS)}}}.json.
"""


def main(argv: list[str]) -> int:
    package = Path(argv[1]) if len(argv) > 1 else Path(".cache/r4/package")
    OUT.mkdir(parents=True, exist_ok=True)
    tables = build_tables(package)
    for name, table in tables.items():
        (OUT / name).write_text(render(table), encoding="utf-8")
    (OUT / "SOURCE").write_text(SOURCE_NOTE, encoding="utf-8")
    count = len(tables["search_parameters.json"]["parameters"])
    print(f"wrote {len(tables)} tables ({count} search parameters) to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
