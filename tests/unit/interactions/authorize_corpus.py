"""A small corpus for the scope-enforcement tests: two patients, their observations and
medication requests, a shared Medication and an AuditEvent, stored through a real SQLite
application by an unrestricted caller; and the scope kinds the matrix runs over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir_server.auth.scopes import access_scopes
from fhir_server.bootstrap import Application, build
from fhir_server.core import fhirjson
from fhir_server.core.access import Access
from fhir_server.core.context import RequestContext
from fhir_server.interactions.reading import Shown
from fhir_server.settings import Settings

CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
LAB = f"{CATEGORY}|laboratory"
SERVER = RequestContext()  # the unrestricted caller that seeds the corpus
Key = tuple[str, str]


def observation(id: str, patient: str, category: str, code: str = "1-8") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "identifier": [{"system": "urn:t", "value": id}],
        "category": [{"coding": [{"system": CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def medication_request(id: str, patient: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": id,
        "status": "active",
        "intent": "order",
        "medicationReference": {"reference": "Medication/m1"},
        "subject": {"reference": f"Patient/{patient}"},
    }


CORPUS: tuple[dict[str, Any], ...] = (
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "One"}]},
    {"resourceType": "Patient", "id": "p2", "name": [{"family": "Two"}]},
    {"resourceType": "Medication", "id": "m1", "code": {"text": "aspirin"}},
    observation("o1", "p1", "laboratory"),
    observation("o2", "p1", "vital-signs"),
    observation("o3", "p2", "laboratory"),
    medication_request("mr1", "p1"),
    medication_request("mr2", "p2"),
    {
        "resourceType": "AuditEvent",
        "id": "a1",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": True, "who": {"reference": "Patient/p1"}}],
        "source": {"observer": {"display": "test"}},
        "entity": [{"what": {"reference": "Patient/p1"}}],
    },
)
ALL: frozenset[Key] = frozenset((r["resourceType"], r["id"]) for r in CORPUS)
P1: frozenset[Key] = frozenset(
    {("Patient", "p1"), ("Observation", "o1"), ("Observation", "o2"),
     ("MedicationRequest", "mr1"), ("Medication", "m1")}
)  # fmt: skip
P2: frozenset[Key] = frozenset(
    {("Patient", "p2"), ("Observation", "o3"), ("MedicationRequest", "mr2"), ("Medication", "m1")}
)


def access(scopes: str, patient: str | None = None) -> Access:
    return Access(access_scopes(scopes), client_id="app", subject="someone", patient=patient)


def ctx(scopes: str, patient: str | None = None) -> RequestContext:
    return RequestContext(channel="rest", base_url="http://t/fhir", access=access(scopes, patient))


@dataclass(frozen=True)
class Kind:
    """A kind of token: what it may read (``readable``) and write (``writable``: keys of
    the resources whose current and new content it may write)."""

    name: str
    scopes: str
    patient: str | None
    readable: frozenset[Key]
    writable: frozenset[Key]

    @property
    def context(self) -> RequestContext:
        return ctx(self.scopes, self.patient)


_WRITABLE_P1 = P1 - {("Medication", "m1")}
KINDS: tuple[Kind, ...] = (
    Kind("patient-in-compartment", "patient/*.cruds", "p1", P1, _WRITABLE_P1),
    Kind("patient-other-patient", "patient/*.cruds", "p2", P2, P2 - {("Medication", "m1")}),
    Kind("patient-without-context", "patient/*.cruds", None, frozenset(), frozenset()),
    Kind("user", "user/*.cruds", None, ALL - {("AuditEvent", "a1")}, ALL - {("AuditEvent", "a1")}),
    Kind("system", "system/*.cruds", None, ALL, ALL),
    Kind("granular", f"patient/Observation.rs?category={LAB}", "p1",
         frozenset({("Observation", "o1")}), frozenset()),
    Kind("none", "openid fhirUser", "p1", frozenset(), frozenset()),
    Kind("wrong-letter-read-only", "patient/*.rs", "p1", P1, frozenset()),
    Kind("wrong-letter-write-only", "patient/*.cud", "p1", frozenset(), _WRITABLE_P1),
)  # fmt: skip


@asynccontextmanager
async def corpus_app(tmp_path: Path) -> AsyncIterator[Application]:
    application = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"), relay_poll_interval=0.05
    )
    await application.start()
    try:
        service = application.service
        for resource in CORPUS:
            await service.update(SERVER, resource["resourceType"], resource["id"], resource)
        yield application
    finally:
        await application.stop()


def keys_in(found: object) -> set[Key]:
    """Every resource (type, id) anywhere in a response: bundle entries, nested bundles of
    batch responses; OperationOutcomes are not data."""
    out: set[Key] = set()
    if isinstance(found, Shown):
        found = fhirjson.loads(found.body)
    elif isinstance(found, dict):
        found = fhirjson.loads(fhirjson.dumps(found))  # stored bytes are embedded as is

    def walk(node: object) -> None:
        if isinstance(node, dict):
            kind, id = node.get("resourceType"), node.get("id")
            data = kind not in ("Bundle", "OperationOutcome")
            if isinstance(kind, str) and isinstance(id, str) and data:
                out.add((kind, id))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(found)
    return out


async def stored_state(application: Application, keys: Iterable[Key]) -> dict[Key, int | None]:
    """The current version number of each resource (None: absent or deleted)."""
    out: dict[Key, int | None] = {}
    for key in keys:
        version = await application.store.read(*key)
        out[key] = None if version is None or version.deleted else version.version
    return out
