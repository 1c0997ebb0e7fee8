"""Waiting with a timeout in the background loops, without ever losing a cancel.

Python 3.11's ``asyncio.wait_for`` can turn a cancel that meets its timeout into a
TimeoutError; a ``while True`` loop that treats TimeoutError as "nothing happened, poll again"
then never stops, and the ``stop()`` that cancelled it waits forever (seen as a rare hang at
the end of a test module). :func:`wait_within` raises TimeoutError only for a real timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def wait_within(awaitable: Awaitable[T], seconds: float) -> T:
    """``await awaitable`` for at most ``seconds``: its result, TimeoutError when the
    time ran out, CancelledError whenever the calling task is being cancelled."""
    try:
        async with asyncio.timeout(seconds):
            return await awaitable
    except TimeoutError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError from None
        raise
