"""Waiting with a timeout in the background loops, and for a worker thread's call, without ever
losing a cancel.

Python 3.11's ``asyncio.wait_for`` can turn a cancel that meets its timeout into a
TimeoutError; a ``while True`` loop that treats TimeoutError as "nothing happened, poll again"
then never stops, and the ``stop()`` that cancelled it waits forever (seen as a rare hang at
the end of a test module). :func:`wait_within` raises TimeoutError only for a real timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
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


async def in_thread(function: Callable[[], T]) -> T:
    """``function()`` in a worker thread (of the loop's default executor). If the caller is
    cancelled meanwhile, the thread's call is still waited for before the cancellation goes on,
    so that the caller's clean-up (closing, unlinking) never runs while a file operation is
    still in progress, and a commit made in the thread is never mistaken for none."""
    future = asyncio.get_running_loop().run_in_executor(None, function)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise
