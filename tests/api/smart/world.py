"""The data and accounts most SMART conformance modules share (see :func:`make_world`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.api.smart.conftest import Smart
from tests.integration.smart_support import SigningKey, make_key, public_jwks


def patient_resource(family: str, given: str = "Test") -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}


OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


def observation(patient_id: str, category: str, code: str = "8867-4") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def condition(patient_id: str, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "category": [{"coding": [{"system": COND_CATEGORY, "code": category}]}],
        "code": {"text": "something"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


@dataclass
class World:
    """Data and accounts most modules need: two patients (with observations and conditions
    of several categories), a practitioner, an encounter; a patient user, a clinician; a
    public, a symmetric and an asymmetric app."""

    patient: str
    other_patient: str
    practitioner: str
    encounter: str
    patient_user: str = "pat"
    clinician: str = "doc"
    public: str = "app-public"
    symmetric: str = "app-secret"
    secret: str = "app-secret-value-123"
    asymmetric: str = "app-jwt"
    app_key: SigningKey = field(default_factory=lambda: make_key("ES384"))
    observations: dict[str, str] = field(default_factory=dict)  # category -> id (patient)
    conditions: dict[str, str] = field(default_factory=dict)


async def make_world(smart: Smart) -> World:
    patient = await smart.create(patient_resource("Everywoman", "Eve"))
    other = await smart.create(patient_resource("Otherman", "Oscar"))
    practitioner = await smart.create(
        {"resourceType": "Practitioner", "name": [{"family": "Careful"}]}
    )
    encounter = await smart.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": f"Patient/{patient}"},
        }
    )
    world = World(patient, other, practitioner, encounter)
    for category in ("laboratory", "vital-signs", "social-history"):
        world.observations[category] = await smart.create(observation(patient, category))
        await smart.create(observation(other, category))
    for category in ("problem-list-item", "encounter-diagnosis", "health-concern"):
        world.conditions[category] = await smart.create(condition(patient, category))
    await smart.add_user(world.patient_user, fhir_user=f"Patient/{patient}")
    await smart.add_user(world.clinician, fhir_user=f"Practitioner/{practitioner}")
    await smart.add_client(world.public, "public")
    await smart.add_client(world.symmetric, "confidential", secret=world.secret)
    await smart.add_client(world.asymmetric, "confidential", jwks=public_jwks(world.app_key))
    return world
