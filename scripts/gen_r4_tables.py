"""Generate fhir_server/core/r4/data/*.json from the official R4 package.

Source: npm ``hl7.fhir.r4.examples@4.0.1`` (HL7 International, CC0-1.0), which ships every R4
StructureDefinition with snapshots. Run ``make r4-tables`` (it fetches the package) and commit
the output; tests/unit/core/test_r4_tables.py checks the committed tables match the package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "fhir_server" / "core" / "r4" / "data"


def concrete_resource_definitions(package: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        if (
            sd.get("kind") == "resource"
            and sd.get("derivation") == "specialization"
            and not sd.get("abstract")
        ):
            found.append(sd)
    return found


def datatype_definitions(package: Path) -> list[dict[str, Any]]:
    """The R4 data types: every primitive and complex type (Element and BackboneElement
    included), not the profiles on them (SimpleQuantity, MoneyQuantity: derivation constraint)."""
    found = []
    for path in sorted(package.glob("StructureDefinition-*.json")):
        sd = json.loads(path.read_text(encoding="utf-8"))
        if (
            sd.get("kind") in ("primitive-type", "complex-type")
            and sd.get("derivation", "specialization") == "specialization"
            and sd.get("id") == sd.get("type")
        ):
            found.append(sd)
    return found


def build_datatypes(definitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Per complex data type, every element path of its snapshot (root excluded), the names of
    the primitive types, and each type's base type (``Age`` -> ``Quantity``, ``code`` ->
    ``string``), which FHIRPath ``is``/``as``/``ofType`` follow."""
    elements: dict[str, dict[str, list[Any]]] = {}
    primitives: list[str] = []
    bases: dict[str, str] = {}
    for sd in definitions:
        base = sd.get("baseDefinition", "").rsplit("/", 1)[-1]
        if base:
            bases[sd["type"]] = base
        if sd["kind"] == "primitive-type":
            primitives.append(sd["type"])
        else:
            snapshot = sd["snapshot"]["element"][1:]
            elements[sd["type"]] = {e["path"]: element_entry(e) for e in snapshot}
    return {
        "source": "npm hl7.fhir.r4.examples@4.0.1 (HL7 International, CC0-1.0)",
        "columns": ["min", "max", "isSummary", "types"],
        "elements": elements,
        "primitiveTypes": sorted(primitives),
        "baseTypes": bases,
    }


def build_resource_types(definitions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "source": "npm hl7.fhir.r4.examples@4.0.1 (HL7 International, CC0-1.0)",
        "fhirVersion": "4.0.1",
        "resourceTypes": sorted(sd["type"] for sd in definitions),
    }


def element_entry(element: dict[str, Any]) -> list[Any]:
    """[min, max, isSummary, type codes or '#contentReference']."""
    if "contentReference" in element:
        types = [element["contentReference"]]
    else:
        types = [t["code"] for t in element.get("type", [])]
    return [element.get("min", 0), element.get("max", "*"), bool(element.get("isSummary")), types]


def build_elements(definitions: list[dict[str, Any]]) -> dict[str, Any]:
    """Per resource type, every element path of its snapshot (root excluded)."""
    by_type: dict[str, dict[str, list[Any]]] = {}
    for sd in definitions:
        elements = sd["snapshot"]["element"][1:]
        by_type[sd["type"]] = {e["path"]: element_entry(e) for e in elements}
    return {
        "source": "npm hl7.fhir.r4.examples@4.0.1 (HL7 International, CC0-1.0)",
        "columns": ["min", "max", "isSummary", "types"],
        "elements": by_type,
    }


def reference_targets(element: dict[str, Any]) -> list[str] | None:
    """The resource types a Reference element may point at, from ``type[].targetProfile``
    (``.../StructureDefinition/Patient`` -> ``Patient``); None when any type is allowed (no
    targetProfile, or ``Resource``/``Any`` among them)."""
    names: set[str] = set()
    for kind in element.get("type", []):
        if kind.get("code") != "Reference":
            continue
        profiles = kind.get("targetProfile") or []
        if not profiles:
            return None
        for profile in profiles:
            name = profile.rsplit("/", 1)[-1]
            if name in ("Resource", "Any", "DomainResource"):
                return None
            names.add(name)
    return sorted(names)


def build_references(
    resources: list[dict[str, Any]], datatypes: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every element of type Reference (resources and complex data types, choices included),
    by element path, with its allowed target resource types (null: any type)."""
    targets: dict[str, list[str] | None] = {}
    for sd in [*resources, *datatypes]:
        if sd["kind"] == "primitive-type":
            continue
        for element in sd["snapshot"]["element"][1:]:
            if any(t.get("code") == "Reference" for t in element.get("type", [])):
                targets[element["path"]] = reference_targets(element)
    return {
        "source": "npm hl7.fhir.r4.examples@4.0.1 (HL7 International, CC0-1.0)",
        "targets": targets,
    }


def main(argv: list[str]) -> int:
    package = Path(argv[1]) if len(argv) > 1 else Path(".cache/r4/package")
    definitions = concrete_resource_definitions(package)
    datatypes = datatype_definitions(package)
    OUT.mkdir(parents=True, exist_ok=True)
    tables = {
        "resource_types.json": build_resource_types(definitions),
        "elements.json": build_elements(definitions),
        "datatypes.json": build_datatypes(datatypes),
        "references.json": build_references(definitions, datatypes),
    }
    for name, table in tables.items():
        indent = 1 if name in ("resource_types.json", "references.json") else None
        text = json.dumps(table, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
        (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(tables)} tables for {len(definitions)} resource types to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
