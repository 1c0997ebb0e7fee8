"""Modality Worklist SCP of the DIMSE node against dcmtk ``findscu -W`` (a real worklist client
nobody here wrote): scheduled ServiceRequests become worklist items
(fhir_server/imaging/worklist.py)."""

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

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext
from tests.conftest import free_port, running_application

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("findscu") is None, reason="dcmtk is not installed"),
]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ACSN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}
STUDY_UID = "1.2.826.0.1.3680043.8.498.4242"


def order(patient: str, accession: str, modality: str, when: str, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "identifier": [{"type": ACSN, "system": "urn:acc", "value": accession}],
        "code": {"coding": [{"system": DCM, "code": modality}]},
        "subject": {"reference": patient},
        "occurrenceDateTime": when,
        **more,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Application, int]]:
    port = free_port()
    data = tmp_path_factory.mktemp("worklist") / "data"
    async with running_application(data, dicom_port=port) as app:
        ctx = RequestContext()
        ro = await app.service.create(ctx, "Patient", {
            "resourceType": "Patient",
            "identifier": [{"system": "urn:oid:2.16.642.1", "value": "RO-1850101"}],
            "name": [{"family": "Țărănescu", "given": ["Ștefan"]}],
            "birthDate": "1985-01-01", "gender": "male",
        })  # fmt: skip
        zh = await app.service.create(ctx, "Patient", {
            "resourceType": "Patient", "identifier": [{"value": "ZH-7"}],
            "name": [{"family": "王", "given": ["小明"]}], "gender": "female",
        })  # fmt: skip
        first, second = f"Patient/{ro.version.id}", f"Patient/{zh.version.id}"
        station = [{"coding": [{"system": "urn:dicom:ae", "code": "CT_SALA1"}]}]
        uid = {"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY_UID}"}
        await app.service.create(ctx, "ServiceRequest", order(
            first, "ACC-URG", "CT", "2026-12-03T10:30:00+02:00", priority="stat",
            locationCode=station,
            identifier=[{"type": ACSN, "system": "urn:acc", "value": "ACC-URG"}, uid],
        ))  # fmt: skip
        await app.service.create(ctx, "ServiceRequest", order(
            second, "ACC-MR", "MR", "2026-12-04T08:00:00+02:00", priority="routine"
        ))  # fmt: skip
        await app.service.create(ctx, "ServiceRequest", {
            **order(first, "ACC-DONE", "CT", "2026-12-03T12:00:00+02:00"), "status": "completed"
        })  # fmt: skip
        yield app, port


async def findscu_w(port: int, out: Path, *keys: str) -> list[pydicom.Dataset]:
    """findscu -W with ``keys``; the responses it wrote (-X), in order."""
    return await asyncio.to_thread(_findscu_w, port, out, keys)


def _findscu_w(port: int, out: Path, keys: tuple[str, ...]) -> list[pydicom.Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["findscu", "-W", "-aet", "MODALITY", "-aec", "FHIRSERVER", "-X", "-od", str(out)]
    for key in keys:
        argv += ["-k", key]
    argv += ["127.0.0.1", str(port)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return [pydicom.dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


RETURN_KEYS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
    "StudyInstanceUID", "RequestedProcedurePriority", "ScheduledProcedureStepSequence[0].Modality",
    "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
)  # fmt: skip


async def test_modality_station_and_date_select_the_stat_order(
    node: tuple[Application, int], tmp_path: Path
) -> None:
    _, port = node
    keys = [k for k in RETURN_KEYS if "Modality" not in k and "Station" not in k]
    keys = [k for k in keys if "StartDate" not in k]
    answers = await findscu_w(
        port, tmp_path, *keys,
        "ScheduledProcedureStepSequence[0].Modality=CT",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT_SALA1",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20261201-20261231",
    )  # fmt: skip
    assert len(answers) == 1  # the completed CT order and the MR order are not on the list
    item = answers[0]
    assert item.AccessionNumber == "ACC-URG"
    assert item.RequestedProcedurePriority == "STAT"
    assert item.StudyInstanceUID == STUDY_UID
    assert item.SpecificCharacterSet == "ISO_IR 192"
    assert str(item.PatientName) == "Țărănescu^Ștefan"  # Romanian diacritics survive
    assert (item.PatientID, item.PatientBirthDate, item.PatientSex) == (
        "RO-1850101",
        "19850101",
        "M",
    )
    step = item.ScheduledProcedureStepSequence[0]
    assert step.Modality == "CT"
    assert step.ScheduledStationAETitle == "CT_SALA1"
    assert step.ScheduledProcedureStepStartDate == "20261203"
    assert "PatientWeight" not in item and "ReferringPhysicianName" not in item  # not asked


async def test_patient_name_wildcard_and_chinese_name(
    node: tuple[Application, int], tmp_path: Path
) -> None:
    _, port = node
    answers = await findscu_w(port, tmp_path, "SpecificCharacterSet=ISO_IR 192",
                              "PatientName=王*", "AccessionNumber",
                              "ScheduledProcedureStepSequence[0].Modality")  # fmt: skip
    assert [a.AccessionNumber for a in answers] == ["ACC-MR"]
    assert str(answers[0].PatientName) == "王^小明"
    assert answers[0].ScheduledProcedureStepSequence[0].Modality == "MR"


async def test_accession_and_patient_id_keys(node: tuple[Application, int], tmp_path: Path) -> None:
    _, port = node
    by_accession = await findscu_w(port, tmp_path / "a", "AccessionNumber=ACC-MR", "PatientID")
    assert [a.PatientID for a in by_accession] == ["ZH-7"]
    by_patient = await findscu_w(port, tmp_path / "p", "PatientID=RO-1850101", "AccessionNumber")
    assert [a.AccessionNumber for a in by_patient] == ["ACC-URG"]


async def test_no_match_is_an_empty_success(node: tuple[Application, int], tmp_path: Path) -> None:
    _, port = node
    answers = await findscu_w(port, tmp_path, "PatientName=Nobody*", "AccessionNumber",
                              "ScheduledProcedureStepSequence[0].Modality=CT")  # fmt: skip
    assert answers == []
