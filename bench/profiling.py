"""Sampling profile of the running server with py-spy (``make bench ARGS="--profile"``).

py-spy attaches to the server's pid for the length of a ``with`` block, samples every thread
that is not idle (the event loop and the SQLite threads alike) 200 times a second, and writes
collapsed stacks; :attr:`Profiler.report` then lists the functions holding the most samples,
by their own time and including what they call. Attaching needs ptrace rights (root, or
``kernel.yama.ptrace_scope = 0``); without them the report says so and nothing else changes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import TracebackType

TOP = 18


def _py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    def __init__(self, pid: int, *, enabled: bool = True, rate: int = 200) -> None:
        self._pid = pid
        self._enabled = enabled
        self._rate = rate
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self.report = ""

    def __enter__(self) -> Profiler:
        if not self._enabled:
            return self
        binary = _py_spy()
        if binary is None:
            self.report = "profile: py-spy is not installed"
            return self
        self._dir = Path(tempfile.mkdtemp(prefix="fhir-bench-prof-"))
        command = [
            binary, "record", "--pid", str(self._pid), "--rate", str(self._rate),
            "--format", "raw", "--output", str(self._dir / "stacks.txt"), "--nonblocking",
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._process is None or self._dir is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            _, stderr = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _, stderr = self._process.communicate()
        stacks = self._dir / "stacks.txt"
        if stacks.exists() and stacks.stat().st_size:
            self.report = summarize(stacks.read_text(encoding="utf-8", errors="replace"))
        else:
            self.report = f"profile: py-spy recorded nothing ({stderr.decode()[-300:].strip()})"
        shutil.rmtree(self._dir, ignore_errors=True)


def summarize(collapsed: str, top: int = TOP) -> str:
    """The functions with the most samples, self and inclusive, from collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "profile: no samples"
    lines = [f"profile (py-spy, {total:,} samples of non-idle server threads)", "  self time:"]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    lines.append("  inclusive, fhir_server code:")
    ours = [(name, n) for name, n in inclusive.most_common() if "fhir_server/" in name]
    lines += [f"    {n / total:6.1%}  {name}" for name, n in ours[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``function (path/to/file.py:123)`` -> ``function (pkg/file.py)``, lines merged."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "fhir_server/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) :]
            break
    return f"{name} ({path})"
