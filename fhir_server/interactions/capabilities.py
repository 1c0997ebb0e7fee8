"""The CapabilityStatement (http://hl7.org/fhir/R4/capabilitystatement.html), generated from the
interaction table, so it lists exactly what the routes serve."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.core import r4
from fhir_server.core.clock import to_instant
from fhir_server.interactions.table import (
    PATCH_FORMATS,
    SYSTEM_INTERACTIONS,
    TYPE_INTERACTIONS,
    OperationListing,
)
from fhir_server.search.model import SearchParamDef
from fhir_server.search.registry import SearchRegistry

#: Parameters every search accepts besides the type's own (search.html#all, #summary…).
_RESULT_PARAMETERS = (
    ("_sort", "string", "Sort order: comma-separated parameter names, '-' for descending"),
    ("_count", "number", "Page size (at most 1000)"),
    ("_total", "token", "none (default), estimate or accurate"),
    ("_summary", "token", "true, text, data, count or false"),
    ("_elements", "string", "Top-level elements to return"),
    ("_include", "special", "Type:param[:target], '*'; with :iterate"),
    ("_revinclude", "special", "Type:param[:target], '*'; with :iterate"),
    ("_has", "special", "Reverse chaining: _has:Type:param:rest=value (nests)"),
)


@dataclass(frozen=True, slots=True)
class Software:
    name: str
    version: str
    started: datetime


def _search_param(param: SearchParamDef) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.code, "type": param.type}
    if param.url:
        out["definition"] = param.url
    if param.description:
        out["documentation"] = param.description
    return out


def _searchable(param: SearchParamDef) -> bool:
    """Parameters the engine answers (no ``_text``/``_content``, no special ``near``)."""
    return param.code == "_id" or (param.expression is not None and param.type != "special")


def _revincludes(registry: SearchRegistry) -> dict[str, list[str]]:
    """For each target type, the ``Source:param`` reverse includes that can reach it (one pass
    over the registry, not one per type)."""
    out: dict[str, list[str]] = {}
    for source, by_code in registry.params().items():
        for p in by_code.values():
            if p.type == "reference" and _searchable(p):
                for target in p.targets:
                    out.setdefault(target, []).append(f"{source}:{p.code}")
    return {target: sorted(found) for target, found in out.items()}


def _resource(
    resource_type: str, registry: SearchRegistry, revincludes: dict[str, list[str]]
) -> dict[str, Any]:
    params = sorted(registry.for_type(resource_type).values(), key=lambda p: p.code)
    references = [p.code for p in params if p.type == "reference" and _searchable(p)]
    revinclude = revincludes.get(resource_type, [])
    out: dict[str, Any] = {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": True,
        "conditionalDelete": "single",
        "referencePolicy": ["literal", "logical"],
        "searchInclude": ["*"] + [f"{resource_type}:{code}" for code in references],
        "searchRevInclude": revinclude,
        "searchParam": [_search_param(p) for p in params if _searchable(p)]
        + [{"name": n, "type": t, "documentation": d} for n, t, d in _RESULT_PARAMETERS],
    }
    if not revinclude:
        del out["searchRevInclude"]  # FHIR JSON has no empty arrays
    return out


def capability_statement(
    base_url: str,
    software: Software,
    registry: SearchRegistry,
    operations: Sequence[OperationListing] = (),
) -> dict[str, Any]:
    revincludes = _revincludes(registry)
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": to_instant(software.started),
        "publisher": "fhir-server",
        "kind": "instance",
        "software": {"name": software.name, "version": software.version},
        "implementation": {
            "description": "FHIR R4 server for remote consultation and teleradiology",
            "url": base_url,
        },
        "fhirVersion": r4.FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": list(PATCH_FORMATS),
        "rest": [
            {
                "mode": "server",
                "resource": [
                    _resource(t, registry, revincludes) for t in sorted(r4.resource_types())
                ],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
                "searchParam": [
                    _search_param(p)
                    for p in sorted(registry.for_type("Patient").values(), key=lambda p: p.code)
                    if p.code.startswith("_") and _searchable(p)
                ],
                "compartment": [
                    f"http://hl7.org/fhir/CompartmentDefinition/{_compartment_id(c)}"
                    for c in sorted(registry.compartments())
                ],
            }
        ],
    }
    _add_operations(statement, operations)
    return statement


def _add_operations(statement: dict[str, Any], operations: Sequence[OperationListing]) -> None:
    """rest.resource.operation and rest.operation (capabilitystatement.html#operations)."""
    rest = statement["rest"][0]
    by_type = {r["type"]: r for r in rest["resource"]}
    for op in operations:
        entry = {"name": op.name, "definition": op.definition}
        if not op.resource_types:
            rest.setdefault("operation", []).append(entry)
        for resource_type in op.resource_types:
            if resource_type in by_type:
                by_type[resource_type].setdefault("operation", []).append(entry)


def _compartment_id(compartment_type: str) -> str:
    """CompartmentDefinition ids of R4: patient, encounter, relatedPerson, practitioner, device."""
    return compartment_type[0].lower() + compartment_type[1:]
