"""DICOM C-STORE: instances received per second, ours beside Orthanc in the same run
(``python -m bench --only dicom_store``).

Both receivers run in one private network namespace (tests/dicom/orthanc.py: Orthanc 1.10 cannot
bind to loopback only), on 127.0.0.1 there, and get the same load from the same real sender:
dcmtk's ``storescu`` on ONE association (``+sd`` a directory, ``-R`` only the needed contexts),
with ``TCP_NODELAY=1`` on the sender and on both receivers (without it small C-STOREs stall on
Nagle's algorithm at about 10 per second, /work/shared/notes/dicom.md §3.5).

- ours: ``fhir-server serve`` with its DICOM door, SQLite store (``synchronous=FULL``) and
  filesystem blobs. The clock stops when storescu has its last response AND the ImagingStudy
  resources list every instance (the per-study indexing through the FHIR write pipeline is
  included, as the issue asks);
- Orthanc: its SQLite index and file storage; the clock stops when storescu returns and
  ``/statistics`` counts every instance (Orthanc indexes before it answers).

Workloads: N small CT instances (pydicom's CT_small.dcm, 39 KB, fresh UIDs; several studies)
and M 512x512 CT instances (about 0.5 MB each) on one association each; then 2N small CT sent by
``ASSOCIATIONS`` storescu processes at once (several modalities sending; each takes every
``ASSOCIATIONS``-th file). Every run uses fresh UIDs so neither receiver
ever sees a duplicate; each figure is the median of ``runs`` runs, and the ratio is ours/Orthanc.
Before each side the page cache's dirty pages are written back (``sync``: the 100 MB of
instance files just written, what the other side left), and the two take turns at going
first: measured before both (2026-12-05), our 512x512 figure was about 10 % lower when it ran
right after Orthanc's, as it always did, than before it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.dicom.orthanc import Namespace, Orthanc, ServerInNamespace, unavailable_reason

OUR_AET, ORTHANC_AET = "FHIRSERVER", "ORTHANC"
OUR_PORT, ORTHANC_PORT = 11112, 4242
PER_STUDY = 50
#: Modalities sending at once in the third figure.
ASSOCIATIONS = 4


def instances(count: int, *, large: bool = False) -> list[bytes]:
    """``count`` Part-10 CT instances in studies of ``PER_STUDY``, fresh UIDs; ``large`` makes
    each image 512x512 (16-bit, about 0.5 MB) instead of CT_small's 128x128."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from pydicom.filebase import DicomBytesIO
    from pydicom.uid import generate_uid

    template = get_testdata_file("CT_small.dcm")
    assert isinstance(template, str)
    base = dcmread(template)
    pixels = bytes((i * 7) & 0xFF for i in range(512 * 512 * 2)) if large else None
    out: list[bytes] = []
    study = series = ""
    for number in range(count):
        if number % PER_STUDY == 0:
            study, series = generate_uid(), generate_uid()
        ds = base.copy()
        ds.file_meta = base.file_meta.copy()
        ds.PatientID = f"BENCH-{study[-8:]}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number % PER_STUDY + 1
        if pixels is not None:
            ds.Rows = ds.Columns = 512
            ds.PixelData = pixels
        buffer = DicomBytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def _write(folder: Path, data: list[bytes]) -> None:
    folder.mkdir(parents=True)
    for n, part10 in enumerate(data):
        (folder / f"{n:06d}.dcm").write_bytes(part10)


def _storescu(ns: Namespace, called: str, port: int, folder: Path, associations: int) -> float:
    """Seconds storescu takes to send ``folder`` (fails on any failure): on one association,
    or split among ``associations`` storescu processes at once (every n-th file each)."""
    argv = ["storescu", "-aet", "BENCH", "-aec", called, "-R", "127.0.0.1", str(port)]
    if associations == 1:
        parts = [["+sd", str(folder)]]
    else:
        files = sorted(map(str, folder.iterdir()))
        parts = [files[k::associations] for k in range(associations)]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(parts)) as pool:
        results = list(
            pool.map(lambda part: ns.run([*argv, *part], env={"TCP_NODELAY": "1"}), parts)
        )
    elapsed = time.perf_counter() - started
    for result in results:
        if result.returncode != 0:
            raise RuntimeError(f"storescu to {called} failed: {result.stderr!r}")
    return elapsed


def _wait(condition: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the receiver did not index every instance in time")
        time.sleep(0.02)


def _indexed(server: ServerInNamespace, expected: int) -> Callable[[], bool]:
    def check() -> bool:
        bundle: Any = server.request("GET", "/ImagingStudy?_count=1000&_elements=numberOfInstances")
        total = sum(
            entry["resource"].get("numberOfInstances", 0) for entry in bundle.get("entry", [])
        )
        return bool(total >= expected)

    return check


def _orthanc_counted(orthanc: Orthanc, expected: int) -> Callable[[], bool]:
    return lambda: int(orthanc.statistics()["CountInstances"]) >= expected


def _measure(ns: Namespace, server: ServerInNamespace, orthanc: Orthanc, work: Path,
             label: str, count: int, large: bool, runs: int, already: int,
             associations: int = 1) -> int:  # fmt: skip
    """Print the rates of ``runs`` runs of ``count`` instances; ``already``: instances our
    server holds before; returns how many it holds after."""
    ours: list[float] = []
    theirs: list[float] = []
    for run in range(runs):
        folder = work / f"{label}-{run}"
        _write(folder / "ours", instances(count, large=large))
        _write(folder / "orthanc", instances(count, large=large))
        before = int(orthanc.statistics()["CountInstances"])
        orthanc_side = (ORTHANC_AET, ORTHANC_PORT, folder / "orthanc", theirs,
                        _orthanc_counted(orthanc, before + count))  # fmt: skip
        our_side = (OUR_AET, OUR_PORT, folder / "ours", ours, _indexed(server, already + count))
        # each starts with nothing left to write back, and they take turns at going first
        # (module docstring)
        sides = (orthanc_side, our_side) if run % 2 == 0 else (our_side, orthanc_side)
        for called, port, files, times, done in sides:
            os.sync()
            started = time.perf_counter()
            _storescu(ns, called, port, files, associations)
            _wait(done)
            times.append(time.perf_counter() - started)
        already += count
        shutil.rmtree(folder)
    our_rate = count / statistics.median(ours)
    their_rate = count / statistics.median(theirs)
    print(f"  {label:<34} ours {our_rate:7.1f}/s   Orthanc {their_rate:7.1f}/s   "
          f"ratio {our_rate / their_rate:.2f}x")  # fmt: skip
    print(f"    runs (s): ours {', '.join(f'{t:.2f}' for t in ours)}; "
          f"Orthanc {', '.join(f'{t:.2f}' for t in theirs)}")  # fmt: skip
    return already


def run(count: int = 500, large: int = 200, runs: int = 4) -> None:
    print(
        f"\ndicom_store: C-STORE by storescu (one association unless said), ours vs Orthanc, "
        f"median of {runs}"
    )
    reason = unavailable_reason()
    if reason is not None:
        print(f"  skipped: {reason}")
        return
    work = Path(tempfile.mkdtemp(prefix="bench-dicom-"))
    node = {"FHIR": (OUR_AET, "127.0.0.1", OUR_PORT)}
    try:
        with (
            Namespace() as ns,
            Orthanc(ns, aet=ORTHANC_AET, dicom_port=ORTHANC_PORT, modalities=node) as orthanc,
            ServerInNamespace(
                ns, work / "server" / "data", "--dicom-aet", OUR_AET,
                dicom_port=OUR_PORT, env={"TCP_NODELAY": "1"},
            ) as server,
        ):  # fmt: skip
            small = f"{count} x CT 128x128 (39 KB)"
            held = _measure(ns, server, orthanc, work, small, count, False, runs, 0)
            big = f"{large} x CT 512x512 (0.5 MB)"
            held = _measure(ns, server, orthanc, work, big, large, True, runs, held)
            several = f"{2 * count} x CT 128x128, {ASSOCIATIONS} assoc."
            _measure(ns, server, orthanc, work, several, 2 * count, False, runs, held, ASSOCIATIONS)
    finally:
        shutil.rmtree(work, ignore_errors=True)
