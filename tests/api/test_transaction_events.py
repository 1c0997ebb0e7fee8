"""Events of a transaction (ARCHITECTURE.md, write pipeline steps 5 and 7): PRE_COMMIT sees the
whole Bundle at once, the outbox rows of all its entries commit in the same transaction, so the
POST_COMMIT hooks find every write of the Bundle already stored when the first event arrives,
and a rolled-back transaction leaves no event at all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import pytest

from fhir_server.api.app import create_app
from fhir_server.bootstrap import Application, build
from fhir_server.events.hooks import Hooks, PendingWrite
from fhir_server.settings import Settings
from fhir_server.storage.port import HistoryQuery, OutboxEvent
from tests.api.test_http_transaction import json_of, patient, post, tx


class Watcher:
    def __init__(self) -> None:
        self.application: Application | None = None
        self.units: list[int] = []
        self.events: list[tuple[str, str]] = []
        self.stored_at_first_event: int | None = None

    async def on_pre_commit(self, writes: Sequence[PendingWrite]) -> None:
        self.units.append(len(writes))

    async def on_post_commit(self, event: OutboxEvent) -> None:
        if self.stored_at_first_event is None:
            assert self.application is not None
            page = await self.application.store.history(HistoryQuery(count=1000))
            self.stored_at_first_event = len(page.entries)
        self.events.append((event.resource_type, event.interaction))


@pytest.fixture
async def watched(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Watcher, Application]]:
    watcher = Watcher()
    hooks = Hooks()
    hooks.on_pre_commit(watcher.on_pre_commit)
    hooks.on_post_commit("watcher", watcher.on_post_commit)
    application = build(
        Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "d"),
        hooks=hooks,
        relay_poll_interval=0.02,
    )
    watcher.application = application
    await application.start()
    transport = httpx.ASGITransport(app=create_app(application.service, application))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client, watcher, application
    finally:
        await application.stop()


async def test_a_transaction_commits_its_events_together(
    watched: tuple[httpx.AsyncClient, Watcher, Application],
) -> None:
    client, watcher, _ = watched
    bundle = tx(*(post(patient(f"ev-{n}")) for n in range(25)))
    json_of(await client.post("/fhir", json=bundle), 200)
    for _ in range(500):
        if len(watcher.events) == 25:
            break
        await asyncio.sleep(0.01)
    assert watcher.units == [25]  # PRE_COMMIT saw the whole Bundle in one call
    assert watcher.events == [("Patient", "create")] * 25
    assert watcher.stored_at_first_event == 25  # all visible when the first event was handed out


async def test_a_failed_transaction_leaves_no_event(
    watched: tuple[httpx.AsyncClient, Watcher, Application],
) -> None:
    client, watcher, application = watched
    bundle = tx(post(patient("ev-ok")), post(patient("ev-bad", birthDate="not a date")))
    json_of(await client.post("/fhir", json=bundle), 422)
    conflicting = tx(
        post(patient("ev-ok-2")),
        {"resource": {**patient("ev-x"), "id": "ev-x"},
         "request": {"method": "PUT", "url": "Patient/ev-x", "ifMatch": 'W/"3"'}},
    )  # fmt: skip
    json_of(await client.post("/fhir", json=conflicting), 412)
    await application.relay.run_once()
    assert watcher.events == []
    assert watcher.units == []  # nothing reached PRE_COMMIT either: validation failed first
