"""SMART on FHIR's Python client (PyPI ``fhirclient``, its own R4 models, written by no one here)
drives the real server over a socket: metadata, create, read, update, search, delete."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fhirclient import client
from fhirclient.models.humanname import HumanName
from fhirclient.models.patient import Patient
from fhirclient.server import FHIRNotFoundException

from tests.conftest import ServerProcess

pytestmark = pytest.mark.socket


@pytest.fixture(scope="module")
def smart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.FHIRClient]:
    data: Path = tmp_path_factory.mktemp("fhirclient") / "data"
    proc = ServerProcess(data)
    try:
        proc.wait_ready()
        yield client.FHIRClient(settings={"app_id": "tests", "api_base": f"{proc.base}/fhir"})
    finally:
        proc.stop()


def test_metadata_parses_with_the_clients_r4_models(smart: client.FHIRClient) -> None:
    statement = smart.server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    types = {resource.type for resource in statement.rest[0].resource}
    assert {"Patient", "ServiceRequest", "Task", "Consent", "ImagingStudy"} <= types


def test_create_read_update_search_delete(smart: client.FHIRClient) -> None:
    patient = Patient({"gender": "female", "birthDate": "1980-02-29"})
    name = HumanName()
    name.family, name.given = "Popescu", ["Ioana"]
    patient.name = [name]
    created = patient.create(smart.server)
    assert created is not None
    id = created["id"]

    read = Patient.read(id, smart.server)
    assert read.name[0].family == "Popescu" and read.birthDate.isostring == "1980-02-29"
    assert read.meta.versionId == "1"

    read.gender = "other"
    read.update(smart.server)
    assert Patient.read(id, smart.server).meta.versionId == "2"

    found = list(Patient.where({"_id": id}).perform_resources_iter(smart.server))
    assert [p.id for p in found] == [id]

    read.delete(smart.server)
    with pytest.raises(requests.HTTPError) as gone:
        Patient.read(id, smart.server)
    assert gone.value.response.status_code == 410  # deleted, history kept
    with pytest.raises(FHIRNotFoundException):
        Patient.read("never-existed", smart.server)
