"""RequestContext.keep_unchanged (the HL7 v2 door's transactions): an update whose content
equals the current version (meta.versionId and meta.lastUpdated aside) stores nothing and is
answered with the current version; a real change, and every update over REST (the FHIR
default), stores a new version."""

from __future__ import annotations

from typing import Any

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext

SYSTEM = "urn:oid:1.2.3"


def bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{n}",
            "resource": resource,
            "request": {
                "method": "PUT",
                "url": f"{resource['resourceType']}?identifier={SYSTEM}|"
                f"{resource['identifier'][0]['value']}",
            },
        }
        for n, resource in enumerate(resources)
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def patient(value: str, family: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": value}],
        "name": [{"family": family}],
        "meta": {"tag": [{"system": "urn:fhir-server:origin", "code": "hl7v2"}]},
    }


def request_for(value: str) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": SYSTEM, "value": value}],
        "status": "active",
        "intent": "order",
        "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
    }


async def test_unchanged_updates_keep_their_version(application: Application) -> None:
    service = application.service
    door = RequestContext(channel="hl7v2", keep_unchanged=True)
    first = await service.batch_or_transaction(
        door, bundle(patient("K-1", "Popescu"), request_for("K-SR-1"))
    )
    assert [e["response"]["status"] for e in first["entry"]] == ["201 Created"] * 2
    again = await service.batch_or_transaction(
        door, bundle(patient("K-1", "Popescu"), request_for("K-SR-1"))
    )
    assert [e["response"]["status"] for e in again["entry"]] == ["200 OK"] * 2
    assert [e["response"]["etag"] for e in again["entry"]] == ['W/"1"'] * 2
    assert [e["fullUrl"] for e in again["entry"]] == [e["fullUrl"] for e in first["entry"]]
    changed = await service.batch_or_transaction(
        door, bundle(patient("K-1", "Ionescu"), request_for("K-SR-1"))
    )
    assert [e["response"]["etag"] for e in changed["entry"]] == ['W/"2"', 'W/"1"']
    rest = RequestContext(channel="rest")
    plain = await service.batch_or_transaction(
        rest, bundle(patient("K-1", "Ionescu"), request_for("K-SR-1"))
    )
    assert [e["response"]["etag"] for e in plain["entry"]] == ['W/"3"', 'W/"2"']
