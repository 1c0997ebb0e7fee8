"""The one bridge between authlib's synchronous OAuth core and our asyncio world.

authlib 1.x has no async provider (its maintainer: "not ready for async providers… v2.0"). Each
OAuth call therefore runs in a worker thread (:meth:`LoopBridge.run_sync`), and the callbacks
authlib makes from there (query a client, take a code, save a token) reach the async record
port by scheduling coroutines back on the event loop (:meth:`LoopBridge.wait`). The loop is
never blocked; a thread waits instead.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

T = TypeVar("T")
P = ParamSpec("P")

#: How long a callback may wait for the loop (a stuck store must not hang a worker forever).
CALLBACK_TIMEOUT_SECONDS = 30.0


class LoopBridge:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run_sync(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func`` in a worker thread; it may call :meth:`wait` to await coroutines."""
        self._loop = asyncio.get_running_loop()
        return await asyncio.to_thread(functools.partial(func, *args, **kwargs))

    def wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """From a worker thread started by :meth:`run_sync`: run ``coroutine`` on the loop and
        return its result (or raise its exception)."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError("LoopBridge.wait called outside run_sync")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(CALLBACK_TIMEOUT_SECONDS)
