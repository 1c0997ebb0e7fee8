"""`make run` (``serve --demo``, SMART on): the README's "try it" lines work at once — dcmtk's
echoscu and storescu as the demo DICOM peer MODALITY, python-hl7's mllp_send as the demo HL7 v2
sender RIS, both for the seeded demo hospital; any other AE or application is still refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, free_port
from tests.dicom.orthanc import ct_study
from tests.hl7v2.conftest import mllp_send, order, segments
from tests.unit.imaging import synth

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")


def dcmtk(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(list(argv), capture_output=True, timeout=60, env={"TCP_NODELAY": "1"})


def test_demo_allows_the_demo_modality_and_ris(tmp_path: Path) -> None:
    dicom, mllp = free_port(), free_port()
    server = ServerProcess(
        tmp_path / "data", "--auth", "smart", "--demo",
        "--dicom-port", str(dicom), "--mllp-port", str(mllp),
    )  # fmt: skip
    try:
        server.wait_ready()
        address = ("127.0.0.1", str(dicom))
        assert dcmtk("echoscu", "-aet", "MODALITY", "-aec", "FHIRSERVER", *address).returncode == 0
        assert dcmtk("echoscu", "-aet", "STRANGER", "-aec", "FHIRSERVER", *address).returncode != 0
        image = synth.write(tmp_path / "ct.dcm", ct_study("DEMO-1", "20261204", 1)[0])
        stored = dcmtk("storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", *address, str(image))
        assert stored.returncode == 0, stored.stderr
        acks = mllp_send(mllp, [order("DEMO-ORM-1", app="RIS")], tmp_path)
        assert segments(acks[0])["MSA"][1] == "AA", acks
        other = mllp_send(mllp, [order("DEMO-ORM-2", app="LIS")], tmp_path)
        assert segments(other[0])["MSA"][1] == "AR", other
    finally:
        server.stop()
