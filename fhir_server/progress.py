"""A progress line for long commands (``fhir-server migrate``): done / total, rate and ETA."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    """Versions done / total, rate and ETA on ``stream``: one line redrawn on a terminal, a
    plain line every ``interval`` seconds otherwise."""

    def __init__(
        self, total: int, stream: TextIO, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.done = 0
        self.copied = 0
        self._stream = stream
        self._tty = stream.isatty()
        self._interval = 0.2 if self._tty else 5.0
        self._clock = clock
        self._start = self._last = clock()

    def advance(self, *, copied: int = 0, skipped: int = 0) -> None:
        self.done += copied + skipped
        self.copied += copied
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._draw(now)

    def finish(self) -> None:
        self._draw(self._clock())
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.copied / elapsed
        left = self.total - self.done
        eta = _clock_time(0) if left <= 0 else "--:--:--" if rate <= 0 else _clock_time(left / rate)
        share = self.done / self.total if self.total else 1.0
        text = (
            f"{self.done:,}/{self.total:,} versions ({share:.1%}), {rate:,.0f} copied/s, ETA {eta}"
        )
        if self._tty:
            filled = int(share * 30)
            self._stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {text}\x1b[K")
        else:
            self._stream.write(f"migrate: {text}\n")
        self._stream.flush()


def _clock_time(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
