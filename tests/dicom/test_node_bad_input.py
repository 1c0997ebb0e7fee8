"""RO-23 bad input over DIMSE and the optional TLS transport of the node.

A truncated data set and a data set whose SOP Class differs from the C-STORE's Affected SOP
Class get a failure status with an Error Comment (PS3.4 B.2.3), nothing is stored, and the node
keeps serving the same association. TLS is checked with dcmtk's echoscu/storescu (+tla) and a
pynetdicom SCU with a verifying client context.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.uid import UID, generate_uid
from pynetdicom import AE, _config

from tests.conftest import free_port, running_application
from tests.dicom.test_node import blob, dcmtk
from tests.unit.imaging import synth

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


def send_files(port: int, paths: list[Path], contexts: list[str]) -> list[tuple[int, str]]:
    """C-STORE each file as it is on disk (pynetdicom's chunked mode sends the file's data set
    bytes without decoding them) on one association; (status, error comment) per file."""
    ae = AE(ae_title="PYSCU")
    for sop_class in contexts:
        ae.add_requested_context(sop_class, EXPLICIT_LE)
    assoc = ae.associate("127.0.0.1", port, ae_title="FHIRSERVER")
    assert assoc.is_established
    answers = []
    try:
        for path in paths:
            status = assoc.send_c_store(path)
            answers.append((int(status.Status), str(status.get("ErrorComment", ""))))
    finally:
        assoc.release()
    return answers


def explicit_le(data: bytes) -> pydicom.Dataset:
    ds = pydicom.dcmread(BytesIO(data))
    ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    return ds


async def test_ro23_truncated_and_mismatched_data_sets_fail_and_the_association_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)
    good = explicit_le(synth.ct())
    good_path = tmp_path / "good.dcm"
    good.save_as(good_path, enforce_file_format=True)

    truncated = explicit_le(synth.ct())
    truncated.SOPInstanceUID = truncated.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    whole = tmp_path / "whole.dcm"
    truncated.save_as(whole, enforce_file_format=True)
    cut_path = tmp_path / "cut.dcm"
    cut_path.write_bytes(whole.read_bytes()[:-5000])  # cut inside Pixel Data

    mismatched = explicit_le(synth.ct())  # says CT in the data set, MR in the meta / request
    mismatched.SOPInstanceUID = mismatched.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    mismatch_path = tmp_path / "mismatch.dcm"
    mismatched.save_as(mismatch_path, enforce_file_format=True)
    mismatched.file_meta.MediaStorageSOPClassUID = UID(MR_IMAGE)  # as is: no file meta update
    pydicom.dcmwrite(mismatch_path, mismatched, enforce_file_format=False)
    assert pydicom.dcmread(mismatch_path).file_meta.MediaStorageSOPClassUID == MR_IMAGE

    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        answers = await asyncio.to_thread(
            send_files, port, [cut_path, mismatch_path, good_path], [CT_IMAGE, MR_IMAGE]
        )
        (cut_status, cut_comment), (mis_status, mis_comment), (ok_status, _) = answers
        assert cut_status == 0xC000, hex(cut_status)  # Cannot understand
        assert "Incomplete" in cut_comment and "(7FE0,0010)" in cut_comment, cut_comment
        assert mis_status == 0xA900, hex(mis_status)
        assert "SOP Class" in mis_comment
        assert ok_status == 0x0000
        assert await blob(app, str(truncated.SOPInstanceUID)) is None
        assert await blob(app, str(mismatched.SOPInstanceUID)) is None
        assert await blob(app, str(good.SOPInstanceUID)) is not None


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_ro23_tls_node_serves_dcmtk_and_pynetdicom_and_refuses_plain_tcp(
    tmp_path: Path,
) -> None:
    cert, key = await asyncio.to_thread(self_signed, tmp_path)
    port = free_port()
    async with running_application(
        tmp_path / "d", dicom_port=port, dicom_tls_cert=cert, dicom_tls_key=key
    ) as app:
        tls = ("+tla", "+cf", str(cert))
        echo = await dcmtk("echoscu", *tls, "-aet", "ANY", "-aec", "FHIRSERVER",
                           "127.0.0.1", str(port))  # fmt: skip
        assert echo.returncode == 0, echo.stderr
        image = synth.write(tmp_path / "ct.dcm", synth.ct())
        stored = await dcmtk("storescu", *tls, "-aet", "MODALITY", "-aec", "FHIRSERVER",
                             "127.0.0.1", str(port), str(image))  # fmt: skip
        assert stored.returncode == 0, stored.stderr
        assert await blob(app, str(pydicom.dcmread(image).SOPInstanceUID)) is not None

        def pynetdicom_echo(context: ssl.SSLContext | None) -> Any:
            ae = AE(ae_title="PYSCU")
            ae.add_requested_context("1.2.840.10008.1.1")
            ae.acse_timeout = ae.network_timeout = 5
            tls_args = None if context is None else (context, "127.0.0.1")
            assoc = ae.associate("127.0.0.1", port, ae_title="FHIRSERVER", tls_args=tls_args)
            if not assoc.is_established:
                held = assoc.dul.socket  # pynetdicom leaves a failed attempt's socket open
                if held is not None and held.socket is not None:
                    held.socket.close()
                return None
            try:
                return int(assoc.send_c_echo().Status)
            finally:
                assoc.release()

        client = ssl.create_default_context(cafile=str(cert))
        assert await asyncio.to_thread(pynetdicom_echo, client) == 0
        assert await asyncio.to_thread(pynetdicom_echo, None) is None  # plain TCP: no association
        plain = await dcmtk("echoscu", "-to", "5", "-aet", "ANY", "-aec", "FHIRSERVER",
                            "127.0.0.1", str(port))  # fmt: skip
        assert plain.returncode != 0
