"""Orthanc as a real DICOM peer, isolated in a private network namespace (tests and bench/).

Orthanc 1.10 has no bind-address option: its DICOM and HTTP ports listen on 0.0.0.0. So each
:class:`Orthanc` lives in its own network namespace holding only ``lo`` (an ``unshare -n`` holder
process, ``ip link set lo up``), and everything that must talk to it runs in that namespace too:

- processes: :meth:`Namespace.run` / :meth:`Namespace.popen` (``nsenter -t <pid> -n ...``), e.g.
  our server (``python -m fhir_server serve ...``), dcmtk tools, benchmark clients;
- Python code in this process: :meth:`Namespace.call` runs a function in a fresh thread that has
  entered the namespace (``setns(2)`` is per thread; sockets made there stay in the namespace,
  threads started there inherit it), e.g. pynetdicom requesters or httpx clients.

Everything is stopped by PID in :meth:`Orthanc.stop` / :meth:`Namespace.stop` (context managers
do it even when a test fails). No pytest import: ``bench/`` uses this module as well; tests call
:func:`unavailable_reason` and skip only when it is not None and ``CI`` is not set.

Usage::

    node = {"FHIR": ("FHIRSERVER", "127.0.0.1", 11112)}
    with Namespace() as ns, Orthanc(ns, modalities=node) as o:
        o.upload(Path("x.dcm").read_bytes())
        o.store_to("FHIR", o.studies())
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def unavailable_reason() -> str | None:
    """Why Orthanc tests cannot run here (not root, a tool missing), or None when they can."""
    if os.geteuid() != 0:
        return "Orthanc runs in a private network namespace, which needs root"
    for tool in (ORTHANC, "unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not Path(DICOMWEB_PLUGIN).exists():
        return f"the Orthanc DICOMweb plugin {DICOMWEB_PLUGIN} is not installed"
    return None


def _stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Namespace:
    """A private network namespace with only ``lo`` up, held by an ``unshare -n sleep`` process."""

    def __init__(self) -> None:
        self._holder: subprocess.Popen[bytes] | None = None
        self._children: list[subprocess.Popen[bytes]] = []

    @property
    def pid(self) -> int:
        if self._holder is None:
            raise RuntimeError("namespace not started")
        return self._holder.pid

    def start(self) -> Namespace:
        self._holder = subprocess.Popen(["unshare", "-n", "--", "sleep", "infinity"])
        deadline = time.monotonic() + 5
        own = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{self.pid}/ns/net") == own:  # until unshare has run
            if time.monotonic() > deadline or self._holder.poll() is not None:
                self.stop()
                raise RuntimeError("unshare -n did not create a network namespace")
            time.sleep(0.01)
        self.run(["ip", "link", "set", "lo", "up"], check=True)
        return self

    def _argv(self, argv: Iterable[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-n", "--", *argv]

    def run(
        self, argv: Iterable[str], env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a command to completion inside the namespace (``subprocess.run`` keywords)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("timeout", 120)
        return subprocess.run(self._argv(argv), env={**os.environ, **(env or {})}, **kwargs)

    def popen(
        self, argv: Iterable[str], env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> subprocess.Popen[bytes]:
        """Start a process inside the namespace; :meth:`stop` ends it (by PID) if still running."""
        process = subprocess.Popen(self._argv(argv), env={**os.environ, **(env or {})}, **kwargs)
        self._children.append(process)
        return process

    def call(self, function: Callable[[], T], timeout: float = 300.0) -> T:
        """Run ``function`` in a new thread that has entered the namespace; return its result."""
        results: list[T] = []
        errors: list[BaseException] = []

        def body() -> None:
            try:
                fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY)
                try:
                    libc = ctypes.CDLL(None, use_errno=True)
                    if libc.setns(fd, CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), "setns(CLONE_NEWNET) failed")
                finally:
                    os.close(fd)
                results.append(function())
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=body, name=f"netns-{self.pid}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"function in namespace {self.pid} still running after {timeout}s")
        if errors:
            raise errors[0]
        return results[0]

    def stop(self) -> None:
        for child in reversed(self._children):
            _stop_process(child)
        self._children.clear()
        if self._holder is not None:
            _stop_process(self._holder)
            self._holder = None

    def __enter__(self) -> Namespace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Orthanc:
    """One Orthanc with a generated configuration, in ``ns``; REST helpers over its HTTP port.

    ``modalities``: Orthanc modality id → (AE title, host, port), the peers Orthanc may C-MOVE or
    C-STORE to and accept storage-commitment reports from (e.g. our node at 127.0.0.1).
    """

    def __init__(
        self,
        ns: Namespace,
        *,
        aet: str = "ORTHANC",
        dicom_port: int = 4242,
        http_port: int = 8042,
        modalities: Mapping[str, tuple[str, str, int]] | None = None,
        workdir: Path | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.ns = ns
        self.aet = aet
        self.dicom_port = dicom_port
        self.http_port = http_port
        self.base = f"http://127.0.0.1:{http_port}"
        self.modalities = dict(modalities or {})
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="orthanc-"))
        self.extra_config = dict(config or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.workdir / "orthanc.log"

    def configuration(self) -> dict[str, Any]:
        return {
            "Name": "orthanc-test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "Plugins": [DICOMWEB_PLUGIN],
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowMove": True,
            "DicomAlwaysAllowGet": True,
            "DicomModalities": {
                name: {
                    "AET": ae,
                    "Host": host,
                    "Port": port,
                    "AllowStorageCommitment": True,
                    "AllowGet": True,
                    "AllowMove": True,
                }
                for name, (ae, host, port) in self.modalities.items()
            },
            "SaveJobs": False,
            "ExecuteLuaEnabled": False,
            "StableAge": 1,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Ssl": False},
            **self.extra_config,
        }

    def start(self, timeout: float = 30.0) -> Orthanc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "orthanc.json"
        config.write_text(json.dumps(self.configuration(), indent=2))
        with self.log.open("wb") as log:
            self.process = self.ns.popen(
                [ORTHANC, str(config)], env={"TCP_NODELAY": "1"}, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: {self.log.read_text(errors='replace')}")
            try:
                self.get("/system")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        self.stop()
        output = self.log.read_text(errors="replace")
        raise RuntimeError(f"Orthanc did not answer /system: {output}")

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            self.process = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Orthanc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # REST -----------------------------------------------------------------------------------

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str = ""
    ) -> Any:
        """One REST call inside the namespace; the JSON answer (or raw bytes if not JSON)."""

        def call() -> bytes:
            req = urllib.request.Request(self.base + path, data=body, method=method)
            if content_type:
                req.add_header("Content-Type", content_type)
            with urllib.request.urlopen(req, timeout=120) as response:
                data: bytes = response.read()
                return data

        data = self.ns.call(call)
        try:
            return json.loads(data) if data else None
        except ValueError:
            return data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post_json(self, path: str, payload: Any) -> Any:
        return self.request("POST", path, json.dumps(payload).encode(), "application/json")

    def upload(self, part10: bytes) -> dict[str, Any]:
        """POST /instances: store one Part-10 file; Orthanc's answer (ID, ParentStudy, ...)."""
        answer: dict[str, Any] = self.request("POST", "/instances", part10, "application/dicom")
        return answer

    def studies(self) -> list[str]:
        """Orthanc ids of the stored studies."""
        return list(self.get("/studies"))

    def study_uid(self, orthanc_id: str) -> str:
        return str(self.get(f"/studies/{orthanc_id}")["MainDicomTags"]["StudyInstanceUID"])

    def statistics(self) -> dict[str, Any]:
        return dict(self.get("/statistics"))

    def store_to(self, modality: str, resources: Iterable[str]) -> Any:
        """POST /modalities/{id}/store: Orthanc C-STOREs these resources (Orthanc ids) to it."""
        return self.post_json(
            f"/modalities/{modality}/store", {"Resources": list(resources), "Synchronous": True}
        )

    def echo(self, modality: str) -> Any:
        return self.post_json(f"/modalities/{modality}/echo", {})

    def request_commitment(
        self, modality: str, references: Iterable[tuple[str, str]], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Orthanc asks ``modality`` for storage commitment of (SOP Class, SOP Instance) pairs
        (POST /modalities/{id}/storage-commitment); waits for the report and returns it
        (GET /storage-commitment/{id}: Status, Success, Failures)."""
        answer = self.post_json(
            f"/modalities/{modality}/storage-commitment",
            {"DicomInstances": [list(pair) for pair in references], "Timeout": 30},
        )
        report_id = answer["ID"]
        deadline = time.monotonic() + timeout
        while True:
            report: dict[str, Any] = self.get(f"/storage-commitment/{report_id}")
            if report.get("Status") != "Pending" or time.monotonic() > deadline:
                return report
            time.sleep(0.1)


class ServerInNamespace:
    """Our server (``python -m fhir_server serve``) inside ``ns``, on 127.0.0.1 there.

    ``extra``: more CLI options (e.g. ``--dicom-remote ORTHANC@127.0.0.1:4242``); the HTTP
    port is ``http_port`` and the DICOM port ``dicom_port`` (the namespace is private, so fixed
    ports cannot collide with anything outside it)."""

    def __init__(
        self,
        ns: Namespace,
        data_dir: Path,
        *extra: str,
        http_port: int = 8080,
        dicom_port: int = 11112,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.ns = ns
        self.http_port = http_port
        self.dicom_port = dicom_port
        self.base = f"http://127.0.0.1:{http_port}/fhir"
        self.log = data_dir.parent / f"server-{http_port}.log"
        self.argv = [sys.executable, "-m", "fhir_server", "serve", "--host", "127.0.0.1"]
        self.argv += ["--port", str(http_port), "--dicom-port", str(dicom_port)]
        self.argv += ["--mllp-port", "0", "--data-dir", str(data_dir)]
        if "--auth" not in extra:
            self.argv += ["--auth", "off"]
        self.argv += list(extra)
        self.env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerInNamespace:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as log:
            self.process = self.ns.popen(self.argv, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text(errors='replace')}")
            try:
                self.request("GET", "/metadata")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text(errors='replace')}")

    def request(self, method: str, path: str, payload: Any = None) -> Any:
        """A FHIR call (JSON in, JSON out) from inside the namespace."""
        body = None if payload is None else json.dumps(payload).encode()

        def call() -> bytes:
            req = urllib.request.Request(self.base + path, data=body, method=method)
            req.add_header("Accept", "application/fhir+json")
            if body is not None:
                req.add_header("Content-Type", "application/fhir+json")
            with urllib.request.urlopen(req, timeout=300) as response:
                data: bytes = response.read()
                return data

        return json.loads(self.ns.call(call))

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process, timeout=20)
            self.process = None

    def __enter__(self) -> ServerInNamespace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ct_study(
    patient_id: str,
    study_date: str,
    count: int,
    *,
    patient_name: str = "Test^Patient",
    accession: str = "",
) -> list[bytes]:
    """``count`` Part-10 CT instances of one new study (pydicom's CT_small.dcm with new UIDs)."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import generate_uid

    template = get_testdata_file("CT_small.dcm")
    assert isinstance(template, str)
    study, series = generate_uid(), generate_uid()
    out = []
    for number in range(1, count + 1):
        ds = dcmread(template)
        ds.PatientID, ds.PatientName = patient_id, patient_name
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.StudyDate = ds.SeriesDate = study_date
        ds.AccessionNumber = accession
        ds.InstanceNumber = number
        buffer = DicomBytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out
