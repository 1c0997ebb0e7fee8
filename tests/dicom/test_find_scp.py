"""C-FIND SCP (Patient Root and Study Root) against dcmtk ``findscu -P`` / ``findscu -S`` after
dcmtk ``storescu`` sent the studies: answers carry exactly the requested keys, at PATIENT, STUDY,
SERIES and IMAGE level; a bad identifier gets a failure status with an Error Comment."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import pytest_asyncio
from pydicom.dataset import Dataset
from pynetdicom import AE

from fhir_server.bootstrap import Application
from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study

# These tests run the whole path (storescu or Orthanc → our C-STORE → ImagingStudy → query):

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("findscu") is None, reason="dcmtk is not installed"),
]

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"


class Node:
    def __init__(self, app: Application, port: int, study: str, series: str) -> None:
        self.app, self.port, self.study, self.series = app, port, study, series


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    """Our node after storescu sent a 2-instance study of RO-FIND-1 and one of RO-FIND-2."""
    port = free_port()
    tmp = tmp_path_factory.mktemp("find")
    async with running_application(tmp / "data", dicom_port=port) as app:
        files = []
        studies = [
            ct_study("RO-FIND-1", "20261120", 2, patient_name="Popescu^Ana", accession="ACC-F1"),
            ct_study("RO-FIND-2", "20261121", 1, patient_name="Ionescu^Dan", accession="ACC-F2"),
        ]
        for number, part10 in enumerate(p for study in studies for p in study):
            path = tmp / f"i{number}.dcm"
            path.write_bytes(part10)
            files.append(str(path))
        argv = ["storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(port)]
        done = await asyncio.to_thread(
            subprocess.run, [*argv, *files], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        first = pydicom.dcmread(files[0], stop_before_pixels=True)
        await app_flush(app)
        yield Node(app, port, str(first.StudyInstanceUID), str(first.SeriesInstanceUID))


async def app_flush(app: Application) -> None:
    imaging = getattr(app, "imaging", None)
    if imaging is not None:
        await imaging.flush()


async def findscu(node: Node, model: str, out: Path, *keys: str) -> list[pydicom.Dataset]:
    return await asyncio.to_thread(_findscu, node.port, model, out, keys)


def _findscu(port: int, model: str, out: Path, keys: tuple[str, ...]) -> list[pydicom.Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["findscu", model, "-aet", "VIEWER", "-aec", "FHIRSERVER", "-X", "-od", str(out)]
    for key in keys:
        argv += ["-k", key]
    done = subprocess.run(
        [*argv, "127.0.0.1", str(port)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def keywords(ds: Dataset) -> set[str]:
    return {element.keyword for element in ds}


async def test_study_root_study_level(node: Node, tmp_path: Path) -> None:
    answers = await findscu(
        node, "-S", tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=RO-FIND-1",
        "StudyInstanceUID", "AccessionNumber", "StudyDate", "PatientName",
    )  # fmt: skip
    assert len(answers) == 1
    study = answers[0]
    assert study.StudyInstanceUID == node.study
    assert (study.AccessionNumber, study.StudyDate) == ("ACC-F1", "20261120")
    assert str(study.PatientName) == "Popescu^Ana"
    assert keywords(study) <= {
        "QueryRetrieveLevel", "PatientID", "StudyInstanceUID", "AccessionNumber", "StudyDate",
        "PatientName", "SpecificCharacterSet", "RetrieveAETitle",
    }  # fmt: skip


async def test_study_root_date_range_and_wildcard(node: Node, tmp_path: Path) -> None:
    answers = await findscu(
        node, "-S", tmp_path, "QueryRetrieveLevel=STUDY", "StudyDate=20261121-20261231",
        "PatientName=Ion*", "AccessionNumber",
    )  # fmt: skip
    assert [a.AccessionNumber for a in answers] == ["ACC-F2"]


async def test_series_level(node: Node, tmp_path: Path) -> None:
    answers = await findscu(
        node, "-S", tmp_path, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={node.study}",
        "SeriesInstanceUID", "Modality",
    )  # fmt: skip
    assert [(a.SeriesInstanceUID, a.Modality) for a in answers] == [(node.series, "CT")]


async def test_image_level(node: Node, tmp_path: Path) -> None:
    answers = await findscu(
        node, "-S", tmp_path, "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={node.study}",
        f"SeriesInstanceUID={node.series}", "SOPInstanceUID", "InstanceNumber",
    )  # fmt: skip
    assert sorted(int(a.InstanceNumber) for a in answers) == [1, 2]


async def test_patient_root_patient_level(node: Node, tmp_path: Path) -> None:
    answers = await findscu(
        node, "-P", tmp_path, "QueryRetrieveLevel=PATIENT", "PatientID=RO-FIND-*",
        "PatientName",
    )  # fmt: skip
    assert sorted(a.PatientID for a in answers) == ["RO-FIND-1", "RO-FIND-2"]


async def test_patient_root_study_level(node: Node, tmp_path: Path) -> None:
    answers = await findscu(
        node, "-P", tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=RO-FIND-2",
        "StudyInstanceUID", "AccessionNumber",
    )  # fmt: skip
    assert [a.AccessionNumber for a in answers] == ["ACC-F2"]


def c_find(port: int, identifier: Dataset) -> list[tuple[Any, Any]]:
    ae = AE(ae_title="VIEWER")
    ae.add_requested_context(STUDY_ROOT_FIND)
    assoc = ae.associate("127.0.0.1", port, ae_title="FHIRSERVER")
    assert assoc.is_established
    try:
        return list(assoc.send_c_find(identifier, STUDY_ROOT_FIND))
    finally:
        assoc.release()


async def test_patient_level_in_study_root_fails_with_a_comment(node: Node) -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "PATIENT"
    identifier.PatientID = "RO-FIND-1"
    responses = await asyncio.to_thread(c_find, node.port, identifier)
    status = responses[-1][0]
    assert status.Status == 0xA900
    assert "QueryRetrieveLevel (0008,0052)" in status.ErrorComment


async def test_the_scp_keeps_serving_after_a_bad_request(node: Node, tmp_path: Path) -> None:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "NONSENSE"
    await asyncio.to_thread(c_find, node.port, identifier)
    answers = await findscu(
        node, "-S", tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=RO-FIND-2",
        "StudyInstanceUID",
    )  # fmt: skip
    assert len(answers) == 1
