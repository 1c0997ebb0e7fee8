"""Issue 9 "done when": a modality (dcmtk storescu) sends a study over DIMSE; it is an
ImagingStudy and is found by QIDO-RS and retrieved by WADO-RS (dicomweb-client) with the same
data set and pixel data as sent."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import dicomweb_app, serve
from tests.unit.imaging import synth

pytestmark = pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed")


async def test_ro23_storescu_study_is_found_by_qido_and_retrieved_by_wado(tmp_path: Path) -> None:
    dicom_port, http_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    async with running_application(
        tmp_path / "data", dicom_port=dicom_port, base_url=f"{base}/fhir"
    ) as app:
        imaging = getattr(app, "imaging", None)
        if imaging is None:
            pytest.skip("bootstrap does not give the application an imaging service yet")
        files = ct_study("RO23-1", "20261201", 3, patient_name="Popescu^Ana", accession="A-23")
        paths = [str(synth.write(tmp_path / f"i{n}.dcm", f)) for n, f in enumerate(files)]
        argv = ["storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(dicom_port)]
        done = await asyncio.to_thread(
            subprocess.run, [*argv, *paths], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        await imaging.flush()
        server, task = await serve(dicomweb_app(app, imaging, None), http_port)
        try:
            client = DICOMwebClient(f"{base}/dicomweb")
            found = await asyncio.to_thread(
                client.search_for_studies, search_filters={"PatientID": "RO23-1"}
            )
            assert len(found) == 1
            study = found[0]["0020000D"]["Value"][0]
            assert found[0]["00201208"]["Value"] == [3]
            retrieved = await asyncio.to_thread(client.retrieve_study, study)
        finally:
            server.should_exit = True
            await task
    sent = {str(ds.SOPInstanceUID): ds for ds in (pydicom.dcmread(BytesIO(f)) for f in files)}
    assert sorted(str(ds.SOPInstanceUID) for ds in retrieved) == sorted(sent)
    for ds in retrieved:
        original = sent[str(ds.SOPInstanceUID)]
        # Data Set Trailing Padding (FFFC,FFFC) has no meaning and any AE may drop it (PS3.5
        # §7.1, PS3.10 §7.2); dcmtk's storescu does, so it is not part of the comparison.
        for data_set in (ds, original):
            if (0xFFFC, 0xFFFC) in data_set:
                del data_set[0xFFFC, 0xFFFC]
        assert ds == original  # every data element (file meta aside) as sent
        assert ds.PixelData == original.PixelData
