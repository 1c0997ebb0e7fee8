"""One R4 AuditEvent per audited request, in the shape of IHE Basic Audit Log Patterns (BALP).

BALP (https://profiles.ihe.net/ITI/BALP/) answers who (the client application and the user,
with the token used as ``agent.policy``), what (the resource, or the query of a search), which
patient, when (``recorded``), outcome and from where (``agent.network``). Values of resources
never go in: an outcome is described by the error's diagnostics, which never echo submitted
values (core/errors.py). The query string of a search is kept base64-encoded in
``entity.query`` as BALP asks: AuditEvents are readable only with a system or admin scope.

References are absolute (the FHIR base the caller used, else the server's own): an audit
record states a fact about the past, so it must neither be refused when it names a resource
that does not exist (a failed read, a deleted patient) nor hold a resource back from being
deleted, which a local reference would do under referential integrity.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_server.core.access import Access
from fhir_server.core.clock import to_instant
from fhir_server.core.context import RequestContext

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
SECURITY_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
#: This server's codes for the events of its SMART authorization server (no standard system
#: names OAuth endpoints); the DICOM Login/Logout subtype is given beside them when one fits.
AUTHORIZATION_EVENT = "urn:fhir-server:audit:authorization-event"

#: The codes of http://hl7.org/fhir/restful-interaction (R4).
RESTFUL_CODES = frozenset(
    {
        "read", "vread", "update", "patch", "delete", "history", "history-instance",
        "history-type", "history-system", "create", "search", "search-type", "search-system",
        "capabilities", "transaction", "batch", "operation",
    }
)  # fmt: skip
#: The doors' own names of interactions that have a standard code.
DOOR_CODES = {
    "update-conditional": "update",
    "delete-conditional": "delete",
    "search-compartment": "search-type",
    "batch-transaction": "transaction",
}
#: Events of the authorization server, and the DICOM subtype that fits each (if any).
AUTHORIZATION_EVENTS = {
    "login": ("110122", "Login"),
    "authorize": ("110122", "Login"),
    "token": ("110122", "Login"),
    "introspect": None,
    "revoke": ("110123", "Logout"),
}
#: AuditEvent.action (http://hl7.org/fhir/audit-event-action) of the interactions that are not
#: an execution (E: searches, history, bundles, operations and authorization events).
ACTIONS = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "capabilities": "R",
    "update": "U",
    "patch": "U",
    "delete": "D",
}
#: DIMSE operations of the DICOM door: (DCM event type, display, AuditEvent.action), after the
#: DICOM audit messages of PS3.15 A.5.3 (instances received: create; sent: read; query: execute).
DIMSE_EVENTS = {
    "C-STORE": ("110104", "DICOM Instances Transferred", "C"),
    "C-MOVE": ("110104", "DICOM Instances Transferred", "R"),
    "C-GET": ("110104", "DICOM Instances Transferred", "R"),
    "C-FIND": ("110112", "Query", "E"),
}
#: The DIMSE service of an event (no standard FHIR code system names them).
DIMSE_SERVICE = "urn:fhir-server:audit:dimse"
#: HL7 v2 messages exchanged over MLLP, as DICOM's Import / Export events (PS3.15 A.5.3):
#: the message's MSH-10, MSH-9 and acknowledgment code in ``details``.
HL7_EVENTS = {
    "HL7-IMPORT": ("110107", "Import", "C"),
    "HL7-EXPORT": ("110106", "Export", "R"),
}
HL7_EXCHANGE = "urn:fhir-server:audit:hl7v2"
_EXCHANGES = {
    **{name: (*event, DIMSE_SERVICE) for name, event in DIMSE_EVENTS.items()},
    **{name: (*event, HL7_EXCHANGE) for name, event in HL7_EVENTS.items()},
}
#: Study Instance UID as a participant object ID type (PS3.15 A.5.3, DCM 110180).
STUDY_UID_TYPE = {"coding": [{"system": DCM, "code": "110180", "display": "Study Instance UID"}]}


@dataclass(frozen=True, slots=True)
class Observed:
    """What a hook saw of one request, captured on the response path (cheap, no I/O).
    ``failure``: the error's diagnostics when the request failed; ``unauthenticated``: the
    failure was an authentication failure (401)."""

    context: RequestContext
    interaction: str
    status: int
    recorded: datetime
    resource_type: str | None = None
    id: str | None = None
    version: str | None = None
    query: str | None = None
    patients: tuple[str, ...] = ()
    failure: str | None = None
    unauthenticated: bool = False
    studies: tuple[str, ...] = ()
    patient_identifiers: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = ()


def coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def restful_code(interaction: str) -> str:
    code = DOOR_CODES.get(interaction, interaction)
    return code if code in RESTFUL_CODES else "operation"


def audit_event(
    seen: Observed, *, base: str, observer: str, patients: Sequence[str]
) -> dict[str, Any]:
    """The AuditEvent of ``seen``; ``base``: the FHIR base its references start with;
    ``patients``: every patient concerned (ids)."""
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        **_event_type(seen),
        "action": _action(seen.interaction),
        "recorded": to_instant(seen.recorded),
        "outcome": _outcome(seen.status),
    }
    if seen.failure is not None:
        event["outcomeDesc"] = seen.failure
    event["agent"] = _agents(seen.context, base, observer)
    event["source"] = {
        "observer": {"display": observer},
        "type": [coding(SOURCE_TYPE, "4", "Application Server")],
    }
    if base:
        event["source"]["site"] = base
    event["entity"] = _entities(seen, base, patients)
    return event


def _action(interaction: str) -> str:
    exchange = _EXCHANGES.get(interaction)
    return exchange[2] if exchange is not None else ACTIONS.get(restful_code(interaction), "E")


def _event_type(seen: Observed) -> dict[str, Any]:
    exchange = _EXCHANGES.get(seen.interaction)
    if exchange is not None:
        code, display, _, system = exchange
        return {
            "type": coding(DCM, code, display),
            "subtype": [coding(system, seen.interaction)],
        }
    if seen.unauthenticated or seen.interaction in AUTHORIZATION_EVENTS:
        subtype = []
        dicom = AUTHORIZATION_EVENTS.get(seen.interaction, ("110122", "Login"))
        if dicom is not None:
            subtype.append(coding(DCM, *dicom))
        if seen.interaction in AUTHORIZATION_EVENTS:
            subtype.append(coding(AUTHORIZATION_EVENT, seen.interaction))
        else:
            subtype.append(coding(RESTFUL_INTERACTION, restful_code(seen.interaction)))
        return {"type": coding(DCM, "110114", "User Authentication"), "subtype": subtype}
    return {
        "type": coding(EVENT_TYPE, "rest", "RESTful Operation"),
        "subtype": [coding(RESTFUL_INTERACTION, restful_code(seen.interaction))],
    }


def _outcome(status: int) -> str:
    """0 success, 4 minor failure (the caller's error, 4xx), 8 serious failure (5xx)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def _agents(ctx: RequestContext, base: str, observer: str) -> list[dict[str, Any]]:
    server = {
        "type": {"coding": [coding(DCM, "110152", "Destination Role ID")]},
        "who": {"display": observer},
        "requestor": False,
    }
    if base:
        server["network"] = {"address": base, "type": "5"}
    agents = (
        _peer(ctx.principal, ctx.organization, base)
        if ctx.access is None and ctx.principal is not None
        else _requestors(ctx.access, base)
    )
    if ctx.client_address:  # where the request came from: type 2, an IP address
        agents[0]["network"] = {"address": ctx.client_address, "type": "2"}
    return [*agents, server]


def _peer(ae_title: str, organization: str | None, base: str) -> list[dict[str, Any]]:
    """A DICOM peer: its AE title (``altId``, as PS3.15 A.5.2 records it) and the
    Organization the allow-list maps it to."""
    who: dict[str, Any] = {"display": ae_title}
    if organization:
        who["reference"] = absolute(base, organization)
    return [
        {
            "type": {"coding": [coding(DCM, "110153", "Source Role ID")]},
            "who": who,
            "altId": ae_title,
            "requestor": True,
        }
    ]


def _requestors(access: Access | None, base: str) -> list[dict[str, Any]]:
    """The client application, and the user when the token names one besides the client
    (a backend service is its own requestor). The address is the client's."""
    client: dict[str, Any] = {"type": {"coding": [coding(DCM, "110153", "Source Role ID")]}}
    if access is None:
        client["who"] = {"display": "unauthenticated client"}
        client["requestor"] = True
        return [client]
    client["who"] = {"identifier": _identifier(access.issuer, access.client_id)}
    has_user = access.fhir_user is not None or access.subject != access.client_id
    client["requestor"] = not has_user
    if not has_user:
        _token(client, access)
        return [client]
    user: dict[str, Any] = {
        "type": {"coding": [coding(SECURITY_ROLE, "humanuser", "human user")]},
        "who": _user_reference(access, base),
        "requestor": True,
    }
    _token(user, access)
    return [client, user]


def _user_reference(access: Access, base: str) -> dict[str, Any]:
    if access.fhir_user:
        return {"reference": absolute(base, access.fhir_user)}
    return {"identifier": _identifier(access.issuer, access.subject)}


def _identifier(system: str, value: str) -> dict[str, str]:
    return {"system": system, "value": value} if system else {"value": value}


def _token(agent: dict[str, Any], access: Access) -> None:
    """BALP: the token's identifier (jti) is the agent's policy."""
    if access.token_id:
        agent["policy"] = [access.token_id]


def _message(details: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """An HL7 v2 message: its Message Control ID (MSH-10) and the rest as details."""
    values = dict(details)
    entity: dict[str, Any] = {
        "what": {"identifier": {"value": values.get("MessageControlId", "")}},
        "type": coding(ENTITY_TYPE, "2", "System Object"),
    }
    rest = [(k, v) for k, v in details if k != "MessageControlId"]
    if rest:
        entity["detail"] = [{"type": k, "valueString": v} for k, v in rest]
    return entity


def _entities(seen: Observed, base: str, patients: Sequence[str]) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    kind, id_ = seen.resource_type, seen.id
    is_query = seen.query is not None and (id_ is None or seen.interaction.startswith("search"))
    if kind is not None and id_ is not None and not is_query and kind != "Patient":
        target = f"{kind}/{id_}" + (f"/_history/{seen.version}" if seen.version else "")
        entities.append(_entity(base, target, ("2", "System Object"), ("4", "Domain Resource")))
    if is_query:
        text = f"{kind or ''}?{seen.query}"
        entities.append(
            {
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "24", "Query"),
                "query": base64.b64encode(text.encode()).decode("ascii"),
            }
        )
    for study in seen.studies:
        entity: dict[str, Any] = {
            "what": {"identifier": {"type": STUDY_UID_TYPE, "value": study}},
            "type": coding(ENTITY_TYPE, "2", "System Object"),
            "role": coding(OBJECT_ROLE, "3", "Report"),
        }
        if seen.details:
            entity["detail"] = [{"type": k, "valueString": v} for k, v in seen.details]
        entities.append(entity)
    if seen.interaction in HL7_EVENTS:
        entities.append(_message(seen.details))
    for identifier in seen.patient_identifiers:
        entities.append(
            {
                "what": {"identifier": {"value": identifier}},
                "type": coding(ENTITY_TYPE, "1", "Person"),
                "role": coding(OBJECT_ROLE, "1", "Patient"),
            }
        )
    for patient in patients:
        target = f"Patient/{patient}"
        if kind == "Patient" and patient == id_ and seen.version and not is_query:
            target += f"/_history/{seen.version}"
        entities.append(_entity(base, target, ("1", "Person"), ("1", "Patient")))
    entities.append(
        {
            "type": coding(BALP_ENTITY_TYPE, "XrequestId", "X-Request-Id"),
            "what": {"identifier": {"value": seen.context.request_id}},
        }
    )
    return entities


def _entity(
    base: str, target: str, type_: tuple[str, str], role: tuple[str, str]
) -> dict[str, Any]:
    return {
        "what": {"reference": absolute(base, target)},
        "type": coding(ENTITY_TYPE, *type_),
        "role": coding(OBJECT_ROLE, *role),
    }


def absolute(base: str, reference: str) -> str:
    """``reference`` under ``base`` (already absolute references are kept)."""
    if not base or "://" in reference:
        return reference
    return f"{base.rstrip('/')}/{reference}"
