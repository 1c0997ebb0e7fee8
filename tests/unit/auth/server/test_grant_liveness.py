"""A grant's liveness, checked on every FHIR request with a token of ours: revoked here, it is
dead at once; revoked through another replica (another OAuthState on the same store), it is
dead here within GRANT_CACHE_SECONDS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fhir_server.auth.server.state import GRANT_CACHE_SECONDS, GrantContext, OAuthState
from fhir_server.storage.sqlite import SqliteStore


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _now() -> datetime:
    return datetime.now(UTC)


async def test_revocation_here_is_immediate_and_elsewhere_within_the_cache_time(
    store: SqliteStore,
) -> None:
    ticks = Ticks()
    here = OAuthState(store.records, _now, monotonic=ticks)
    there = OAuthState(store.records, _now, monotonic=ticks)
    for grant_id in ("g1", "g2"):
        await here.save_grant(GrantContext(grant_id=grant_id, client_id="app", scope="x"), 600)
    assert await here.grant_active("g1") and await here.grant_active("g2")

    await here.revoke_grant("g1")
    assert not await here.grant_active("g1")  # this replica: at once

    await there.revoke_grant("g2")
    assert await here.grant_active("g2")  # the other replica's revocation: not yet seen
    ticks.now += GRANT_CACHE_SECONDS + 0.1
    assert not await here.grant_active("g2")  # … but within the cache time


async def test_unknown_and_empty_grants_are_never_live(store: SqliteStore) -> None:
    state = OAuthState(store.records, _now, monotonic=Ticks())
    assert not await state.grant_active("")
    assert not await state.grant_active("never-issued")
