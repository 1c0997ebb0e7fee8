"""The audit trail on a real application (SQLite, the real write pipeline, the REST door):
identified requests and failed authentications become stored AuditEvents, off the response
path; unidentified successes and the trail's own writes are not audited; AuditEvents cannot
be changed or deleted (CN-4.1.4, RO-24)."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from fhir_server.audit.append_only import APPEND_ONLY
from fhir_server.audit.trail import AUDIT_CHANNEL, AuditTrail
from fhir_server.bootstrap import Application, build
from fhir_server.core import fhirjson
from fhir_server.core.access import Access, ResourceScope
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, ResourceNotFound, Unauthenticated
from fhir_server.events.hooks import InteractionDone
from fhir_server.settings import Settings
from fhir_server.validation import validate_structure
from tests.conftest import asgi_client
from tests.mongoeco.fixture import database_url

BASE = "http://testserver/fhir"
SCOPES = (ResourceScope("user", "*", frozenset("cruds"), text="user/*.cruds"),)
ALICE = Access(SCOPES, client_id="app-1", subject="alice", fhir_user="Practitioner/p1")


def rest(access: Access | None = ALICE, channel: str = "rest") -> RequestContext:
    return RequestContext(channel=channel, base_url=BASE, access=access, client_address="10.0.0.7")


@asynccontextmanager
async def audited(tmp_path: Path, **options: Any) -> AsyncIterator[tuple[Application, AuditTrail]]:
    store = options.pop("store", None)
    application = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d", store=store),
        relay_poll_interval=0.05,
    )
    trail = AuditTrail(application.service, flush_interval=options.pop("flush_interval", 0.05),
                       **options)  # fmt: skip
    trail.register(application.hooks)
    # The application's own trail hears the same hooks: left unstarted, it stores nothing, so
    # what is stored is this trail's alone (started, it flushed its copies after 0.5 s and a
    # slow run counted every event twice).
    application.audit = trail
    await application.start()
    await trail.start()
    try:
        yield application, trail
    finally:
        await trail.stop()
        await application.stop()


async def stored(application: Application) -> list[dict[str, Any]]:
    found = await application.service.search_type(
        RequestContext(), "AuditEvent", [("_count", "1000")]
    )
    events = [e["resource"] for e in fhirjson.loads(fhirjson.dumps(found)).get("entry", [])]
    for event in events:
        issues = validate_structure(event)
        assert issues == [], [(i.expression, i.diagnostics) for i in issues]
    return events


async def create(application: Application, body: dict[str, Any]) -> str:
    written = await application.service.create(RequestContext(), body["resourceType"], body)
    return written.version.id


def references(event: dict[str, Any], role: str) -> list[str]:
    return [
        e["what"]["reference"] for e in event["entity"] if e.get("role", {}).get("code") == role
    ]


async def test_ro_24_identified_requests_are_audited_with_their_patient(tmp_path: Path) -> None:
    await identified_requests_are_audited(tmp_path)


@pytest.mark.mongo
async def test_ro_24_identified_requests_are_audited_on_mongodb(
    tmp_path: Path, mongo_server: str
) -> None:
    await identified_requests_are_audited(tmp_path, database_url(mongo_server, str(tmp_path)))


async def identified_requests_are_audited(tmp_path: Path, store: str | None = None) -> None:
    async with audited(tmp_path, store=store) as (application, trail):
        patient = await create(application, {"resourceType": "Patient", "gender": "female"})
        observation = await create(
            application,
            {
                "resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                "subject": {"reference": f"Patient/{patient}"},
            },
        )  # fmt: skip
        hooks = application.hooks
        await hooks.interaction_done(
            rest(), InteractionDone("read", 200, "Observation", observation, "1")
        )
        await hooks.interaction_done(rest(), InteractionDone("read", 200, "Patient", patient, "1"))
        await hooks.interaction_done(
            rest(), InteractionDone("search-type", 200, "Observation", query="code=pulse",
                                    patients=(patient,))
        )  # fmt: skip
        await trail.stop()
        events = await stored(application)
        assert trail.recorded == 3
        assert len(events) == 3
        by_interaction = {e["subtype"][0]["code"]: e for e in events if e["action"] != "E"}
        read = next(e for e in events if references(e, "4"))
        assert references(read, "4") == [f"{BASE}/Observation/{observation}/_history/1"]
        assert references(read, "1") == [f"{BASE}/Patient/{patient}"]  # its compartment
        assert read["agent"][0]["network"] == {"address": "10.0.0.7", "type": "2"}
        assert read["agent"][1]["who"] == {"reference": f"{BASE}/Practitioner/p1"}
        assert by_interaction["read"]["outcome"] == "0"
        search = next(e for e in events if e["action"] == "E")
        query = next(e["query"] for e in search["entity"] if "query" in e)
        assert base64.b64decode(query) == b"Observation?code=pulse"
        # Who accessed this patient's record: every event names the patient.
        about = await application.service.search_type(
            RequestContext(), "AuditEvent", [("patient", f"Patient/{patient}")]
        )
        assert len(about.get("entry", [])) == 3


async def test_ro_24_audited_resources_can_still_be_deleted_and_missing_ones_audited(
    tmp_path: Path,
) -> None:
    """AuditEvents state past facts: a read of an unknown id is recorded, and a Patient whose
    reads were recorded can still be deleted (no referential-integrity link back to it)."""
    async with audited(tmp_path) as (application, trail):
        patient = await create(application, {"resourceType": "Patient"})
        hooks = application.hooks
        await hooks.interaction_done(rest(), InteractionDone("read", 200, "Patient", patient, "1"))
        await hooks.interaction_failed(rest(), "read", ResourceNotFound("Patient/x is not known"))
        await trail.stop()
        assert (trail.recorded, trail.lost) == (2, 0)
        await application.service.delete(RequestContext(), "Patient", patient)
        failed = [e for e in await stored(application) if e["outcome"] != "0"]
        assert [(e["outcome"], e["outcomeDesc"]) for e in failed] == [
            ("4", "Patient/x is not known")
        ]


async def test_cn_4_1_4_a_deleted_resource_is_audited_with_the_patient_it_had(
    tmp_path: Path,
) -> None:
    async with audited(tmp_path) as (application, trail):
        patient = await create(application, {"resourceType": "Patient"})
        flag = await create(
            application,
            {"resourceType": "Flag", "status": "active", "code": {"text": "x"},
             "subject": {"reference": f"Patient/{patient}"}},
        )  # fmt: skip
        gone = await application.service.delete(RequestContext(), "Flag", flag)
        assert gone.version is not None
        done = InteractionDone("delete", 204, "Flag", flag, str(gone.version.version))
        await application.hooks.interaction_done(rest(), done)
        await trail.stop()
        [event] = await stored(application)
        assert event["action"] == "D"
        assert references(event, "1") == [f"{BASE}/Patient/{patient}"]


async def test_cn_4_1_4_failed_authentication_is_recorded_without_identity(
    tmp_path: Path,
) -> None:
    async with audited(tmp_path) as (application, trail):
        error = Unauthenticated("The access token is missing")
        await application.hooks.interaction_failed(rest(access=None), "search-type", error)
        await application.hooks.interaction_failed(rest(), "read", Forbidden("scope denies"))
        await trail.stop()
        events = await stored(application)
        login = next(e for e in events if e["type"]["code"] == "110114")
        assert login["outcome"] == "4"
        assert login["outcomeDesc"] == "The access token is missing"
        assert login["agent"][0]["who"] == {"display": "unauthenticated client"}
        assert login["agent"][0]["network"]["address"] == "10.0.0.7"
        denied = next(e for e in events if e["type"]["code"] == "rest")
        assert (denied["outcome"], denied["outcomeDesc"]) == ("4", "scope denies")


async def test_ro_24_no_audit_without_identity_nor_of_the_audit_channel(tmp_path: Path) -> None:
    async with audited(tmp_path) as (application, trail):
        hooks = application.hooks
        await hooks.interaction_done(
            rest(access=None), InteractionDone("read", 200, "Patient", "a")
        )
        await hooks.interaction_failed(rest(access=None), "read", ResourceNotFound("unknown"))
        own = rest(channel=AUDIT_CHANNEL)
        await hooks.interaction_done(own, InteractionDone("create", 201, "AuditEvent", "b"))
        await hooks.interaction_failed(own, "create", Unauthenticated("no"))
        await trail.stop()
        assert await stored(application) == []
        assert (trail.recorded, trail.dropped, trail.lost) == (0, 0, 0)


async def test_ro_24_a_full_queue_drops_counts_and_logs_but_never_blocks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    application = build(Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"))
    trail = AuditTrail(application.service, queue_size=2)
    trail.register(application.hooks)
    await application.start()
    try:
        started = time.perf_counter()
        with caplog.at_level(logging.ERROR, logger="fhir_server.audit.trail"):
            for n in range(5):
                done = InteractionDone("read", 200, "Patient", f"p{n}")
                await application.hooks.interaction_done(rest(), done)
        assert time.perf_counter() - started < 1.0
        assert trail.dropped == 3
        assert "AUDIT EVENTS DROPPED" in caplog.text
        await trail.start()
        await trail.stop()
        assert trail.recorded == 2
        assert len(await stored(application)) == 2
    finally:
        await application.stop()


async def test_ro_24_stop_flushes_what_is_queued_and_being_batched(tmp_path: Path) -> None:
    async with audited(tmp_path, flush_interval=30.0, batch_size=7) as (application, trail):
        for n in range(20):
            done = InteractionDone("read", 200, "Patient", f"p{n}")
            await application.hooks.interaction_done(rest(), done)
        await asyncio.sleep(0.05)  # the task is now collecting a batch
        await asyncio.wait_for(trail.stop(), timeout=10)
        assert (trail.recorded, trail.lost) == (20, 0)
        assert len(await stored(application)) == 20


async def test_ro_24_the_trail_writes_in_the_background(tmp_path: Path) -> None:
    async with audited(tmp_path) as (application, trail):
        await application.hooks.interaction_done(rest(), InteractionDone("capabilities", 200))
        for _ in range(100):
            if trail.recorded:
                break
            await asyncio.sleep(0.02)
        assert trail.recorded == 1
        [event] = await stored(application)
        assert (event["action"], event["subtype"][0]["code"]) == ("R", "capabilities")


async def test_cn_4_1_4_audit_events_cannot_be_changed_or_deleted(tmp_path: Path) -> None:
    async with audited(tmp_path) as (application, trail), asgi_client(application) as client:
        await application.hooks.interaction_done(rest(), InteractionDone("capabilities", 200))
        await trail.stop()
        [event] = await stored(application)
        url = f"/fhir/AuditEvent/{event['id']}"
        changed = {**event, "outcome": "8"}
        for response in (
            await client.put(url, json=changed),
            await client.patch(
                url, json=[{"op": "replace", "path": "/outcome", "value": "8"}],
                headers={"Content-Type": "application/json-patch+json"},
            ),
            await client.delete(url),
        ):  # fmt: skip
            assert response.status_code == 422, response.text
            assert response.json()["issue"][0]["diagnostics"] == APPEND_ONLY
        assert len((await client.get(f"{url}/_history")).json()["entry"]) == 1
        # External systems may still send their own AuditEvents.
        external = {k: v for k, v in event.items() if k not in ("id", "meta")}
        external["agent"] = [{"who": {"display": "another system"}, "requestor": True}]
        created = await client.post("/fhir/AuditEvent", json=external)
        assert created.status_code == 201, created.text
