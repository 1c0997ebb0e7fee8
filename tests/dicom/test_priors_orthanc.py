"""Prior studies from Orthanc (RO-16, RO-17): our server queries Orthanc (C-FIND) for the
patient's studies and retrieves them by C-MOVE (Orthanc sends them to our node) or C-GET (same
association); they arrive through our C-STORE path and appear as ImagingStudy resources.

Orthanc runs in a private network namespace (tests/dicom/orthanc.py), our server in the same one.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dicom.orthanc import Namespace, Orthanc, ServerInNamespace, ct_study, unavailable_reason

PATIENT = "RO-PRIOR-1"
NODE_DICOM, GET_DICOM = 11112, 11113


def require_orthanc() -> None:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the Orthanc tests")
        pytest.skip(reason)


class Setup:
    def __init__(self, ns: Namespace, orthanc: Orthanc, priors: dict[str, int], tmp: Path) -> None:
        self.ns, self.orthanc, self.priors, self.tmp = ns, orthanc, priors, tmp


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """Orthanc holding two prior studies (2 and 3 instances) of PATIENT and one of someone else."""
    require_orthanc()
    tmp = tmp_path_factory.mktemp("priors")
    node = {"FHIR": ("FHIRSERVER", "127.0.0.1", NODE_DICOM)}
    with Namespace() as ns, Orthanc(ns, modalities=node, workdir=tmp / "orthanc") as orthanc:
        priors: dict[str, int] = {}
        for date, count in (("20240115", 2), ("20250210", 3)):
            instances = ct_study(PATIENT, date, count, accession=f"ACC-{date}")
            for part10 in instances:
                answer = orthanc.upload(part10)
            priors[orthanc.study_uid(answer["ParentStudy"])] = count
        for part10 in ct_study("SOMEONE-ELSE", "20240301", 1):
            orthanc.upload(part10)
        yield Setup(ns, orthanc, priors, tmp)


def imaging_study(server: ServerInNamespace, study_uid: str) -> dict[str, Any] | None:
    query = f"/ImagingStudy?identifier=urn:dicom:uid|urn:oid:{study_uid}"
    entries = server.request("GET", query).get("entry", [])
    return entries[0]["resource"] if entries else None


def fetch_priors(server: ServerInNamespace, patient: str) -> list[dict[str, Any]]:
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "patient", "valueString": patient}],
    }
    answer = server.request("POST", "/ImagingStudy/$fetch-priors", parameters)
    studies = []
    for study in answer.get("parameter", []):
        parts = {
            p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in study["part"]
        }
        studies.append(parts)
    return studies


def test_ro16_priors_by_c_move(setup: Setup) -> None:
    data = setup.tmp / "move"
    remote = ("--dicom-remote", "ORTHANC@127.0.0.1:4242", "--dicom-priors", "manual")
    with ServerInNamespace(setup.ns, data / "data", *remote, dicom_port=NODE_DICOM) as server:
        studies = fetch_priors(server, PATIENT)
        assert {s["uid"]: s["outcome"] for s in studies} == dict.fromkeys(setup.priors, "retrieved")
        for study in studies:
            assert study["completed"] == setup.priors[study["uid"]]
            assert study["imagingStudy"]["reference"].startswith("ImagingStudy/")
        for uid, count in setup.priors.items():
            found = imaging_study(server, uid)
            assert found is not None and found["numberOfInstances"] == count
        again = fetch_priors(server, PATIENT)  # held now: nothing moved twice
        assert {s["outcome"] for s in again} == {"already-held"}


def test_ro17_priors_by_c_get_automatically_when_a_new_study_arrives(setup: Setup) -> None:
    data = setup.tmp / "get"
    options = ("--dicom-remote", "ORTHANC@127.0.0.1:4242", "--dicom-retrieve", "get")
    with ServerInNamespace(
        setup.ns, data / "data", *options, http_port=8081, dicom_port=GET_DICOM
    ) as server:
        current = data / "current.dcm"
        current.write_bytes(ct_study(PATIENT, "20261201", 1)[0])
        argv = ["storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(GET_DICOM)]
        done = setup.ns.run([*argv, str(current)], env={"TCP_NODELAY": "1"})
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 90
        found: dict[str, Any] = {}
        while time.monotonic() < deadline and len(found) < len(setup.priors):
            for uid in setup.priors:
                study = imaging_study(server, uid)
                if study is not None and study.get("numberOfInstances") == setup.priors[uid]:
                    found[uid] = study
            time.sleep(0.5)
        assert set(found) == set(setup.priors), server.log.read_text(errors="replace")[-3000:]


def test_unknown_patient_finds_nothing_and_bad_parameter_is_named(setup: Setup) -> None:
    data = setup.tmp / "none"
    remote = ("--dicom-remote", "ORTHANC@127.0.0.1:4242", "--dicom-priors", "manual")
    with ServerInNamespace(
        setup.ns, data / "data", *remote, http_port=8082, dicom_port=11114
    ) as server:
        assert fetch_priors(server, "NOBODY-HERE") == []
        with pytest.raises(urllib.error.HTTPError) as failed:
            server.request("POST", "/ImagingStudy/$fetch-priors", {"resourceType": "Parameters"})
        with failed.value:
            assert failed.value.code == 400
            outcome = json.loads(failed.value.read())
        assert outcome["resourceType"] == "OperationOutcome"
        assert "patient" in json.dumps(outcome)
