"""The write pipeline's hook points work before any product hook exists: PRE_STORE and
PRE_COMMIT can veto (and a veto stores nothing), POST_COMMIT runs from the outbox after commit
and is retried until it succeeds, PRE_SHOW filters reads, INTERACTION_FAILED sees failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.bootstrap import Application, build
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, HookVeto
from fhir_server.events.hooks import Hooks, PendingWrite
from fhir_server.settings import Settings
from fhir_server.storage.port import OutboxEvent, ResourceVersion
from tests.api.test_http_read_write import PATIENT, json_of


class Recorder:
    def __init__(self) -> None:
        self.pre_store: list[PendingWrite] = []
        self.pre_commit: list[int] = []
        self.post_commit: list[tuple[str, int, str]] = []
        self.failed: list[str] = []
        self.fail_post_commit = 0

    def install(self, hooks: Hooks) -> None:
        hooks.on_pre_store(self.on_pre_store)
        hooks.on_pre_commit(self.on_pre_commit)
        hooks.on_post_commit("recorder", self.on_post_commit)
        hooks.on_pre_show(self.on_pre_show)
        hooks.on_interaction_failed(self.on_failed)

    async def on_pre_store(self, write: PendingWrite) -> None:
        self.pre_store.append(write)
        if write.resource is not None and write.resource.get("gender") == "unknown":
            raise HookVeto(
                "gender 'unknown' is refused by a test rule", expression=["Patient.gender"]
            )

    async def on_pre_commit(self, writes: Sequence[PendingWrite]) -> None:
        self.pre_commit.append(len(writes))

    async def on_post_commit(self, event: OutboxEvent) -> None:
        if self.fail_post_commit > 0:
            self.fail_post_commit -= 1
            raise RuntimeError("downstream unavailable")
        self.post_commit.append((event.id, event.version, event.interaction))

    async def on_pre_show(
        self, ctx: RequestContext, resources: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "birthDate"} for r in resources]

    async def on_failed(self, ctx: RequestContext, interaction: str, error: FhirError) -> None:
        self.failed.append(f"{interaction}:{type(error).__name__}")


@pytest.fixture
async def hooked(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Recorder, Application]]:
    recorder = Recorder()
    hooks = Hooks()
    recorder.install(hooks)
    application = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"),
        hooks=hooks,
        relay_poll_interval=0.02,
    )
    await application.start()
    app = create_app(application.service, application)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, recorder, application
    finally:
        await application.stop()


async def wait_for(condition: Any) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - polls a plain list
            await asyncio.sleep(0.01)


async def test_pre_store_sees_the_stored_form_and_can_veto(
    hooked: tuple[httpx.AsyncClient, Recorder, Application],
) -> None:
    client, recorder, _ = hooked
    created = json_of(await client.post("/fhir/Patient", json=PATIENT))
    write = recorder.pre_store[-1]
    assert write.interaction == "create" and write.version == 1
    assert write.resource is not None and write.resource["id"] == created["id"]
    assert write.resource["meta"]["versionId"] == "1"
    vetoed = await client.put(
        f"/fhir/Patient/{created['id']}", json={**PATIENT, "id": created["id"], "gender": "unknown"}
    )
    assert vetoed.status_code == 422
    assert json_of(vetoed)["issue"][0]["code"] == "business-rule"
    current = await client.get(f"/fhir/Patient/{created['id']}")
    assert json_of(current)["meta"]["versionId"] == "1"
    assert recorder.failed[-1] == "update:HookVeto"
    assert recorder.pre_store[-1].previous is not None  # hooks see the version being replaced


async def test_post_commit_runs_after_commit_and_is_retried(
    hooked: tuple[httpx.AsyncClient, Recorder, Application],
) -> None:
    client, recorder, _ = hooked
    recorder.fail_post_commit = 2
    created = json_of(await client.post("/fhir/Patient", json=PATIENT))
    await client.delete(f"/fhir/Patient/{created['id']}")
    await wait_for(lambda: len(recorder.post_commit) == 2)
    # Each event once, after its commit; the relay promises no order between events (the
    # create's retries back off, so the delete may be handed over first).
    assert sorted(recorder.post_commit, key=lambda e: e[1]) == [
        (created["id"], 1, "create"),
        (created["id"], 2, "delete"),
    ]
    assert recorder.pre_commit == [1, 1]


async def test_rejected_write_emits_no_event(
    hooked: tuple[httpx.AsyncClient, Recorder, Application],
) -> None:
    client, recorder, application = hooked
    response = await client.post("/fhir/Patient", json={**PATIENT, "gender": "unknown"})
    assert response.status_code == 422
    invalid = await client.post("/fhir/Patient", json={**PATIENT, "birthDate": "soon"})
    assert invalid.status_code == 422
    await application.relay.run_once()
    assert recorder.post_commit == []


async def test_pre_show_filters_what_is_read(
    hooked: tuple[httpx.AsyncClient, Recorder, Application],
) -> None:
    client, _, _ = hooked
    created = json_of(await client.post("/fhir/Patient", json=PATIENT))
    shown = json_of(await client.get(f"/fhir/Patient/{created['id']}"))
    assert "birthDate" not in shown and shown["gender"] == "male"


async def test_post_commit_events_survive_a_restart(tmp_path: Path) -> None:
    """An event committed while its hook was failing is delivered after a restart."""
    recorder = Recorder()
    recorder.fail_post_commit = 1000
    hooks = Hooks()
    recorder.install(hooks)
    first = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"),
        hooks=hooks,
        relay_poll_interval=0.02,
    )
    await first.start()
    written = await first.service.create(RequestContext(), "Patient", dict(PATIENT))
    await first.relay.run_once()
    await first.stop()
    assert recorder.post_commit == []

    healthy = Recorder()
    hooks2 = Hooks()
    healthy.install(hooks2)
    later = written.version.last_updated.replace(year=2999)  # past every retry back-off
    clock_later = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"),
        hooks=hooks2,
        clock=lambda: later,
        relay_poll_interval=0.02,
    )
    await clock_later.start()
    try:
        await wait_for(lambda: len(healthy.post_commit) == 1)
        assert healthy.post_commit == [(written.version.id, 1, "create")]
    finally:
        await clock_later.stop()


async def test_persistent_conflict_from_another_writer_is_409(tmp_path: Path) -> None:
    """A writer outside this process (simulated by writing to the store directly from a
    PRE_STORE hook, past the in-process lock) gets in first on every retry: 409, nothing lost."""
    hooks = Hooks()
    application = build(Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"), hooks=hooks)

    async def other_writer(write: PendingWrite) -> None:
        if write.interaction != "update":
            return
        current = await application.store.read(write.resource_type, write.id)
        assert current is not None and current.body is not None
        bumped = ResourceVersion(
            current.resource_type, current.id, current.version + 1, current.last_updated,
            "PUT", current.body,
        )  # fmt: skip
        async with application.store.unit_of_work() as uow:
            uow.put(bumped, expected_version=current.version, interaction="update")

    hooks.on_pre_store(other_writer)
    await application.start()
    try:
        transport = httpx.ASGITransport(app=create_app(application.service, application))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            id = json_of(await client.post("/fhir/Patient", json=PATIENT))["id"]
            response = await client.put(f"/fhir/Patient/{id}", json={**PATIENT, "id": id})
            assert response.status_code == 409
            assert json_of(response)["issue"][0]["code"] == "conflict"
            history = json_of(await client.get(f"/fhir/Patient/{id}/_history?_count=50"))
            assert len(history["entry"]) == 1 + 5  # the other writer's versions are all kept
    finally:
        await application.stop()
