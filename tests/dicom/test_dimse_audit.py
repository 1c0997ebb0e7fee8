"""RO-24 / CN-4.1.4 on the DICOM door: with authorization on, what a peer does over DIMSE is
audited like an identified REST request — dcmtk's storescu, findscu and getscu against the node;
one "DICOM Instances Transferred" per association and study for C-STORE (with the count and the
patient as sent), one per study for C-GET, one "Query" per C-FIND; the agent is the calling AE
title and the Organization the allow-list maps it to. With --auth off nothing is audited."""

from __future__ import annotations

import base64
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom

from fhir_server.bootstrap import Application
from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study
from tests.dicom.test_node import dcmtk, pytestmark, storescu  # noqa: F401  (dcmtk required)
from tests.unit.imaging import synth

PEER = "MODALITY=Organization/hospital-a"
DCM = "http://dicom.nema.org/resources/ontology/DCM"


async def audit_events(app: Application) -> list[dict[str, Any]]:
    await app.audit.flush()
    found = await app.service.search_type(RequestContext(), "AuditEvent", [("_count", "100")])
    return [e["resource"] for e in fhirjson.loads(fhirjson.dumps(found)).get("entry", [])]


def of(events: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    return [e for e in events if e["subtype"][0]["code"] == operation]


async def send_study(app: Application, port: int, tmp_path: Path, patient: str) -> str:
    files = ct_study(patient, "20261201", 2)
    paths = [synth.write(tmp_path / f"{patient}-{n}.dcm", f) for n, f in enumerate(files)]
    done = await dcmtk(*storescu(port, *paths))
    assert done.returncode == 0, done.stderr
    assert app.imaging is not None
    await app.imaging.flush()
    return str(pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID)


async def test_ro24_dimse_operations_are_audited_with_the_peer(tmp_path: Path) -> None:
    port = free_port()
    async with running_application(
        tmp_path / "d", dicom_port=port, auth="smart", dicom_peers=(PEER,)
    ) as app:  # fmt: skip
        study = await send_study(app, port, tmp_path, "RO24-D1")
        find = await dcmtk(
            "findscu", "-S", "-aet", "MODALITY", "-aec", "FHIRSERVER",
            "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID=RO24-D1", "-k", "StudyInstanceUID",
            "127.0.0.1", str(port),
        )  # fmt: skip
        assert find.returncode == 0, find.stderr
        out = tmp_path / "got"
        out.mkdir()
        get = await dcmtk(
            "getscu", "-S", "-aet", "MODALITY", "-aec", "FHIRSERVER", "-od", str(out),
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}",
            "127.0.0.1", str(port),
        )  # fmt: skip
        assert get.returncode == 0, get.stdout + get.stderr
        events = await audit_events(app)
        by_subtype = await app.service.search_type(
            RequestContext(), "AuditEvent", [("subtype", "urn:fhir-server:audit:dimse|C-STORE")]
        )
        assert len(by_subtype.get("entry", [])) == 1
    [stored] = of(events, "C-STORE")
    assert stored["type"]["code"] == "110104" and stored["type"]["system"] == DCM
    assert stored["action"] == "C" and stored["outcome"] == "0"
    [peer] = [a for a in stored["agent"] if a["requestor"]]
    assert peer["altId"] == "MODALITY"
    assert peer["who"]["reference"].endswith("/Organization/hospital-a")
    assert peer["network"]["address"] == "127.0.0.1"
    [instances] = [e for e in stored["entity"] if e.get("role", {}).get("code") == "3"]
    assert instances["what"]["identifier"]["value"] == study
    assert {"type": "NumberOfInstances", "valueString": "2"} in instances["detail"]
    patients = [e for e in stored["entity"] if e.get("role", {}).get("code") == "1"]
    assert [p["what"]["identifier"]["value"] for p in patients] == ["RO24-D1"]
    [query] = of(events, "C-FIND")
    assert query["type"]["code"] == "110112" and query["action"] == "E"
    [asked] = [e for e in query["entity"] if e.get("role", {}).get("code") == "24"]
    assert "PatientID=RO24-D1" in base64.b64decode(asked["query"]).decode()
    [got] = of(events, "C-GET")
    assert got["action"] == "R" and got["type"]["code"] == "110104"
    [sent] = [e for e in got["entity"] if e.get("role", {}).get("code") == "3"]
    assert sent["what"]["identifier"]["value"] == study
    assert {"type": "NumberOfInstances", "valueString": "2"} in sent["detail"]


async def test_ro24_nothing_is_audited_with_auth_off(tmp_path: Path) -> None:
    port = free_port()
    async with running_application(tmp_path / "d", dicom_port=port) as app:
        await send_study(app, port, tmp_path, "RO24-D2")
        assert await audit_events(app) == []
