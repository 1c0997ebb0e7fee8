"""The outbox relay: hands committed changes to the POST_COMMIT hooks, after commit, retried.

Each hook has its own durable cursor in the store, so a hook that fails is retried with backoff
without re-running the hooks that already handled the event, and events survive restarts. The
events of one pass that a hook handled are marked together (one durable write per hook and
pass, not one per event); a crash before that mark offers them again, as a crash between a
hook and its mark always could: delivery is at least once, and hooks are idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from fhir_server.core.clock import Clock, system_clock
from fhir_server.events.hooks import Hooks, PostCommitHook
from fhir_server.storage.port import OutboxEvent, ResourceStore

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        store: ResourceStore,
        hooks: Hooks,
        *,
        clock: Clock = system_clock,
        poll_interval: float = 1.0,
        batch_size: int = 100,
        max_backoff: float = 300.0,
    ) -> None:
        self._store = store
        self._hooks = hooks
        self._clock = clock
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._max_backoff = max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        if not self._hooks.post_commit:
            return
        self._store.add_commit_listener(self.wake)
        await self.run_once()  # registers each hook's cursor before the first request
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            except TimeoutError:
                # Python 3.11's wait_for could turn a cancel that met the timeout into a
                # TimeoutError, and the relay then never stopped: stop means stop.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from None
            self._wake.clear()
            try:
                while await self.run_once():
                    pass
            except Exception:
                log.exception("outbox relay pass failed; retrying")

    async def run_once(self) -> int:
        """Deliver what is due to every hook once; returns how many events were offered."""
        offered = 0
        for name, hook in self._hooks.post_commit.items():
            events = await self._store.pending_events(name, self._batch_size, self._clock())
            handled = [event.seq for event in events if await self._deliver(name, hook, event)]
            await self._store.mark_handled(name, *handled)
            offered += len(events)
        return offered

    async def _deliver(self, name: str, hook: PostCommitHook, event: OutboxEvent) -> bool:
        """Offer one event; False (and a retry scheduled) if the hook failed."""
        try:
            await hook(event)
        except Exception as exc:
            delay = min(self._max_backoff, self._poll_interval * 2 ** min(event.attempts, 16))
            log.warning(
                "POST_COMMIT hook %s failed on event %s (attempt %s): %s",
                name,
                event.seq,
                event.attempts + 1,
                type(exc).__name__,
            )
            retry_at = self._clock() + timedelta(seconds=delay)
            await self._store.mark_failed(name, event.seq, retry_at, f"{type(exc).__name__}: {exc}")
            return False
        return True
