"""Orthanc as a sender: Orthanc C-STOREs a study to our node (POST /modalities/{id}/store) and the
ImagingStudy appears; then Orthanc asks us for storage commitment (RO-19) and gets the report
(N-EVENT-REPORT on a new association to its own AE, as the AE allow-list gives its address).

Orthanc runs in a private network namespace (tests/dicom/orthanc.py), our server in the same one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.uid import generate_uid

from tests.dicom.orthanc import Namespace, Orthanc, ServerInNamespace, ct_study, unavailable_reason

NODE_DICOM = 11112


def require_orthanc() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the Orthanc tests")
        pytest.skip(reason)


class Peers:
    def __init__(self, orthanc: Orthanc, server: ServerInNamespace, study: str, refs: list[Any]):
        self.orthanc, self.server, self.study, self.refs = orthanc, server, study, refs


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """Orthanc holding a 3-instance study, which it has sent to our node."""
    require_orthanc()
    tmp = tmp_path_factory.mktemp("sender")
    node = {"FHIR": ("FHIRSERVER", "127.0.0.1", NODE_DICOM)}
    peer = ("--dicom-peer", "ORTHANC=Organization/orthanc-site@127.0.0.1:4242")
    with (
        Namespace() as ns,
        Orthanc(ns, modalities=node, workdir=tmp / "orthanc") as orthanc,
        ServerInNamespace(ns, tmp / "data", *peer, dicom_port=NODE_DICOM) as server,
    ):
        refs = []
        for part10 in ct_study("RO-SEND-1", "20261130", 3, accession="ACC-SEND"):
            answer = orthanc.upload(part10)
            ds = dcmread(DicomBytesIO(part10), stop_before_pixels=True)
            refs.append((str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
        study_id = answer["ParentStudy"]
        job = orthanc.store_to("FHIR", [study_id])
        assert job.get("FailedInstancesCount", 0) == 0, job
        yield Peers(orthanc, server, orthanc.study_uid(study_id), refs)


def test_study_sent_by_orthanc_appears_as_imaging_study(peers: Peers) -> None:
    query = f"/ImagingStudy?identifier=urn:dicom:uid|urn:oid:{peers.study}"
    # The ImagingStudy write is coalesced per study (quiet period, then at most a few seconds).
    deadline = time.monotonic() + 30
    entries: list[Any] = []
    while time.monotonic() < deadline:
        entries = peers.server.request("GET", query).get("entry", [])
        if entries and entries[0]["resource"].get("numberOfInstances") == 3:
            break
        time.sleep(0.25)
    assert len(entries) == 1
    study = entries[0]["resource"]
    assert study["numberOfInstances"] == 3
    assert study["series"][0]["modality"]["code"] == "CT"


def test_ro19_orthanc_requests_storage_commitment(peers: Peers) -> None:
    unknown = (peers.refs[0][0], generate_uid())
    report = peers.orthanc.request_commitment("FHIR", [*peers.refs, unknown])
    assert report["Status"] == "Failure", report  # Orthanc's word for "some failed"
    assert sorted(i["SOPInstanceUID"] for i in report["Success"]) == sorted(
        r[1] for r in peers.refs
    )
    assert [f["SOPInstanceUID"] for f in report["Failures"]] == [unknown[1]]
    assert report["Failures"][0]["FailureReason"] == 0x0112

    committed = peers.orthanc.request_commitment("FHIR", peers.refs)
    assert committed["Status"] == "Success", committed
