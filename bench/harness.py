"""The server under benchmark: a real ``fhir-server serve`` process on loopback, and its resources.

    with ServerProcess(env={"FHIR_SERVER_SQLITE_SYNCHRONOUS": "NORMAL"}) as server:
        idle = server.rss_bytes()
        cpu = server.cpu_seconds()
        with server.sampler() as rss:          # RSS every 100 ms in a thread
            ...                                 # drive load at server.base_url
        print(rss.peak, server.cpu_seconds() - cpu)

``ServerProcess`` picks a free port on 127.0.0.1, makes a fresh temporary data directory (or
uses ``data_dir``, e.g. a store loaded beforehand, which it then leaves in place), starts
``python -m fhir_server serve`` with the extra environment, and waits until
``GET /fhir/metadata`` answers 200 (a timeout or an early exit raises :class:`ServerError` with
the server's log). On exit it stops the server (SIGTERM, then SIGKILL after ``stop_timeout``)
and removes its temporary directory (log included). It is a context manager, sync or async.

Resource figures come from ``/proc`` (Linux): ``rss_bytes`` is VmRSS of the server and of any
child processes; ``cpu_seconds`` is user + system time of every thread of the server (and of
live children) from ``/proc/<pid>/stat``, in clock ticks of ``SC_CLK_TCK`` (10 ms resolution
at the usual 100 Hz: measure intervals of at least a few seconds).
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ServerError(RuntimeError):
    """The server did not start, or died; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, port)) == 0


class ServerProcess:
    """``fhir-server serve`` on a free loopback port, for the length of a ``with`` block."""

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        log_level: str = "warning",
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        self._given_data_dir = data_dir
        self._env = dict(env or {})
        self._args = list(args)
        self._log_level = log_level
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self.temp_dir: Path | None = None
        self.data_dir: Path | None = None
        self.log_path: Path | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (the FHIR base is ``base_url + "/fhir"``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServerError("the server is not running")
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self) -> ServerProcess:
        if self._process is not None:
            raise ServerError("already started")
        self.temp_dir = Path(tempfile.mkdtemp(prefix="fhir-bench-"))
        self.data_dir = self._given_data_dir or self.temp_dir / "data"
        self.log_path = self.temp_dir / "server.log"
        try:
            for _ in range(3):  # the free port may be taken by someone else before we bind it
                self.port = free_port()
                self._spawn()
                if self._wait_ready():
                    return self
            raise ServerError(f"no free port after 3 attempts\n{self.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> ServerProcess:
        import asyncio

        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    def log_tail(self, limit: int = 4000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_bytes()[-limit:].decode("utf-8", "replace")
        return f"server log ({self.log_path}):\n{text}"

    def _spawn(self) -> None:
        assert self.log_path is not None and self.data_dir is not None
        command = [sys.executable, "-m", "fhir_server", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        command += ["--log-level", self._log_level]
        if "--auth" not in self._args:
            command += ["--auth", "off"]  # the benchmarks measure the FHIR path, not tokens
        for door in ("--dicom-port", "--mllp-port"):  # the DICOM and MLLP doors only if asked
            if door not in self._args:
                command += [door, "0"]
        command += list(self._args)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self._env},
            )

    def _wait_ready(self) -> bool:
        """True when up; False when it exited because the port was taken; raises otherwise."""
        assert self._process is not None
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                if "address already in use" in self.log_tail().lower():
                    return False
                raise ServerError(f"the server exited while starting\n{self.log_tail()}")
            if self._metadata_status() == 200:
                return True
            time.sleep(0.05)
        raise ServerError(
            f"no 200 from /fhir/metadata in {self._start_timeout} s\n{self.log_tail()}"
        )

    def _metadata_status(self) -> int | None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", "/fhir/metadata")
            response = connection.getresponse()
            response.read()
            return response.status
        except OSError:
            return None
        finally:
            connection.close()

    # -- resources (from /proc) ---------------------------------------------------------

    def processes(self) -> list[int]:
        """The server's pid and the pids of its live descendants."""
        return [self.pid, *_descendants(self.pid)]

    def rss_bytes(self) -> int:
        """Resident set size now, of the server and its children."""
        return sum(_rss_of(pid) for pid in self.processes())

    def peak_rss_bytes(self) -> int:
        """The server's own lifetime high-water mark of RSS (VmHWM)."""
        return _status_kib(self.pid, "VmHWM:") * 1024

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by every thread of the server and its children."""
        return sum(_cpu_of(pid) for pid in self.processes())

    def sampler(self, interval: float = 0.1) -> Sampler:
        return Sampler(self.rss_bytes, interval)


class Sampler:
    """Calls ``measure`` every ``interval`` seconds in a thread; keeps peak, mean and count."""

    def __init__(self, measure: Callable[[], int], interval: float = 0.1) -> None:
        self._measure = measure
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak = 0
        self.samples = 0
        self._total = 0

    @property
    def mean(self) -> float:
        return self._total / self.samples if self.samples else 0.0

    def start(self) -> Sampler:
        self._sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._sample()

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        try:
            value = self._measure()
        except (OSError, ServerError):
            return  # the process is gone: nothing more to sample
        self.peak = max(self.peak, value)
        self.samples += 1
        self._total += value


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read()


def _stat_fields(pid: int) -> list[str]:
    text = _read(f"/proc/{pid}/stat")
    return text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 is index 0


def _cpu_of(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)


def _rss_of(pid: int) -> int:
    try:
        return int(_read(f"/proc/{pid}/statm").split()[1]) * _PAGE
    except FileNotFoundError:
        return 0


def _status_kib(pid: int, key: str) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    children: list[int] = []
    for task in tasks:
        try:
            children += [int(c) for c in _read(f"/proc/{pid}/task/{task}/children").split()]
        except FileNotFoundError:
            continue
    return children


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = _children(pid)
    while pending:
        child = pending.pop()
        found.append(child)
        pending += _children(child)
    return found
