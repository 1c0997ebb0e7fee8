"""Orthanc's DICOMweb plugin as a client of our DICOMweb service (its ``DicomWeb.Servers``):
Orthanc sends a study by STOW-RS, finds it by QIDO-RS at the study, series and instance levels,
reads its metadata, and, after deleting its own copy, retrieves it back by WADO-RS byte for byte.

A real peer nobody here wrote, the way a PACS exchanges studies with a DICOMweb archive. Orthanc
runs in a private network namespace (tests/dicom/orthanc.py), our server in the same one.
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO

from tests.dicom.orthanc import Namespace, Orthanc, ServerInNamespace, ct_study
from tests.dicom.test_orthanc_sender import require_orthanc

OURS = "ours"
PATIENT = "RO-WEB-1"
COUNT = 3


class Peers:
    def __init__(self, orthanc: Orthanc, server: ServerInNamespace, study: list[bytes]):
        self.orthanc, self.server, self.study = orthanc, server, study
        first = dcmread(DicomBytesIO(study[0]), stop_before_pixels=True)
        self.study_uid = str(first.StudyInstanceUID)
        self.series_uid = str(first.SeriesInstanceUID)
        self.orthanc_study = ""
        self.stow: dict[str, Any] = {}

    def qido(self, uri: str, **arguments: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self.orthanc.post_json(
            f"/dicom-web/servers/{OURS}/qido", {"Uri": uri, "Arguments": arguments}
        )
        return answer


def _value(result: dict[str, Any], name: str) -> Any:
    """A value from Orthanc's QIDO answer (it re-keys our DICOM JSON by tag with names)."""
    for element in result.values():
        if element.get("Name") == name:
            return element.get("Value")
    return None


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """Orthanc, configured with our /dicomweb/ as a DICOMweb server, holding a CT study it has
    sent to us by STOW-RS."""
    require_orthanc()
    tmp = tmp_path_factory.mktemp("orthanc-web")
    web = {"Enable": True, "Root": "/dicom-web/", "Ssl": False,
           "Servers": {OURS: ["http://127.0.0.1:8080/dicomweb/"]}}  # fmt: skip
    with (
        Namespace() as ns,
        Orthanc(ns, workdir=tmp / "orthanc", config={"DicomWeb": web}) as orthanc,
        ServerInNamespace(ns, tmp / "data") as server,
    ):
        peers = Peers(orthanc, server, ct_study(PATIENT, "20261202", COUNT, accession="ACC-WEB"))
        for part10 in peers.study:
            peers.orthanc_study = orthanc.upload(part10)["ParentStudy"]
        peers.stow = orthanc.post_json(
            f"/dicom-web/servers/{OURS}/stow", {"Resources": [peers.orthanc_study]}
        )
        yield peers


def test_orthanc_stows_a_study_that_becomes_an_imaging_study(peers: Peers) -> None:
    assert int(peers.stow["InstancesCount"]) == COUNT, peers.stow
    query = f"/ImagingStudy?identifier=urn:dicom:uid|urn:oid:{peers.study_uid}"
    deadline = time.monotonic() + 30
    entries: list[Any] = []
    while time.monotonic() < deadline:
        entries = peers.server.request("GET", query).get("entry", [])
        if entries and entries[0]["resource"].get("numberOfInstances") == COUNT:
            break
        time.sleep(0.25)
    assert len(entries) == 1
    study = entries[0]["resource"]
    assert study["numberOfInstances"] == COUNT
    assert study["series"][0]["uid"] == peers.series_uid
    accession = [i for i in study["identifier"] if i.get("type", {}).get("coding")]
    assert accession and accession[0]["value"] == "ACC-WEB"


def test_orthanc_finds_the_study_series_and_instances_by_qido(peers: Peers) -> None:
    studies = peers.qido("/studies", PatientID=PATIENT)
    assert len(studies) == 1
    found = studies[0]
    assert _value(found, "StudyInstanceUID") == peers.study_uid
    assert _value(found, "AccessionNumber") == "ACC-WEB"
    assert _value(found, "ModalitiesInStudy") == "CT"
    # Orthanc 1.10's re-rendering drops the values of IS elements (ours are JSON numbers as
    # PS3.18 F.2.3 says; it does the same to its own): only their presence is seen through it
    names = {element.get("Name") for element in found.values()}
    assert {"NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries"} <= names
    assert peers.qido("/studies", PatientID="NO-SUCH-PATIENT") == []

    series = peers.qido(f"/studies/{peers.study_uid}/series")
    assert [_value(s, "SeriesInstanceUID") for s in series] == [peers.series_uid]
    instances = peers.qido(f"/studies/{peers.study_uid}/series/{peers.series_uid}/instances")
    expected = {str(dcmread(DicomBytesIO(p), stop_before_pixels=True).SOPInstanceUID)
                for p in peers.study}  # fmt: skip
    assert {_value(i, "SOPInstanceUID") for i in instances} == expected


def test_orthanc_reads_the_study_metadata(peers: Peers) -> None:
    metadata = peers.orthanc.post_json(
        f"/dicom-web/servers/{OURS}/get", {"Uri": f"/studies/{peers.study_uid}/metadata"}
    )
    assert isinstance(metadata, list) and len(metadata) == COUNT
    for instance in metadata:
        assert instance["0020000D"]["Value"] == [peers.study_uid]
        assert instance["00100020"]["Value"] == [PATIENT]
        # bulk data (the pixels) is referenced, not inlined
        pixels = instance.get("7FE00010", {})
        assert "BulkDataURI" in pixels or "InlineBinary" not in pixels


def test_orthanc_retrieves_the_study_back_by_wado_byte_identical(peers: Peers) -> None:
    peers.orthanc.request("DELETE", f"/studies/{peers.orthanc_study}")
    assert peers.orthanc.studies() == []
    answer = peers.orthanc.post_json(
        f"/dicom-web/servers/{OURS}/retrieve", {"Resources": [{"Study": peers.study_uid}]}
    )
    assert int(answer["ReceivedInstancesCount"]) == COUNT, answer
    held = peers.orthanc.get("/instances")
    got = sorted(
        hashlib.sha256(peers.orthanc.request("GET", f"/instances/{i}/file")).hexdigest()
        for i in held
    )
    assert got == sorted(hashlib.sha256(p).hexdigest() for p in peers.study)


def test_orthanc_retrieving_an_unknown_study_gets_nothing(peers: Peers) -> None:
    before = peers.orthanc.get("/instances")
    with pytest.raises(urllib.error.HTTPError) as refused:  # Orthanc relays our 404 as an error
        peers.orthanc.post_json(
            f"/dicom-web/servers/{OURS}/retrieve", {"Resources": [{"Study": "1.2.3.4.5.6.7"}]}
        )
    refused.value.close()
    assert peers.orthanc.get("/instances") == before
