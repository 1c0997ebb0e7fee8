"""core/waiting.wait_within: the background loops' poll never swallows a cancel (Python 3.11's
wait_for could turn a cancel that met its timeout into a TimeoutError, and a loop polling with
``suppress(TimeoutError)`` then never stopped: a rare hang when the application stopped)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from fhir_server.core.waiting import wait_within


async def test_result_and_timeout() -> None:
    event = asyncio.Event()
    event.set()
    assert await wait_within(event.wait(), 1.0) is True
    with pytest.raises(TimeoutError):
        await wait_within(asyncio.Event().wait(), 0.01)


async def test_a_polling_loop_always_stops_when_cancelled() -> None:
    """The loop is woken and cancelled in the same turn of the event loop (a message arrives
    as the application stops): asyncio.wait_for lost that cancel every time here."""
    for round_ in range(50):
        wake = asyncio.Event()

        async def poll(wake: asyncio.Event = wake) -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    await wait_within(wake.wait(), 0.05)
                wake.clear()

        task = asyncio.create_task(poll())
        await asyncio.sleep(0.001)
        wake.set()
        await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2.0)
        assert done, f"round {round_}: the loop swallowed its cancel"
        assert task.cancelled()
