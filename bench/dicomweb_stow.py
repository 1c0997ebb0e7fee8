"""DICOMweb STOW-RS: instances stored per second, ours beside Orthanc's DICOMweb plugin and a raw
durable write of the same bytes, in the same run (``python -m bench --only dicomweb_stow``).

The same client (one keep-alive ``requests`` session, one request at a time) POSTs batches of
``batch`` small CT instances (pydicom's CT_small.dcm, 39 KB, fresh UIDs, one study per batch of
50) as ``multipart/related; type="application/dicom"``:

- ours: the application (SQLite ``synchronous=FULL``, filesystem blobs) with its DICOMweb door,
  served by uvicorn in a separate process on loopback. A STOW answer comes after every instance
  is gated, fsync'd and indexed AND the study's ImagingStudy was written through the FHIR write
  pipeline (STOW flushes the studies it touched), so indexing is included;
- Orthanc 1.10 + its DICOMweb plugin (``/dicom-web/studies``), in its private network namespace
  (tests/dicom/orthanc.py: it cannot bind to loopback only), the client there too;
- floor: the same bytes written to files with one fsync each (what durability alone costs).

Each figure is the median of ``runs`` runs with fresh UIDs; the ratio is ours/Orthanc.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

from bench.dicom_store import PER_STUDY, instances
from tests.dicom.orthanc import Namespace, Orthanc, unavailable_reason

TIMEOUT = 300


def multipart(parts: list[bytes]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + p + b"\r\n"
        for p in parts
    )
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body + f"--{boundary}--\r\n".encode(), content_type


def stow_all(url: str, data: list[bytes], batch: int) -> float:
    """Seconds to STOW ``data`` in requests of ``batch`` instances (fails on any failure)."""
    requests_ = [multipart(data[i : i + batch]) for i in range(0, len(data), batch)]
    with requests.Session() as session:
        started = time.perf_counter()
        for body, content_type in requests_:
            headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
            answer = session.post(url, data=body, headers=headers, timeout=TIMEOUT)
            if answer.status_code != 200:
                raise RuntimeError(f"STOW to {url}: {answer.status_code} {answer.text[:300]}")
        return time.perf_counter() - started


def durable_floor(folder: Path, data: list[bytes]) -> float:
    """Seconds to write each instance to its own file with an fsync (the durability floor)."""
    folder.mkdir(parents=True)
    started = time.perf_counter()
    for n, part10 in enumerate(data):
        fd = os.open(folder / f"{n:06d}.dcm", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.write(fd, part10)
            os.fsync(fd)
        finally:
            os.close(fd)
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return time.perf_counter() - started


# --- our server: the application with its DICOMweb door, in its own process -----------------


def serve(data_dir: Path, port: int) -> None:
    """Run the application's HTTP door (with DICOMweb) until SIGTERM."""
    from tests.conftest import running_application
    from tests.dicomweb.conftest import dicomweb_app, imaging_of
    from tests.dicomweb.conftest import serve as start_uvicorn

    async def main() -> None:
        base = f"http://127.0.0.1:{port}"
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with running_application(data_dir, base_url=f"{base}/fhir") as application:
            imaging, own = imaging_of(application, base)
            if own:
                await imaging.start()
            server, task = await start_uvicorn(dicomweb_app(application, imaging, None), port)
            print("ready", flush=True)
            await stop.wait()
            server.should_exit = True
            await task
            if own:
                await imaging.stop()

    asyncio.run(main())


def _start_ours(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    from tests.conftest import free_port

    port = free_port()
    log = (work / "ours.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.dicomweb_stow", "--serve", str(work / "data"), str(port)],
        stdout=subprocess.PIPE, stderr=log,
    )  # fmt: skip
    assert process.stdout is not None
    if process.stdout.readline().strip() != b"ready":
        process.kill()
        raise RuntimeError(f"our server did not start: {(work / 'ours.log').read_text()}")
    return process, f"http://127.0.0.1:{port}/dicomweb/studies"


def _median_rate(count: int, seconds: list[float]) -> float:
    return count / statistics.median(seconds)


def run(count: int = 500, batch: int = 50, runs: int = 3) -> None:
    print(f"\ndicomweb_stow: STOW-RS of {count} small CT in requests of {batch}, median of {runs}")
    reason = unavailable_reason()
    work = Path(tempfile.mkdtemp(prefix="bench-stow-"))
    ours, url = _start_ours(work)
    try:
        measure: dict[str, list[float]] = {"ours": [], "Orthanc": [], "floor": []}
        if reason is None:
            with Namespace() as ns, Orthanc(ns) as orthanc:
                target = f"{orthanc.base}/dicom-web/studies"
                for run_number in range(runs):
                    _one_run(work, run_number, count, batch, url, measure)
                    data = instances(count)
                    measure["Orthanc"].append(ns.call(_bound(stow_all, target, data, batch)))
        else:
            print(f"  Orthanc skipped: {reason}")
            for run_number in range(runs):
                _one_run(work, run_number, count, batch, url, measure)
        our_rate = _median_rate(count, measure["ours"])
        floor_rate = _median_rate(count, measure["floor"])
        line = f"  {count} x CT 128x128 (39 KB)  ours {our_rate:7.1f}/s"
        if measure["Orthanc"]:
            their_rate = _median_rate(count, measure["Orthanc"])
            line += f"   Orthanc {their_rate:7.1f}/s   ratio {our_rate / their_rate:.2f}x"
        print(f"{line}   fsync floor {floor_rate:7.1f}/s")
        for name, seconds in measure.items():
            if seconds:
                print(f"    runs (s) {name}: {', '.join(f'{t:.2f}' for t in seconds)}")
    finally:
        ours.terminate()
        try:
            ours.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ours.kill()
            ours.wait()
        shutil.rmtree(work, ignore_errors=True)


def _one_run(
    work: Path, number: int, count: int, batch: int, url: str, measure: dict[str, list[float]]
) -> None:
    measure["ours"].append(stow_all(url, instances(count), batch))
    measure["floor"].append(durable_floor(work / f"floor-{number}", instances(count)))


def _bound(function: Callable[..., float], *args: object) -> Callable[[], float]:
    return lambda: function(*args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="bench.dicomweb_stow")
    parser.add_argument("--serve", nargs=2, metavar=("DATA_DIR", "PORT"))
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--batch", type=int, default=PER_STUDY)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
    else:
        run(args.n, args.batch, args.runs)
