"""QIDO-RS's value syntax and optional matchings (PS3.18 Table 8.3.4-1, 8.3.4.1; PS3.4 C.2.2.2):
a UID list written with commas, ``emptyvaluematching`` and ``multiplevaluematching``, through
the index look-ups (Patient ID, Accession Number, Study Date) as well as the scan."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.imaging import study_map
from fhir_server.imaging.kinds import INSTANCE
from fhir_server.imaging.matching import matches
from fhir_server.imaging.query import DIMSE, Matching, StudyQuery, keys_of
from fhir_server.storage.records import RecordPut, RecordStore

CTX = RequestContext(channel="test")
CT = "1.2.840.10008.5.1.4.1.1.2"
QIDO = Matching(comma_lists=True)
EMPTY = Matching(comma_lists=True, empty_values=True)
MULTIPLE = Matching(comma_lists=True, multiple_values=True)


def _instance(study: str, sop: str, modality: str, **attributes: Any) -> dict[str, Any]:
    """An instance record; keyword arguments: DICOM JSON elements by tag (None: left out)."""
    values: dict[str, Any] = {
        "00080020": {"vr": "DA", "Value": ["20240105"]},
        "00080050": {"vr": "SH", "Value": ["ACC1"]},
        "00080060": {"vr": "CS", "Value": [modality]},
        "00100020": {"vr": "LO", "Value": ["P1"]},
        "0020000D": {"vr": "UI", "Value": [study]},
        "0020000E": {"vr": "UI", "Value": [f"{study}.{modality}"]},
        "00080018": {"vr": "UI", "Value": [sop]},
        "00081030": {"vr": "LO", "Value": ["CT, HEAD"]},
    }
    for tag, element in attributes.items():
        if element is None:
            values.pop(tag, None)
        else:
            values[tag] = element
    return {"study": study, "series": f"{study}.{modality}", "sop_instance": sop,
            "sop_class": CT, "ts": "1.2.840.10008.1.2.1", "blob": sop, "size": 100,
            "attributes": values, "organization": None}  # fmt: skip


# 1.2.1: CT and SR, accession ACC1, P1; 1.2.2: CT, no accession, no Patient ID, no date;
# 1.2.3: MR, accession present but empty, P2, 2023.
NOTHING = {"00080050": None, "00100020": None, "00080020": None}
EMPTIES = {
    "00080050": {"vr": "SH"},
    "00100020": {"vr": "LO", "Value": ["P2"]},
    "00080020": {"vr": "DA", "Value": ["20231201"]},
    "00081030": {"vr": "LO"},
}
STUDIES = {
    "1.2.1": [_instance("1.2.1", "1.2.1.1", "CT"), _instance("1.2.1", "1.2.1.2", "SR")],
    "1.2.2": [_instance("1.2.2", "1.2.2.1", "CT", **NOTHING)],
    "1.2.3": [_instance("1.2.3", "1.2.3.1", "MR", **EMPTIES)],
}


@pytest.fixture
async def query(records: RecordStore) -> StudyQuery:
    for study, instances in STUDIES.items():
        puts = [RecordPut(INSTANCE, i["sop_instance"], i, index="study") for i in instances]
        puts += study_map.study_puts(study_map.study_record(study, instances, None, None))
        await records.put_many(puts)
    return StudyQuery(records, "http://h/dicomweb")


async def _studies(query: StudyQuery, keys: dict[str, str], how: Matching) -> list[str]:
    found = await query.search(CTX, "STUDY", keys, how=how)
    return sorted(item["0020000D"]["Value"][0] for item in found)


async def test_a_uid_list_is_written_with_commas_in_qido(query: StudyQuery) -> None:
    assert await _studies(query, {"StudyInstanceUID": "1.2.1,1.2.3"}, QIDO) == ["1.2.1", "1.2.3"]
    assert await _studies(query, {"StudyInstanceUID": "1.2.1,9.9"}, QIDO) == ["1.2.1"]
    # a C-FIND identifier lists with backslashes: its commas are not separators
    assert await _studies(query, {"StudyInstanceUID": "1.2.1,1.2.3"}, DIMSE) == []
    assert await _studies(query, {"StudyInstanceUID": "1.2.1\\1.2.3"}, DIMSE) == [
        "1.2.1", "1.2.3"]  # fmt: skip


async def test_commas_in_other_values_are_literal(query: StudyQuery) -> None:
    """Only UIDs cannot hold a comma: a description's comma is part of the value."""
    [key] = keys_of({"StudyDescription": "CT, HEAD"}, "STUDY", QIDO)
    assert key.value == "CT, HEAD"
    [key] = keys_of({"PatientID": "P1,P2"}, "STUDY", MULTIPLE)  # Patient ID's VM is 1
    assert key.value == "P1,P2" and not key.every
    assert await _studies(query, {"PatientID": "P1,P2"}, MULTIPLE) == []


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        # an absent or empty attribute matches too (by the accession index, then a scan)
        ({"AccessionNumber": "ACC1"}, ["1.2.1", "1.2.2", "1.2.3"]),
        ({"AccessionNumber": "ACC*"}, ["1.2.1", "1.2.2", "1.2.3"]),
        # by the Patient ID index: 1.2.2 has no Patient ID
        ({"PatientID": "P2"}, ["1.2.2", "1.2.3"]),
        # by the Study Date index: 1.2.2 has no Study Date
        ({"StudyDate": "20231101-20231231"}, ["1.2.2", "1.2.3"]),
        # two QUOTATION MARKs: only the entities without a value
        ({"AccessionNumber": '""'}, ["1.2.2", "1.2.3"]),
        ({"PatientID": '""'}, ["1.2.2"]),
        ({"StudyDate": '""'}, ["1.2.2"]),
    ],
)
async def test_empty_value_matching(
    query: StudyQuery, keys: dict[str, str], expected: list[str]
) -> None:
    assert await _studies(query, keys, EMPTY) == expected


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"AccessionNumber": "ACC1"}, ["1.2.1"]),
        ({"PatientID": "P2"}, ["1.2.3"]),
        ({"StudyDate": "20231101-20231231"}, ["1.2.3"]),
        ({"AccessionNumber": '""'}, []),
    ],
)
async def test_without_empty_value_matching_an_empty_attribute_does_not_match(
    query: StudyQuery, keys: dict[str, str], expected: list[str]
) -> None:
    assert await _studies(query, keys, QIDO) == expected


async def test_multiple_value_matching_needs_every_value(query: StudyQuery) -> None:
    """Modalities in Study (CS, VM 1-n): CT and SR only in a study that has both (PS3.4
    C.2.2.2.8); without multiple value matching a list matches any of its values."""
    assert await _studies(query, {"ModalitiesInStudy": "CT,SR"}, MULTIPLE) == ["1.2.1"]
    assert await _studies(query, {"ModalitiesInStudy": "CT,MR"}, MULTIPLE) == []
    assert await _studies(query, {"ModalitiesInStudy": "CT"}, MULTIPLE) == ["1.2.1", "1.2.2"]
    assert await _studies(query, {"ModalitiesInStudy": "CT\\SR"}, DIMSE) == ["1.2.1", "1.2.2"]
    assert await _studies(query, {"ModalitiesInStudy": "CT,SR"}, QIDO) == []


def test_keys_carry_the_matchings_asked_for() -> None:
    [uids] = keys_of({"StudyInstanceUID": "1.2,1.3"}, "STUDY", QIDO)
    assert uids.value == "1.2\\1.3" and not uids.empty and not uids.every
    [modalities] = keys_of({"Modality": "CT,PT"}, "STUDY", MULTIPLE)  # study level: (0008,0061)
    assert (modalities.tag, modalities.value, modalities.every) == ("00080061", "CT\\PT", True)
    [empty] = keys_of({"AccessionNumber": '""'}, "STUDY", EMPTY)
    assert empty.empty
    assert matches({}, empty) and matches({"00080050": {"vr": "SH", "Value": [""]}}, empty)
    assert not matches({"00080050": {"vr": "SH", "Value": ["A"]}}, empty)
