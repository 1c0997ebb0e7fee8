"""RO-23: the DIMSE node (C-ECHO, C-STORE into the imaging ingest, AE allow-list) with dcmtk."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pynetdicom import AE

from fhir_server.core import fhirjson
from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study
from tests.unit.imaging import synth

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")

PEER = "MODALITY=Organization/hospital-a"


async def dcmtk(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return await asyncio.to_thread(
        subprocess.run, list(argv), capture_output=True, timeout=60, env={"TCP_NODELAY": "1"}
    )


def storescu(port: int, *paths: Path, aet: str = "MODALITY") -> tuple[str, ...]:
    return ("storescu", "-aet", aet, "-aec", "FHIRSERVER", "127.0.0.1", str(port),
            *map(str, paths))  # fmt: skip


async def blob(app: Any, key: str) -> bytes | None:
    if await app.blobs.info(key) is None:
        return None
    stream = await app.blobs.stream(key)
    data: bytes = await stream.read_all()
    return data


def without_padding(data: bytes) -> pydicom.Dataset:
    ds = pydicom.dcmread(BytesIO(data))
    if (0xFFFC, 0xFFFC) in ds:  # dcmtk drops trailing padding when sending
        del ds[0xFFFC, 0xFFFC]
    return ds


async def test_ro23_echo(tmp_path: Path) -> None:
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        assert app.dicom is not None and app.dicom.port == port
        done = await dcmtk("echoscu", "-aet", "ANY", "-aec", "FHIRSERVER", "127.0.0.1", str(port))
        assert done.returncode == 0, done.stderr


async def test_ro23_storescu_study_becomes_imaging_study(tmp_path: Path) -> None:
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        files = ct_study("RO23-N1", "20261201", 3, patient_name="Popescu^Ana", accession="A-N1")
        paths = [synth.write(tmp_path / f"i{n}.dcm", f) for n, f in enumerate(files)]
        done = await dcmtk(*storescu(port, *paths))
        assert done.returncode == 0, done.stderr
        assert app.imaging is not None
        await app.imaging.flush()
        study = str(pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID)
        bundle = await search_imaging_study(app, study)
        assert len(bundle) == 1
        assert bundle[0]["numberOfInstances"] == 3
        for data in files:
            sop = str(pydicom.dcmread(BytesIO(data)).SOPInstanceUID)
            stored = await blob(app, sop)
            assert stored is not None
            assert without_padding(stored) == without_padding(data)
        again = await dcmtk(*storescu(port, paths[0]))  # resent: idempotent
        assert again.returncode == 0, again.stderr
        await app.imaging.flush()
        assert (await search_imaging_study(app, study))[0]["numberOfInstances"] == 3


async def search_imaging_study(app: Any, study: str) -> list[dict[str, Any]]:
    from fhir_server.core.context import RequestContext

    found = await app.service.search_type(
        RequestContext(), "ImagingStudy", [("identifier", f"urn:dicom:uid|urn:oid:{study}")]
    )
    bundle = fhirjson.loads(fhirjson.dumps(found))
    return [entry["resource"] for entry in bundle.get("entry", [])]


async def test_ro14_gate_refusal_is_a_failure_status_and_node_keeps_working(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        film = synth.write(tmp_path / "film.dcm", synth.scanned_film())
        done = await dcmtk(*storescu(port, film))
        assert b"Store Failed" in done.stderr or done.returncode != 0 or b"Error" in done.stderr
        sop = str(pydicom.dcmread(film).SOPInstanceUID)
        assert await blob(app, sop) is None
        good = synth.write(tmp_path / "ct.dcm", synth.ct())
        ok = await dcmtk(*storescu(port, good))
        assert ok.returncode == 0, ok.stderr
        assert await blob(app, str(pydicom.dcmread(good).SOPInstanceUID)) is not None


async def test_ro23_unknown_calling_ae_is_rejected_with_auth_on(tmp_path: Path) -> None:
    port = free_port()
    async with running_application(
        tmp_path / "d", dicom_port=port, auth="smart", dicom_peers=(PEER,)
    ) as app:
        assert app.dicom is not None
        ko = await dcmtk(
            "echoscu", "-aet", "STRANGER", "-aec", "FHIRSERVER", "127.0.0.1", str(port)
        )
        assert ko.returncode != 0
        assert b"Rejected" in ko.stderr or b"rejected" in ko.stderr.lower()
        ok = await dcmtk(
            "echoscu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(port)
        )
        assert ok.returncode == 0, ok.stderr


async def test_ro23_with_auth_on_and_no_peer_every_ae_is_rejected(tmp_path: Path) -> None:
    """`make run` (--demo: SMART on) with no --dicom-peer: the node starts and rejects every
    calling AE (it once failed at start-up on the placeholder of an empty allow-list)."""
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port, auth="smart") as app:
        assert app.dicom is not None
        for caller in ("MODALITY", "ANY-SCU", "NOPEER"):
            ko = await dcmtk("echoscu", "-aet", caller, "-aec", "FHIRSERVER", "127.0.0.1",
                             str(port))  # fmt: skip
            assert ko.returncode != 0
            assert b"rejected" in ko.stderr.lower(), ko.stderr


async def test_ro23_pynetdicom_store_gets_status(tmp_path: Path) -> None:
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        assert app.imaging is not None
        ds = pydicom.dcmread(BytesIO(synth.ct()))

        def send() -> int:
            ae = AE(ae_title="PYSCU")
            ae.add_requested_context(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID))
            assoc = ae.associate("127.0.0.1", port, ae_title="FHIRSERVER")
            assert assoc.is_established
            try:
                status = assoc.send_c_store(ds)
                return int(status.Status)
            finally:
                assoc.release()

        assert await asyncio.to_thread(send) == 0
