"""The CapabilityStatement (http://hl7.org/fhir/R4/capabilitystatement.html), generated from the
interaction table, so it lists exactly what the routes serve."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.core import r4
from fhir_server.core.clock import to_instant
from fhir_server.interactions.table import (
    PATCH_FORMATS,
    SEARCH_PARAMETERS,
    SYSTEM_INTERACTIONS,
    TYPE_INTERACTIONS,
)


@dataclass(frozen=True, slots=True)
class Software:
    name: str
    version: str
    started: datetime


def _resource(resource_type: str) -> dict[str, Any]:
    return {
        "type": resource_type,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource_type}",
        "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": False,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "referencePolicy": ["literal", "logical"],
        "searchParam": [
            {"name": name, "type": kind, "documentation": doc}
            for name, kind, doc in SEARCH_PARAMETERS
        ],
    }


def capability_statement(base_url: str, software: Software) -> dict[str, Any]:
    return {
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
                "resource": [_resource(t) for t in sorted(r4.resource_types())],
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }
