"""The stored form of a resource: the JSON received plus ``id`` and ``meta``.

http://hl7.org/fhir/R4/resource.html#Meta: the server owns ``meta.versionId`` and
``meta.lastUpdated``; the other meta elements (profile, security, tag, source) are the client's
and are kept as sent. Everything else in the body is kept exactly as received.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir_server.core.clock import to_instant
from fhir_server.core.errors import UnprocessableResource


def build_stored_form(
    body: dict[str, Any], resource_type: str, id: str, version: int, last_updated: datetime
) -> dict[str, Any]:
    meta = body.get("meta")
    new_meta: dict[str, Any] = {"versionId": str(version), "lastUpdated": to_instant(last_updated)}
    if isinstance(meta, dict):
        new_meta.update(
            (key, value) for key, value in meta.items() if key not in ("versionId", "lastUpdated")
        )
    elif meta is not None:
        raise UnprocessableResource(
            "meta must be a JSON object (a Meta datatype)", expression=[f"{resource_type}.meta"]
        )
    stored: dict[str, Any] = {"resourceType": resource_type, "id": id, "meta": new_meta}
    stored.update(
        (key, value) for key, value in body.items() if key not in ("resourceType", "id", "meta")
    )
    return stored
