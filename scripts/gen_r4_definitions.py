"""Generate fhir_server/conformance/data/r4-core.json.gz from the official R4 package.

Source: npm ``hl7.fhir.r4.examples@4.0.1`` (HL7 International, CC0-1.0): every R4
StructureDefinition (with snapshots), ValueSet, CodeSystem and ConceptMap. The validator and the
terminology service read them from the package at run time, so the server needs no download.

What is dropped, to keep the file small (it is about 2 MB): narratives, differentials, mappings and
the long documentation fields of ElementDefinitions (definition, comment, requirements), the XPath
of constraints and ready-made ValueSet expansions (the terminology service expands from compose).
Everything the validator checks (cardinality, types, fixed/pattern values, bindings, slicing,
constraints) and everything the terminology operations answer (designations, definitions,
properties) is kept. Run ``make r4-definitions`` and commit the output;
tests/unit/conformance/test_core_data.py checks the committed file matches the package.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "fhir_server" / "conformance" / "data"
FILE = "r4-core.json.gz"
KINDS = ("StructureDefinition", "ValueSet", "CodeSystem", "ConceptMap")
_ELEMENT_DROPPED = ("mapping", "definition", "comment", "requirements", "alias", "example")


def slim(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without what neither the validator nor the terminology service reads."""
    out = {k: v for k, v in resource.items() if k not in ("text", "differential", "mapping")}
    if out["resourceType"] == "StructureDefinition":
        elements = out.get("snapshot", {}).get("element", [])
        kept = []
        for element in elements:
            element = {k: v for k, v in element.items() if k not in _ELEMENT_DROPPED}
            if "constraint" in element:
                element["constraint"] = [
                    {k: v for k, v in c.items() if k != "xpath"} for c in element["constraint"]
                ]
            kept.append(element)
        if elements:
            out["snapshot"] = {"element": kept}
    elif out["resourceType"] == "ValueSet":
        out.pop("expansion", None) if "compose" in out else None
    return out


def definitions(package: Path) -> list[dict[str, Any]]:
    found = []
    for kind in KINDS:
        for path in sorted(package.glob(f"{kind}-*.json")):
            resource = json.loads(path.read_text(encoding="utf-8"))
            if resource.get("resourceType") == kind:
                found.append(slim(resource))
    return found


def render(package: Path) -> bytes:
    """The gzip file, byte-identical for the same package (no timestamp, sorted input).

    JSON lines: the first is the index, ``[[resourceType, url, version], ...]``, and line
    ``n + 1`` is resource ``n``, so the server parses only the resources it uses."""
    found = definitions(package)
    index = [[r["resourceType"], r.get("url", ""), r.get("version", "")] for r in found]
    lines = [json.dumps(index, ensure_ascii=False, separators=(",", ":"))]
    lines += [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in found]
    return gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=9, mtime=0)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} <path to the unpacked hl7.fhir.r4.examples package>")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / FILE).write_bytes(render(Path(argv[1])))
    print(f"wrote {OUT / FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
