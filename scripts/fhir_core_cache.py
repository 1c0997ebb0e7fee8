"""Fill a FHIR package cache with hl7.fhir.r4.core#4.0.1 built from the official R4 package.

SUSHI (profiles/) needs the FHIR core package in a FHIR package cache (``$HOME/.fhir/packages``),
but packages.fhir.org is not reachable here or in CI; only the npm registry is, and it carries
``hl7.fhir.r4.examples@4.0.1`` (HL7 International, CC0-1.0), which ships the same
StructureDefinitions, ValueSets, CodeSystems, ConceptMaps, SearchParameters, OperationDefinitions
and CompartmentDefinitions as ``hl7.fhir.r4.core#4.0.1``, next to the examples. This script copies
those conformance resources into ``<home>/.fhir/packages/hl7.fhir.r4.core#4.0.1/package/`` with a
``package.json`` naming the core package and an ``.index.json`` (the FHIR package index, version 1),
so that ``HOME=<home> sushi build`` never needs the network.

Usage: python scripts/fhir_core_cache.py [R4_EXAMPLES_DIR] [HOME_DIR]
(defaults: .cache/r4/package and .cache/fhir-home). Idempotent: a cache already built from the
same source folder and file names is left as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

NAME = "hl7.fhir.r4.core"
VERSION = "4.0.1"
KINDS = (
    "StructureDefinition",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "SearchParameter",
    "OperationDefinition",
    "CompartmentDefinition",
)
STAMP = ".built-from"
PACKAGE_JSON: dict[str, Any] = {
    "name": NAME,
    "version": VERSION,
    "fhirVersions": [VERSION],
    "type": "Core",
    "license": "CC0-1.0",
    "canonical": "http://hl7.org/fhir",
    "url": "http://hl7.org/fhir/R4",
    "title": "FHIR R4 package : Core",
    "description": (
        "Definitions for the FHIR R4 core specification, rebuilt locally from "
        "hl7.fhir.r4.examples@4.0.1 (scripts/fhir_core_cache.py)"
    ),
    "author": "HL7 Inc",
    "dependencies": {},
}


def conformance_files(source: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The conformance resources of the examples package, with their index entries."""
    found = []
    for kind in KINDS:
        for path in sorted(source.glob(f"{kind}-*.json")):
            resource = json.loads(path.read_text(encoding="utf-8"))
            if resource.get("resourceType") != kind:
                continue
            entry = {"filename": path.name, "resourceType": kind, "id": resource.get("id")}
            for key in ("url", "version", "kind", "type", "supplements"):
                if key in resource:
                    entry[key] = resource[key]
            found.append((path, entry))
    return found


def stamp_of(source: Path) -> str:
    """What the cache was built from: the source folder and its candidate files."""
    names = sorted(p.name for kind in KINDS for p in source.glob(f"{kind}-*.json"))
    return json.dumps({"source": str(source.resolve()), "files": names}, sort_keys=True)


def build(source: Path, home: Path) -> Path:
    """Build (or keep) the core package in ``home``'s FHIR cache; return its package folder."""
    if not (source / "package.json").is_file():
        raise SystemExit(f"{source}/package.json not found: run `make r4-examples` first")
    packages = home / ".fhir" / "packages"
    target = packages / f"{NAME}#{VERSION}"
    stamp = stamp_of(source)
    stamp_file = target / STAMP
    if stamp_file.is_file() and stamp_file.read_text(encoding="utf-8") == stamp:
        return target / "package"
    files = conformance_files(source)
    packages.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".core-", dir=packages))
    content = staging / "package"
    content.mkdir()
    for path, _ in files:
        try:
            os.link(path, content / path.name)
        except OSError:
            shutil.copyfile(path, content / path.name)
    index = {"index-version": 1, "files": [entry for _, entry in files]}
    (content / ".index.json").write_text(json.dumps(index, indent=1), encoding="utf-8")
    (content / "package.json").write_text(json.dumps(PACKAGE_JSON, indent=2), encoding="utf-8")
    (staging / STAMP).write_text(stamp, encoding="utf-8")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return target / "package"


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else Path(".cache/r4/package")
    home = Path(argv[2]) if len(argv) > 2 else Path(".cache/fhir-home")
    content = build(source, home)
    count = sum(1 for _ in content.glob("*.json")) - 1
    print(f"{NAME}#{VERSION}: {count} resources in {content}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
