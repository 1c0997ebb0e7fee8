"""RO-23: the node's Upper Layer acceptor with real peers — fragments reassembled, what is relayed
to the pynetdicom AE, bad PDUs refused while the node keeps serving."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pynetdicom import AE

from fhir_server.dicom.scu import STORAGE_COMMITMENT_PUSH
from tests.conftest import free_port, running_application
from tests.dicom.test_node import blob, dcmtk, search_imaging_study, storescu, without_padding
from tests.unit.imaging import synth

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")

CT = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def large_ct() -> bytes:
    """A 512x512 16-bit CT (0.5 MB of pixel data) from pydicom's CT_small with new UIDs."""
    ds = pydicom.dcmread(BytesIO(synth.ct(instance=7)))
    ds.Rows = ds.Columns = 512
    ds.PixelData = bytes(range(256)) * (512 * 512 * 2 // 256)
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new TCP connection and read what comes back until the node closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


async def test_ro23_4_kib_fragments_are_reassembled_byte_identical(tmp_path: Path) -> None:
    """storescu sends a 0.5 MB instance in P-DATA-TF PDUs of at most 4 KiB and accepts no
    response PDU over 4 KiB: the stored Part-10 data set is the one sent, with its meta."""
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        data = large_ct()
        path = synth.write(tmp_path / "large.dcm", data)
        done = await dcmtk("storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "-xe",
                           "--max-send-pdu", "4096", "--max-pdu", "4096", "127.0.0.1",
                           str(port), str(path))  # fmt: skip
        assert done.returncode == 0, done.stderr
        sop = str(pydicom.dcmread(BytesIO(data)).SOPInstanceUID)
        stored = await blob(app, sop)
        assert stored is not None
        assert without_padding(stored) == without_padding(data)
        meta = pydicom.dcmread(BytesIO(stored)).file_meta
        assert meta.TransferSyntaxUID == EXPLICIT
        assert meta.MediaStorageSOPInstanceUID == sop
        assert meta.SourceApplicationEntityTitle == "MODALITY"


async def test_ro23_storage_proposed_beside_commitment_is_relayed_and_stored(
    tmp_path: Path,
) -> None:
    """A modality proposing storage and storage commitment on one association is served by the
    relayed pynetdicom AE: the C-STORE still reaches the ingest, and the ImagingStudy is written
    before the release is answered (the ingest's quiet time is long here)."""
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        assert app.imaging is not None
        app.imaging.quiet = app.imaging.max_delay = 600.0
        ds = pydicom.dcmread(BytesIO(synth.ct(instance=3)))

        def send() -> tuple[int, list[str]]:
            ae = AE(ae_title="MODALITY")
            ae.add_requested_context(CT, str(ds.file_meta.TransferSyntaxUID))
            ae.add_requested_context(STORAGE_COMMITMENT_PUSH)
            assoc = ae.associate("127.0.0.1", port, ae_title="FHIRSERVER")
            assert assoc.is_established
            try:
                status = assoc.send_c_store(ds)
                accepted = [str(c.abstract_syntax) for c in assoc.accepted_contexts]
                return int(status.Status), accepted
            finally:
                assoc.release()

        status, accepted = await asyncio.to_thread(send)
        assert status == 0 and STORAGE_COMMITMENT_PUSH in accepted
        assert await blob(app, str(ds.SOPInstanceUID)) is not None
        found = await search_imaging_study(app, str(ds.StudyInstanceUID))
        assert found and found[0]["numberOfInstances"] == 1
        assert app.dicom is not None and app.dicom.relayed == {}  # the relay is gone


async def test_ro23_garbage_and_oversize_pdus_are_aborted_and_the_node_keeps_serving(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port):
        abort = bytes((0x07, 0, 0, 0, 0, 4))
        reply = await asyncio.to_thread(raw_exchange, port, b"GET / HTTP/1.1\r\n\r\n")
        assert reply.startswith(abort), reply  # not an A-ASSOCIATE-RQ: A-ABORT
        huge = struct.pack(">BxI", 0x01, 64 * 1024 * 1024)
        reply = await asyncio.to_thread(raw_exchange, port, huge)
        assert reply.startswith(abort), reply  # 64 MiB announced: refused before reading it
        done = await dcmtk("echoscu", "-aet", "ANY", "-aec", "FHIRSERVER", "127.0.0.1", str(port))
        assert done.returncode == 0, done.stderr


async def test_ro23_the_relayed_ae_refuses_connections_that_bypass_the_acceptor(
    tmp_path: Path,
) -> None:
    """The pynetdicom AE listens on loopback for the relay only: a peer that finds its port and
    connects directly (skipping TLS and the acceptor) is aborted."""
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        node: Any = app.dicom
        internal = int(node._server.server_address[1])

        def direct() -> bool:
            ae = AE(ae_title="MODALITY")
            ae.add_requested_context("1.2.840.10008.1.1")
            assoc = ae.associate("127.0.0.1", internal, ae_title="FHIRSERVER")
            established = bool(assoc.is_established)
            if established:
                assoc.release()
            return established

        assert not await asyncio.to_thread(direct)
        done = await dcmtk("findscu", "-aet", "ANY", "-aec", "FHIRSERVER", "-S", "-k",
                           "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "127.0.0.1",
                           str(port))  # fmt: skip
        assert done.returncode == 0, done.stderr  # relayed through the acceptor: served


async def test_ro23_imaging_study_is_written_before_the_release_is_answered(
    tmp_path: Path,
) -> None:
    """The ingest's quiet time is long here: the ImagingStudy, listing every instance sent on
    the association, is there as soon as storescu returns (its A-RELEASE-RP waited for it)."""
    port = free_port()
    study = "1.2.826.0.1.3680043.10.1.7"
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        assert app.imaging is not None
        app.imaging.quiet = app.imaging.max_delay = 600.0
        files = [synth.ct(instance=n, study_uid=study) for n in range(1, 41)]
        paths = [synth.write(tmp_path / f"i{n}.dcm", data) for n, data in enumerate(files)]
        done = await dcmtk(*storescu(port, *paths))
        assert done.returncode == 0, done.stderr
        found = await search_imaging_study(app, study)
        assert found and found[0]["numberOfInstances"] == 40
