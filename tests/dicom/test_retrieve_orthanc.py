"""RO-16 / RO-23 the other way round: Orthanc (a PACS nobody here wrote) fetches a study from
our node by C-MOVE (Move Destination: itself, a ``--dicom-peer`` of our node); the instances it
stores are the ones storescu sent us. (Orthanc 1.10 has no C-GET SCU route: C-GET is tested
with dcmtk getscu and pynetdicom in test_retrieve_scp.py.)

Orthanc and our server run in a private network namespace (tests/dicom/orthanc.py)."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

from tests.dicom.orthanc import Namespace, Orthanc, ServerInNamespace, ct_study
from tests.dicom.test_priors_orthanc import require_orthanc

NODE_DICOM = 11112


def without_padding(data: bytes) -> Dataset:
    ds = pydicom.dcmread(BytesIO(data))
    if (0xFFFC, 0xFFFC) in ds:  # dcmtk drops trailing padding when sending, PS3.10 allows it
        del ds[0xFFFC, 0xFFFC]
    return ds


def held_by_orthanc(orthanc: Orthanc, study_uid: str) -> dict[str, bytes]:
    """SOP Instance UID → Part-10 bytes of the instances Orthanc holds of ``study_uid``."""
    found = orthanc.post_json(
        "/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}}
    )
    out: dict[str, bytes] = {}
    for study in found:
        for instance in orthanc.get(f"/studies/{study}/instances"):
            data = orthanc.get(f"/instances/{instance['ID']}/file")
            out[str(pydicom.dcmread(BytesIO(data)).SOPInstanceUID)] = data
    return out


def test_ro16_orthanc_moves_a_study_from_our_node(tmp_path: Path) -> None:
    require_orthanc()
    node = {"FHIR": ("FHIRSERVER", "127.0.0.1", NODE_DICOM)}
    peer = ("--dicom-peer", "ORTHANC=Organization/remote-pacs@127.0.0.1:4242")
    files = ct_study("RO-RETR-ORTHANC", "20261204", 3)
    study = str(pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID)
    instances = {str(pydicom.dcmread(BytesIO(f)).SOPInstanceUID): f for f in files}
    paths = []
    for number, part10 in enumerate(files):
        path = tmp_path / f"i{number}.dcm"
        path.write_bytes(part10)
        paths.append(str(path))
    with (
        Namespace() as ns,
        Orthanc(ns, modalities=node, workdir=tmp_path / "orthanc") as orthanc,
        ServerInNamespace(ns, tmp_path / "data", *peer, dicom_port=NODE_DICOM),
    ):
        argv = ["storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(NODE_DICOM)]
        done = ns.run([*argv, *paths], env={"TCP_NODELAY": "1"})
        assert done.returncode == 0, done.stderr
        move = {
            "Level": "Study",
            "Resources": [{"StudyInstanceUID": study}],
            "TargetAet": "ORTHANC",
        }
        orthanc.post_json("/modalities/FHIR/move", move)  # synchronous: done when it answers
        held = held_by_orthanc(orthanc, study)
        assert sorted(held) == sorted(instances)
        for uid, part10 in instances.items():
            assert without_padding(held[uid]) == without_padding(part10)
