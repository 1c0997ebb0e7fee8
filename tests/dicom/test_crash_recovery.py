"""Durable before success (issue 9, RO-19): instances acknowledged to storescu survive a server
killed with SIGKILL right after, with their bytes (small ones are rows committed with their
records in the resource database; large ones appended to a segment, layout 5), and their study
is indexed after the restart; a kill in the middle of a C-STORE tears nothing acknowledged."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import threading
from io import BytesIO
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.conftest import ServerProcess, free_port
from tests.dicom.orthanc import ct_study
from tests.unit.imaging import synth

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")


def without_padding(data: bytes) -> pydicom.Dataset:
    ds = pydicom.dcmread(BytesIO(data))
    if (0xFFFC, 0xFFFC) in ds:  # dcmtk drops trailing padding when sending
        del ds[0xFFFC, 0xFFFC]
    return ds


def large(data: bytes) -> bytes:
    """``data`` with 200 KB of padding: above the inline tier's 128 KiB, stored in a segment."""
    ds = pydicom.dcmread(BytesIO(data))
    ds.add_new((0x0009, 0x0010), "LO", "CRASH TEST")
    ds.add_new((0x0009, 0x1001), "OB", b"\0" * 200_000)
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def send_then_kill(tmp_path: Path, files: list[bytes]) -> tuple[Path, tuple[str, ...]]:
    """``files`` sent by storescu (every one acknowledged) to a server then killed with
    SIGKILL (no shutdown, no study written, no checkpoint); its data dir and arguments."""
    paths = [synth.write(tmp_path / f"i{n}.dcm", f) for n, f in enumerate(files)]
    data, port = tmp_path / "data", free_port()
    args = ("--dicom-port", str(port), "--log-level", "info")
    first = ServerProcess(data, *args)
    try:
        first.wait_ready()
        sent = subprocess.run(
            ["storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(port),
             *map(str, paths)],
            capture_output=True, timeout=60, env={"TCP_NODELAY": "1"},
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
    finally:
        first.process.kill()
        first.process.wait()
        first.stop()
    return data, args


def assert_served_whole(server: ServerProcess, files: list[bytes]) -> str:
    """Every one of ``files`` (one study) served by WADO-RS byte for byte, and its study's
    ImagingStudy listing them all; the Study Instance UID."""
    study = str(pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID)
    for data_set in files:
        sop = pydicom.dcmread(BytesIO(data_set))
        url = (
            f"{server.base}/dicomweb/studies/{study}/series/{sop.SeriesInstanceUID}"
            f"/instances/{sop.SOPInstanceUID}"
        )
        got = httpx.get(url, headers={"Accept": "multipart/related; type=application/dicom"})
        assert got.status_code == 200, got.text
        body = got.content
        part = body[body.index(b"\r\n\r\n") + 4 : body.rindex(b"\r\n--")]
        assert without_padding(part) == without_padding(data_set)
    indexed = httpx.get(
        f"{server.base}/fhir/ImagingStudy", params={"identifier": f"urn:oid:{study}"}
    )
    entries = indexed.json().get("entry", [])
    assert [e["resource"]["numberOfInstances"] for e in entries] == [len(files)]
    return study


def test_cn4_1_4_acknowledged_instances_survive_kill_9(tmp_path: Path) -> None:
    files = ct_study("CRASH-1", "20261204", 12)
    files[-1] = large(files[-1])
    data, args = send_then_kill(tmp_path, files)
    assert (data / "blobs" / "LAYOUT").read_bytes() == b"5\n../fhir.sqlite3\n"
    assert not (data / "blobs" / "inline.sqlite3").exists()
    # the large instance in a segment that its killed writer never sealed
    segments = data / "blobs" / "segments"
    assert [p.suffix for p in segments.iterdir()] == [".seg"]

    second = ServerProcess(data, *args)
    try:
        second.wait_ready()
        assert_served_whole(second, files)
        # its rows checked against its bytes when the store was opened again
        assert sorted(p.suffix for p in segments.iterdir()) == [".sealed", ".seg"]
    finally:
        second.stop()


def test_cn4_1_4_a_kill_in_the_middle_of_large_c_stores_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    """Large instances (appended to a segment, their row committed while the segment syncs)
    sent one by one; the server is killed (SIGKILL) while one is being stored. After the
    restart (which checks the segment its writer left unsealed), every acknowledged instance
    is served whole, and the one in flight is either absent or whole, never torn."""
    from pynetdicom import AE

    files = [large(f) for f in ct_study("CRASH-2", "20261205", 24)]
    data, port = tmp_path / "data", free_port()
    args = ("--dicom-port", str(port), "--log-level", "info")
    first = ServerProcess(data, *args)
    acknowledged: list[bytes] = []
    in_flight: list[bytes] = []
    try:
        first.wait_ready()
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
        assoc = ae.associate("127.0.0.1", port, ae_title="FHIRSERVER")
        assert assoc.is_established and assoc.dul.socket is not None
        # pynetdicom 3.0 skips closing a socket whose shutdown fails (its peer was killed)
        raw = assoc.dul.socket.socket
        for n, part10 in enumerate(files):
            if n == 16:  # killed while this one is stored (a few ms after it is sent)
                threading.Timer(0.002, first.process.kill).start()
                in_flight.append(part10)
            status = assoc.send_c_store(pydicom.dcmread(BytesIO(part10)))
            if n >= 16 or not status or status.Status != 0:
                break
            acknowledged.append(part10)
        assoc.abort()
        ae.shutdown()
        if raw is not None:
            raw.close()
    finally:
        first.process.kill()
        first.process.wait()
        first.stop()
    assert len(acknowledged) == 16
    segments = data / "blobs" / "segments"
    assert [p.suffix for p in segments.iterdir()] == [".seg"]  # its writer died: not sealed

    second = ServerProcess(data, *args)
    try:
        second.wait_ready()
        assert sorted(p.suffix for p in segments.iterdir()) == [".sealed", ".seg"]

        def served(part10: bytes) -> bytes | None:
            sop = pydicom.dcmread(BytesIO(part10))
            url = (
                f"{second.base}/dicomweb/studies/{sop.StudyInstanceUID}/series/"
                f"{sop.SeriesInstanceUID}/instances/{sop.SOPInstanceUID}"
            )
            got = httpx.get(url, headers={"Accept": "multipart/related; type=application/dicom"})
            if got.status_code == 404:
                return None
            assert got.status_code == 200, got.text
            body = got.content
            return body[body.index(b"\r\n\r\n") + 4 : body.rindex(b"\r\n--")]

        for part10 in acknowledged:
            stored = served(part10)
            assert stored is not None
            assert without_padding(stored) == without_padding(part10)
        for part10 in in_flight:
            stored = served(part10)
            assert stored is None or without_padding(stored) == without_padding(part10)
    finally:
        second.stop()


def test_cn4_1_4_instances_whose_records_a_power_failure_lost_are_indexed_again(
    tmp_path: Path,
) -> None:
    """A large instance's row and record commit without a sync of the WAL of their own (its
    bytes, synced with a note of who sent it, can rebuild both): a power failure may lose them
    after storescu had its success. Simulated: the server killed, then the rows and records of
    three acknowledged large instances removed from the database (as a lost end of the WAL
    leaves it). The restart gives the rows back from the segment, indexes the instances again
    from their bytes and note, and the study lists every instance."""
    files = ct_study("POWER-1", "20261205", 6)
    files[1:4] = [large(f) for f in files[1:4]]
    data, args = send_then_kill(tmp_path, files)
    lost = [str(pydicom.dcmread(BytesIO(f)).SOPInstanceUID) for f in files[1:4]]
    with sqlite3.connect(data / "fhir.sqlite3") as conn:
        for uid in lost:
            assert conn.execute("DELETE FROM blobs WHERE key = ?", (uid,)).rowcount == 1
            deleted = conn.execute(
                "DELETE FROM record WHERE kind = 'dicom-instance' AND key = ?", (uid,)
            )
            assert deleted.rowcount == 1
    conn.close()

    second = ServerProcess(data, *args)
    try:
        second.wait_ready()
        study = assert_served_whole(second, files)
        found = httpx.get(
            f"{second.base}/dicomweb/studies/{study}/instances",
            params={"SOPInstanceUID": lost[0]},
        )
        (match,) = found.json()
        # indexed again with who sent it (the note kept with its bytes)
        assert match["00080018"]["Value"] == [lost[0]]
    finally:
        second.stop()
    with sqlite3.connect(data / "fhir.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM blob_restored").fetchone() == (0,)
        ae = conn.execute(
            "SELECT value FROM record WHERE kind = 'dicom-instance' AND key = ?", (lost[0],)
        ).fetchone()
    conn.close()
    assert b'"MODALITY"' in bytes(ae[0])
