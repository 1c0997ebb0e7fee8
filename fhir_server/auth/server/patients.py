"""The patient picker's queries, through the FHIR service as the server itself (the signed-in
user chooses among the patients; the app gets only the one chosen)."""

from __future__ import annotations

from typing import Any

from fhir_server.auth.server import pages
from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError
from fhir_server.interactions.service import FhirService

PICKER_SIZE = 20
_CTX = RequestContext(channel="smart")


async def find_patients(fhir: FhirService, query: str) -> list[pages.PatientChoice]:
    params = [("_count", str(PICKER_SIZE)), ("_sort", "name")]
    if query.strip():
        params.append(("name", query.strip()))
    try:
        bundle = await fhir.search_type(_CTX, "Patient", params)
    except FhirError:
        return []
    entries = fhirjson.loads(fhirjson.dumps(bundle)).get("entry", [])  # bodies are raw JSON
    return [_choice(e["resource"]) for e in entries if "resource" in e]


async def patient_exists(fhir: FhirService, id: str) -> bool:
    try:
        await fhir.read(_CTX, "Patient", id)
    except FhirError:
        return False
    return True


def _choice(patient: dict[str, Any]) -> pages.PatientChoice:
    return pages.PatientChoice(
        id=str(patient.get("id", "")),
        name=display_name(patient),
        birth_date=patient.get("birthDate"),
    )


def display_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        parts = [*name.get("given", []), name.get("family", "")]
        text = " ".join(p for p in parts if p)
        if text:
            return text
    return f"Patient/{patient.get('id', '')}"
