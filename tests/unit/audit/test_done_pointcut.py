"""INTERACTION_DONE, the doors' notification of a success: every hook is told, and a failing
hook is logged, never raised into the door's response path."""

from __future__ import annotations

import logging

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.events.hooks import Hooks, InteractionDone


async def test_interaction_done_tells_every_hook_and_swallows_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks = Hooks()
    seen: list[str] = []

    async def broken(ctx: RequestContext, done: InteractionDone) -> None:
        raise RuntimeError("audit store unavailable")

    async def recorder(ctx: RequestContext, done: InteractionDone) -> None:
        seen.append(f"{done.interaction}:{done.status}:{done.resource_type}/{done.id}")

    hooks.on_interaction_done(broken)
    hooks.on_interaction_done(recorder)
    with caplog.at_level(logging.ERROR, logger="fhir_server.events.hooks"):
        await hooks.interaction_done(RequestContext(), InteractionDone("read", 200, "Patient", "1"))
    assert seen == ["read:200:Patient/1"]
    assert "INTERACTION_DONE hook" in caplog.text
