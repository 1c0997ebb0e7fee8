"""The AuditEvent of one request: IHE BALP shape (who, what, which patient, when, outcome, from
where), valid R4, and no value of any resource in it."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from fhir_server.audit.append_only import APPEND_ONLY, refuse_audit_changes
from fhir_server.audit.events import Observed, audit_event, restful_code
from fhir_server.core.access import Access, ResourceScope
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import HookVeto
from fhir_server.events.hooks import PendingWrite
from fhir_server.validation import validate_structure

BASE = "http://example.org/fhir"
WHEN = datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
READ_ALL = ResourceScope("user", "*", frozenset("rs"), text="user/*.rs")
PATIENT_READ = ResourceScope("patient", "*", frozenset("rs"), text="patient/*.rs")
USER = Access(
    (READ_ALL,), client_id="app-1", subject="alice", fhir_user="Practitioner/p1",
    issuer="https://auth.example.org", token_id="jti-1",
)  # fmt: skip
BACKEND = Access((READ_ALL,), client_id="backend-1", subject="backend-1")


def ctx(access: Access | None = USER, address: str | None = "10.1.2.3") -> RequestContext:
    return RequestContext(
        channel="rest", base_url=BASE, access=access, client_address=address, request_id="r-1"
    )


def build(seen: Observed, patients: tuple[str, ...] = ()) -> dict[str, Any]:
    event = audit_event(seen, base=BASE, observer="fhir-server", patients=patients)
    issues = validate_structure(event)
    assert issues == [], [(i.expression, i.diagnostics) for i in issues]
    return event


def by_role(event: dict[str, Any], role: str) -> list[dict[str, Any]]:
    return [e for e in event["entity"] if e.get("role", {}).get("code") == role]


def test_ro_24_read_says_who_what_which_patient_when_outcome_and_from_where() -> None:
    seen = Observed(ctx(), "read", 200, WHEN, "Observation", "o1", "3")
    event = build(seen, patients=("p9",))
    assert event["type"]["code"] == "rest"
    assert event["subtype"] == [
        {"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}
    ]
    assert (event["action"], event["outcome"], event["recorded"]) == (
        "R", "0", "2026-03-04T05:06:07.123Z",
    )  # fmt: skip
    client, user, server = event["agent"]
    assert client["who"] == {"identifier": {"system": "https://auth.example.org", "value": "app-1"}}
    assert client["requestor"] is False
    assert client["network"] == {"address": "10.1.2.3", "type": "2"}
    assert user["who"] == {"reference": f"{BASE}/Practitioner/p1"}
    assert (user["requestor"], user["policy"]) == (True, ["jti-1"])
    assert server["requestor"] is False
    assert event["source"]["type"][0]["code"] == "4"
    [resource] = by_role(event, "4")
    assert resource["what"] == {"reference": f"{BASE}/Observation/o1/_history/3"}
    [patient] = by_role(event, "1")
    assert patient["what"] == {"reference": f"{BASE}/Patient/p9"}
    assert patient["type"]["code"] == "1"
    request = [e for e in event["entity"] if e["type"]["code"] == "XrequestId"]
    assert request[0]["what"] == {"identifier": {"value": "r-1"}}


def test_ro_24_search_keeps_the_query_base64_encoded() -> None:
    seen = Observed(ctx(), "search-type", 200, WHEN, "Observation", query="code=1234-5")
    event = build(seen)
    [query] = by_role(event, "24")
    assert base64.b64decode(query["query"]).decode() == "Observation?code=1234-5"
    assert event["action"] == "E"
    assert by_role(event, "4") == []


def test_ro_24_a_backend_service_is_its_own_requestor() -> None:
    event = build(Observed(ctx(BACKEND), "create", 201, WHEN, "Patient", "p1", "1"), ("p1",))
    client, _server = event["agent"]
    assert (client["who"], client["requestor"]) == ({"identifier": {"value": "backend-1"}}, True)
    assert event["action"] == "C"
    [patient] = by_role(event, "1")
    assert patient["what"] == {"reference": f"{BASE}/Patient/p1/_history/1"}


def test_cn_4_1_4_failed_authentication_is_a_user_authentication_event() -> None:
    seen = Observed(
        ctx(None), "read", 401, WHEN, failure="The access token has expired",
        unauthenticated=True,
    )  # fmt: skip
    event = build(seen)
    assert event["type"]["code"] == "110114"
    assert {c["code"] for c in event["subtype"]} == {"110122", "read"}
    assert (event["outcome"], event["outcomeDesc"]) == ("4", "The access token has expired")
    client = event["agent"][0]
    assert client["who"] == {"display": "unauthenticated client"}
    assert client["requestor"] is True


@pytest.mark.parametrize(
    ("status", "outcome"), [(200, "0"), (201, "0"), (403, "4"), (404, "4"), (500, "8")]
)
def test_outcome_by_status(status: int, outcome: str) -> None:
    assert build(Observed(ctx(), "read", status, WHEN, "Patient", "x"))["outcome"] == outcome


def test_authorization_server_events_and_door_codes() -> None:
    token = build(Observed(ctx(), "token", 200, WHEN))
    assert token["type"]["code"] == "110114"
    assert [c["code"] for c in token["subtype"]] == ["110122", "token"]
    assert [c["code"] for c in build(Observed(ctx(), "introspect", 200, WHEN))["subtype"]] == [
        "introspect"
    ]
    assert restful_code("update-conditional") == "update"
    assert restful_code("search-compartment") == "search-type"
    assert restful_code("$everything") == "operation"


def write(interaction: str, version: int, resource: dict[str, Any] | None) -> PendingWrite:
    return PendingWrite(RequestContext(), interaction, "AuditEvent", "a1", version, resource, None)


async def test_cn_4_1_4_audit_events_are_append_only() -> None:
    await refuse_audit_changes(write("create", 1, {"resourceType": "AuditEvent"}))
    for refused in (write("update", 2, {"resourceType": "AuditEvent"}), write("delete", 2, None)):
        with pytest.raises(HookVeto) as veto:
            await refuse_audit_changes(refused)
        assert veto.value.diagnostics == APPEND_ONLY
    await refuse_audit_changes(
        PendingWrite(RequestContext(), "delete", "Patient", "p", 2, None, None)
    )
