"""Durable before success (issue 9, RO-19): instances acknowledged to storescu survive a server
killed with SIGKILL right after, with their bytes (small ones are rows committed with their
records in the resource database, layout 4; large ones version files), and their study is
indexed after the restart."""

from __future__ import annotations

import shutil
import subprocess
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


def test_cn4_1_4_acknowledged_instances_survive_kill_9(tmp_path: Path) -> None:
    files = ct_study("CRASH-1", "20261204", 12)
    files[-1] = large(files[-1])
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
        first.process.kill()  # SIGKILL: no shutdown, no study written, no checkpoint
        first.process.wait()
        first.stop()
    assert (data / "blobs" / "LAYOUT").read_bytes() == b"5\n../fhir.sqlite3\n"
    assert not (data / "blobs" / "inline.sqlite3").exists()
    # the large instance in a segment that its killed writer never sealed
    segments = data / "blobs" / "segments"
    assert [p.suffix for p in segments.iterdir()] == [".seg"]

    second = ServerProcess(data, *args)
    try:
        second.wait_ready()
        study = str(pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID)
        for data_set in files:
            sop = pydicom.dcmread(BytesIO(data_set))
            url = (
                f"{second.base}/dicomweb/studies/{study}/series/{sop.SeriesInstanceUID}"
                f"/instances/{sop.SOPInstanceUID}"
            )
            got = httpx.get(url, headers={"Accept": "multipart/related; type=application/dicom"})
            assert got.status_code == 200, got.text
            body = got.content
            part = body[body.index(b"\r\n\r\n") + 4 : body.rindex(b"\r\n--")]
            assert without_padding(part) == without_padding(data_set)
        indexed = httpx.get(
            f"{second.base}/fhir/ImagingStudy", params={"identifier": f"urn:oid:{study}"}
        )
        entries = indexed.json().get("entry", [])
        assert [e["resource"]["numberOfInstances"] for e in entries] == [12]
        # its rows checked against its bytes when the store was opened again
        assert sorted(p.suffix for p in segments.iterdir()) == [".sealed", ".seg"]
    finally:
        second.stop()
