"""The imaging query (C-FIND and QIDO-RS) over index records in a real SQLite record store.

The series and study records are derived from the instance records by the same functions the
ingest uses (study_map), so the index here has the shape ImagingService writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server.core.access import Access, ResourceScope
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, InvalidRequest
from fhir_server.imaging import study_map
from fhir_server.imaging.kinds import INSTANCE, SERIES
from fhir_server.imaging.matching import matches
from fhir_server.imaging.query import Matching, StudyQuery, keys_of
from fhir_server.storage.records import RecordPut
from fhir_server.storage.sqlite import SqliteStore

CTX = RequestContext(channel="test")
CT = "1.2.840.10008.5.1.4.1.1.2"
QIDO = Matching(comma_lists=True, strict=True)


def _text(vr: str, *values: Any) -> dict[str, Any]:
    return {"vr": vr, "Value": list(values)} if values else {"vr": vr}


def _instance(study: str, series: str, sop: str, **kw: Any) -> dict[str, Any]:
    attributes = {
        "00080020": _text("DA", kw.get("date", "20240105")),
        "00080030": _text("TM", kw.get("time", "101500")),
        "00080050": _text("SH", kw.get("accession", "ACC1")),
        "00080060": _text("CS", kw.get("modality", "CT")),
        "00100010": _text("PN", {"Alphabetic": kw.get("name", "Popescu^Ana")}),
        "00100020": _text("LO", kw.get("pid", "P1")),
        "00100040": _text("CS", "F"),
        "0020000D": _text("UI", study),
        "0020000E": _text("UI", series),
        "00080016": _text("UI", CT),
        "00080018": _text("UI", sop),
        "00200011": _text("IS", kw.get("series_number", 1)),
        "00200013": _text("IS", kw.get("number", 1)),
        "00280010": _text("US", 16),
        "00280011": _text("US", 16),
    }
    return {"study": study, "series": series, "sop_instance": sop, "sop_class": CT,
            "ts": "1.2.840.10008.1.2.1", "blob": sop, "size": 100, "attributes": attributes,
            "organization": None}  # fmt: skip


STUDIES: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "1.2.1": [("1.2.1.1", "1.2.1.1.1", {}), ("1.2.1.1", "1.2.1.1.2", {"number": 2}),
              ("1.2.1.2", "1.2.1.2.1", {"modality": "SR", "series_number": 2})],
    "1.2.2": [("1.2.2.1", "1.2.2.1.1", {"pid": "P2", "name": "Ionescu^Dan", "date": "20231201",
                                        "modality": "MR", "accession": "ACC2"})],
    "1.2.3": [("1.2.3.1", "1.2.3.1.1", {"pid": "P1", "date": "20240301", "time": "2315",
                                        "accession": "ACC3"})],
}  # fmt: skip


@pytest.fixture
async def query(tmp_path: Path) -> AsyncIterator[StudyQuery]:
    store = SqliteStore(tmp_path)
    await store.open()
    try:
        records = store.records
        for study, members in STUDIES.items():
            kw_common = members[0][2]
            instances = [
                _instance(study, se, sop, **{**kw_common, **kw}) for se, sop, kw in members
            ]
            puts = [RecordPut(INSTANCE, i["sop_instance"], i, index="study") for i in instances]
            puts += [
                RecordPut(SERIES, s["series"], s, index="study")
                for s in study_map.series_records(study, instances)
            ]
            puts += study_map.study_puts(study_map.study_record(study, instances, None, None))
            await records.put_many(puts)
        yield StudyQuery(records, "http://h/dicomweb")
    finally:
        await store.close()


def _uids(found: list[dict[str, Any]], tag: str = "0020000D") -> list[str]:
    return [item[tag]["Value"][0] for item in found]


async def test_study_level_returns_required_attributes_and_retrieve_url(query: StudyQuery) -> None:
    found = await query.search(CTX, "STUDY", {})
    assert _uids(found) == ["1.2.1", "1.2.2", "1.2.3"]
    first = found[0]
    assert first["00080061"] == {"vr": "CS", "Value": ["CT", "SR"]}
    assert first["00201206"]["Value"] == [2] and first["00201208"]["Value"] == [3]
    assert first["00081190"] == {"vr": "UR", "Value": ["http://h/dicomweb/studies/1.2.1"]}
    assert first["00200010"] == {"vr": "SH"}  # StudyID: required, empty when not known
    assert list(first) == sorted(first)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"PatientID": "P1"}, ["1.2.1", "1.2.3"]),
        ({"00100020": "P2"}, ["1.2.2"]),
        ({"PatientName": "popescu*"}, ["1.2.1", "1.2.3"]),  # PN: case-insensitive wildcard
        ({"PatientName": "?onescu^Dan"}, ["1.2.2"]),
        ({"PatientID": "p1"}, []),  # LO: case-sensitive
        ({"StudyDate": "20240101-20240131"}, ["1.2.1"]),
        ({"StudyDate": "-20231231"}, ["1.2.2"]),
        ({"StudyDate": "20240102-"}, ["1.2.1", "1.2.3"]),
        ({"StudyDate": "20231201"}, ["1.2.2"]),
        ({"StudyTime": "2300-2359"}, ["1.2.3"]),
        ({"ModalitiesInStudy": "SR"}, ["1.2.1"]),
        ({"ModalitiesInStudy": "MR\\SR"}, ["1.2.1", "1.2.2"]),
        ({"Modality": "MR"}, ["1.2.2"]),  # at STUDY level: Modalities in Study
        ({"StudyInstanceUID": "1.2.3\\1.2.2"}, ["1.2.2", "1.2.3"]),
        ({"StudyInstanceUID": "1.2.3"}, ["1.2.3"]),
        ({"AccessionNumber": "ACC*", "PatientID": "P1", "StudyDate": "2024-"}, ["1.2.1", "1.2.3"]),
        ({"StudyDescription": "x"}, []),  # not in the index: no match
        ({"PatientID": ""}, ["1.2.1", "1.2.2", "1.2.3"]),  # universal
    ],
)
async def test_study_matching(query: StudyQuery, keys: dict[str, str], expected: list[str]) -> None:
    found = await query.search(CTX, "STUDY", keys)
    assert _uids(found) == expected


async def test_series_and_instance_levels(query: StudyQuery) -> None:
    series = await query.search(CTX, "SERIES", {}, study_uid="1.2.1")
    assert _uids(series, "0020000E") == ["1.2.1.1", "1.2.1.2"]
    assert series[0]["00201209"]["Value"] == [2]
    assert series[0]["00081190"]["Value"] == ["http://h/dicomweb/studies/1.2.1/series/1.2.1.1"]
    sr = await query.search(CTX, "SERIES", {"Modality": "SR"})
    assert _uids(sr, "0020000E") == ["1.2.1.2"]
    instances = await query.search(CTX, "IMAGE", {}, study_uid="1.2.1", series_uid="1.2.1.1")
    assert _uids(instances, "00080018") == ["1.2.1.1.1", "1.2.1.1.2"]
    assert instances[0]["00280010"] == {"vr": "US", "Value": [16]}
    everywhere = await query.search(CTX, "IMAGE", {"InstanceNumber": "2"})
    assert _uids(everywhere, "00080018") == ["1.2.1.1.2"]


async def test_includefield_limit_offset(query: StudyQuery) -> None:
    found = await query.search(CTX, "STUDY", {}, includefields=["00100040"], limit=1, offset=1)
    assert _uids(found) == ["1.2.2"] and found[0]["00100040"]["Value"] == ["F"]
    everything = await query.search(CTX, "SERIES", {}, study_uid="1.2.2", includefields=["all"])
    assert "00100040" in everything[0]
    plain = await query.search(CTX, "STUDY", {}, offset=5)
    assert plain == []


async def test_unknown_attribute_is_a_clear_error(query: StudyQuery) -> None:
    with pytest.raises(InvalidRequest, match="'PatientNam' is not a DICOM attribute keyword"):
        await query.search(CTX, "STUDY", {"PatientNam": "x"})
    with pytest.raises(InvalidRequest, match="'Nope'"):
        await query.search(CTX, "STUDY", {}, includefields=["Nope"])


@pytest.mark.parametrize(
    "key", ["RequestAttributesSequence.RequestedProcedureID", "00400275.00401001"]
)
async def test_a_key_inside_a_sequence_is_refused_as_such(query: StudyQuery, key: str) -> None:
    with pytest.raises(InvalidRequest, match=r"inside a sequence.*top-level attributes only"):
        await query.search(CTX, "STUDY", {key: "X"})


async def test_a_bad_part_of_a_sequence_path_is_named(query: StudyQuery) -> None:
    with pytest.raises(InvalidRequest, match=r"'Nope' in 'RequestAttributesSequence\.Nope'"):
        await query.search(CTX, "STUDY", {"RequestAttributesSequence.Nope": "X"})


def _ctx(*scopes: tuple[str, str, str]) -> RequestContext:
    granted = tuple(
        ResourceScope(level, type, frozenset(letters))  # type: ignore[arg-type]
        for level, type, letters in scopes
    )
    return RequestContext(channel="test", access=Access(granted, "client", "subject"))


async def test_scopes(query: StudyQuery) -> None:
    assert await query.search(_ctx(("user", "ImagingStudy", "rs")), "STUDY", {})
    assert await query.search(_ctx(("system", "*", "r")), "STUDY", {})
    with pytest.raises(Forbidden, match="ImagingStudy"):
        await query.search(_ctx(("user", "Patient", "rs")), "STUDY", {})
    with pytest.raises(Forbidden, match="patient/"):
        await query.search(_ctx(("patient", "ImagingStudy", "rs")), "STUDY", {})


def test_matching_edge_cases() -> None:
    attributes = {"00080030": {"vr": "TM", "Value": ["10:15:00.5"]},
                  "00100010": {"vr": "PN"}}  # fmt: skip
    [time] = keys_of({"StudyTime": "101500.5"}, "STUDY")
    assert matches(attributes, time)
    [name] = keys_of({"PatientName": "A*"}, "STUDY")
    assert not matches(attributes, name)  # empty value: no match for a non-universal key


@pytest.mark.parametrize(
    ("level", "keys", "tag", "expected"),
    [
        # by the study records' Patient ID index, study after study
        ("SERIES", {"PatientID": "P1"}, "0020000E", ["1.2.1.1", "1.2.1.2", "1.2.3.1"]),
        ("IMAGE", {"PatientID": "P2"}, "00080018", ["1.2.2.1.1"]),
        ("STUDY", {"PatientID": "P2\\P1"}, "0020000D", ["1.2.1", "1.2.2", "1.2.3"]),
        ("STUDY", {"PatientID": "nobody"}, "0020000D", []),
        # else by the Accession Number records' index
        ("STUDY", {"AccessionNumber": "ACC3"}, "0020000D", ["1.2.3"]),
        ("STUDY", {"AccessionNumber": "ACC2\\ACC1"}, "0020000D", ["1.2.1", "1.2.2"]),
        ("IMAGE", {"AccessionNumber": "ACC1"}, "00080018", ["1.2.1.1.1", "1.2.1.1.2", "1.2.1.2.1"]),
        ("STUDY", {"AccessionNumber": "ACC3", "PatientID": "P2"}, "0020000D", []),
        # a wildcard is matched on every record, as before the index
        ("STUDY", {"PatientID": "P*"}, "0020000D", ["1.2.1", "1.2.2", "1.2.3"]),
        ("SERIES", {"PatientID": "P?", "Modality": "SR"}, "0020000E", ["1.2.1.2"]),
        ("STUDY", {"AccessionNumber": "ACC*"}, "0020000D", ["1.2.1", "1.2.2", "1.2.3"]),
    ],
)
async def test_patient_id_or_accession_narrows_by_an_index(
    query: StudyQuery, level: Any, keys: dict[str, str], tag: str, expected: list[str]
) -> None:
    assert _uids(await query.search(CTX, level, keys), tag) == expected


@pytest.mark.parametrize(
    ("keys", "said"),
    [
        ({"StudyDate": "2004"}, r"StudyDate='2004': '2004' is not a DA value: expected YYYYMMDD"),
        ({"StudyDate": "20040101-2005"}, r"'20040101-2005' is not a DA value"),
        ({"StudyDate": "20240105\\2024-01-05"}, r"'2024-01-05' is not a DA value"),
        ({"StudyDate": "2024*"}, r"'2024\*' is not a DA value"),
        ({"StudyDate": "-"}, r"'-' is not a DA value"),
        ({"StudyTime": "10h15"}, r"'10h15' is not a TM value: expected HHMMSS.FFFFFF"),
        ({"ReferencedStudySequence": "1.2"}, r"ReferencedStudySequence='1.2': is a sequence"),
    ],
)
async def test_rule_ro23_a_qido_key_that_cannot_match_as_written_is_refused(
    query: StudyQuery, keys: dict[str, str], said: str
) -> None:
    with pytest.raises(InvalidRequest, match=said):
        await query.search(CTX, "STUDY", keys, how=QIDO)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"StudyDate": "20240105"}, ["1.2.1"]),
        ({"StudyDate": "20240101-"}, ["1.2.1", "1.2.3"]),
        ({"StudyDate": "-20231231"}, ["1.2.2"]),
        ({"StudyDate": "20231201\\20240301"}, ["1.2.2", "1.2.3"]),
        ({"StudyDate": "*"}, ["1.2.1", "1.2.2", "1.2.3"]),
        ({"StudyTime": "10:15-11"}, ["1.2.1", "1.2.2"]),
        ({"ReferencedStudySequence": ""}, ["1.2.1", "1.2.2", "1.2.3"]),
    ],
)
async def test_well_formed_dates_times_and_empty_sequences_still_match(
    query: StudyQuery, keys: dict[str, str], expected: list[str]
) -> None:
    assert _uids(await query.search(CTX, "STUDY", keys, how=QIDO)) == expected
    assert _uids(await query.search(CTX, "STUDY", keys)) == expected


async def test_c_find_matches_a_legacy_date_as_written(query: StudyQuery) -> None:
    """C-FIND stays lenient: a peer's ``2024`` or ``2024*`` is matched as text (no study here
    has such a date), not refused."""
    assert _uids(await query.search(CTX, "STUDY", {"StudyDate": "2024"})) == []
    assert _uids(await query.search(CTX, "STUDY", {"StudyDate": "2024*"})) == ["1.2.1", "1.2.3"]
