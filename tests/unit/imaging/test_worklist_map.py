"""ServiceRequest + Patient → Modality Worklist item, matching and answers (fhir_server/imaging/
worklist.py); the DIMSE side with dcmtk findscu -W is tests/dicom/test_worklist.py."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from fhir_server.imaging.worklist import answer, match_value, matches, worklist_item

ACSN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "ACSN"}]}


def order(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": "sr-ct-1",
        "status": "active",
        "intent": "order",
        "priority": "urgent",
        "identifier": [
            {"type": ACSN, "system": "urn:acc", "value": "ACC-42"},
            {"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.8.498.1"},
        ],
        "code": {
            "coding": [
                {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "CT",
                 "display": "Computed Tomography"}
            ],
            "text": "CT torace",
        },
        "subject": {"reference": "Patient/p1"},
        "occurrenceDateTime": "2026-12-03T10:30:00+02:00",
        "requester": {"display": "Dr. Ionescu"},
        "locationCode": [{"coding": [{"system": "urn:dicom:ae", "code": "CT_SALA1"}]}],
    }  # fmt: skip
    body.update(changes)
    return body


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": "urn:oid:1.2.3", "value": "RO-1850101"}],
    "name": [{"family": "Țărănescu", "given": ["Ștefan"]}],
    "birthDate": "1985-01-01",
    "gender": "male",
}


def request(**top: Any) -> Dataset:
    ds = Dataset()
    for keyword in ("PatientName", "PatientID", "AccessionNumber", "RequestedProcedurePriority"):
        setattr(ds, keyword, "")
    step = Dataset()
    for keyword in ("Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate"):
        setattr(step, keyword, "")
    for keyword, value in top.items():
        setattr(step if keyword in step else ds, keyword, value)
    ds.ScheduledProcedureStepSequence = Sequence([step])
    return ds


def test_item_maps_the_order_and_patient() -> None:
    item = worklist_item(order(), PATIENT)
    assert item.AccessionNumber == "ACC-42"
    assert item.StudyInstanceUID == "1.2.826.0.1.3680043.8.498.1"
    assert item.RequestedProcedurePriority == "HIGH"
    assert str(item.PatientName) == "Țărănescu^Ștefan"
    assert (item.PatientID, item.IssuerOfPatientID) == ("RO-1850101", "urn:oid:1.2.3")
    assert (item.PatientBirthDate, item.PatientSex) == ("19850101", "M")
    assert item.RequestedProcedureDescription == "CT torace"
    assert item.RequestedProcedureCodeSequence[0].CodingSchemeDesignator == "DCM"
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledStationAETitle) == ("CT", "CT_SALA1")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        "20261203",
        "103000",
    )


@pytest.mark.parametrize(
    ("priority", "expected"),
    [("stat", "STAT"), ("urgent", "HIGH"), ("asap", "HIGH"), ("routine", "ROUTINE")],
)
def test_priority(priority: str, expected: str) -> None:
    assert worklist_item(order(priority=priority), PATIENT).RequestedProcedurePriority == expected


def test_study_uid_without_a_preassigned_one_is_stable_per_order() -> None:
    first = worklist_item(order(identifier=[]), None).StudyInstanceUID
    assert first.startswith("2.25.") and len(first) <= 64
    assert worklist_item(order(identifier=[]), None).StudyInstanceUID == first
    assert worklist_item(order(identifier=[], id="other"), None).StudyInstanceUID != first


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({}, True),
        ({"Modality": "CT"}, True),
        ({"Modality": "MR"}, False),
        ({"ScheduledStationAETitle": "CT_SALA1"}, True),
        ({"ScheduledStationAETitle": "CT_SALA2"}, False),
        ({"ScheduledProcedureStepStartDate": "20261201-20261231"}, True),
        ({"ScheduledProcedureStepStartDate": "20261204-"}, False),
        ({"ScheduledProcedureStepStartDate": "-20261203"}, True),
        ({"PatientName": "ȚĂRĂNESCU*"}, True),
        ({"PatientName": "Ion*"}, False),
        ({"PatientID": "RO-18?0101"}, True),
        ({"AccessionNumber": "ACC-43"}, False),
    ],
)
def test_matching(keys: dict[str, str], expected: bool) -> None:
    assert matches(worklist_item(order(), PATIENT), request(**keys)) is expected


def test_match_value_uid_list_and_universal() -> None:
    assert match_value("1.2.3", "1.2.4\\1.2.3", "UI")
    assert not match_value("1.2.3", "1.2.4\\1.2.5", "UI")
    assert match_value("anything", "*", "LO")
    assert not match_value("", "20260101-20261231", "DA")


def test_answer_has_only_requested_keys_and_utf8_charset() -> None:
    ask = request(Modality="CT")
    response = answer(worklist_item(order(), PATIENT), ask)
    top = {e.keyword for e in response}
    assert top == {
        "SpecificCharacterSet", "PatientName", "PatientID", "AccessionNumber",
        "RequestedProcedurePriority", "ScheduledProcedureStepSequence",
    }  # fmt: skip
    assert response.SpecificCharacterSet == "ISO_IR 192"
    step = response.ScheduledProcedureStepSequence[0]
    assert {e.keyword for e in step} == {
        "Modality", "ScheduledStationAETitle", "ScheduledProcedureStepStartDate",
    }  # fmt: skip
    ascii_patient = {**PATIENT, "name": [{"family": "Popescu", "given": ["Ion"]}]}
    assert "SpecificCharacterSet" not in answer(worklist_item(order(), ascii_patient), ask)


def test_hl7v2_order_shape_modality_in_order_detail_and_typed_ids() -> None:
    """The HL7 v2 order mapping puts the modality in orderDetail and types RP/SPS ids by text."""
    hl7 = order(
        code={"coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "CT Chest"}]},
        orderDetail=[{"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM",
                                  "code": "CT"}]}],
        identifier=[
            {"type": ACSN, "value": "ACC-9"},
            {"type": {"text": "Requested Procedure ID"}, "value": "RP-1"},
            {"type": {"text": "Scheduled Procedure Step ID"}, "value": "SPS-1"},
        ],
    )  # fmt: skip
    item = worklist_item(hl7, PATIENT)
    assert (item.AccessionNumber, item.RequestedProcedureID) == ("ACC-9", "RP-1")
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.Modality, step.ScheduledProcedureStepID) == ("CT", "SPS-1")
    assert item.RequestedProcedureCodeSequence[0].CodingSchemeDesignator == "LN"
    assert item.RequestedProcedureDescription == "CT Chest"
