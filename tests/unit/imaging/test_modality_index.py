"""The modality index (imaging/modality_index.py) in a real SQLite record store: a query by
Modalities in Study (or by Modality at SERIES level) with exact values reads the studies the
index finds, and answers exactly what matching every record would (matching.py: case-sensitive,
lists, Multiple Value Matching)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.imaging import query as query_module
from fhir_server.imaging import study_map
from fhir_server.imaging.kinds import SERIES, STUDY, STUDY_MODALITY
from fhir_server.imaging.matching import matches
from fhir_server.imaging.modality_index import modality_puts
from fhir_server.imaging.narrowing import narrowing
from fhir_server.imaging.query import Level, Matching, StudyQuery, keys_of
from fhir_server.storage.records import RecordPut, RecordStore

CTX = RequestContext(channel="test")


def study(uid: str, *modalities: str) -> dict[str, Any]:
    """A ``dicom-study`` value with Modalities in Study ``modalities`` (none: no attribute)."""
    attributes: dict[str, Any] = {"0020000D": {"vr": "UI", "Value": [uid]}}
    if modalities:
        attributes["00080061"] = {"vr": "CS", "Value": list(modalities)}
    return {"study": uid, "attributes": attributes, "imaging_study": None, "organization": None}


def series(study_uid: str, uid: str, modality: str) -> dict[str, Any]:
    attributes = {
        "0020000D": {"vr": "UI", "Value": [study_uid]},
        "0020000E": {"vr": "UI", "Value": [uid]},
        "00080060": {"vr": "CS", "Value": [modality]},
    }
    return {"study": study_uid, "series": uid, "attributes": attributes}


async def put_studies(records: RecordStore, studies: list[dict[str, Any]]) -> None:
    await records.put_many([p for s in studies for p in study_map.study_puts(s)])


async def found(
    query: StudyQuery, value: str, level: Level = "STUDY", how: Matching | None = None
) -> list[str]:
    key = "ModalitiesInStudy" if level == "STUDY" else "Modality"
    tag = "0020000D" if level == "STUDY" else "0020000E"
    items = await query.search(CTX, level, {key: value}, how=how or Matching())
    return [item[tag]["Value"][0] for item in items]


def test_a_study_has_a_record_per_modality() -> None:
    puts = modality_puts("1.2", study("1.2", "MR", "CT", "MR")["attributes"])
    assert {p.kind for p in puts} == {STUDY_MODALITY}
    assert [p.key for p in puts] == ["CT/1.2", "MR/1.2"]
    assert modality_puts("1.3", study("1.3")["attributes"]) == []


def test_exact_modalities_narrow_and_others_do_not() -> None:
    assert narrowing(keys_of({"ModalitiesInStudy": "CT\\MR"}, "STUDY")) == (
        "modality", ["CT", "MR"],
    )  # fmt: skip
    assert narrowing(keys_of({"Modality": "MR"}, "STUDY")) == ("modality", ["MR"])
    assert narrowing(keys_of({"Modality": "MR"}, "SERIES")) == ("modality", ["MR"])
    for value in ("", "*", "C*", "?T", "CT\\M*"):
        assert narrowing(keys_of({"ModalitiesInStudy": value}, "STUDY")) is None, value
    empty = Matching(empty_values=True)
    assert narrowing(keys_of({"ModalitiesInStudy": "CT"}, "STUDY", empty)) is None
    # a more telling key comes first
    assert narrowing(keys_of({"ModalitiesInStudy": "CT", "PatientID": "P1"}, "STUDY")) == (
        "patient", ["P1"],
    )  # fmt: skip


async def test_a_query_by_modality_goes_by_the_index(records: RecordStore) -> None:
    await put_studies(records, [study("1.1", "CT"), study("1.2", "CT", "PT"), study("1.3", "MR"),
                                study("1.4")])  # fmt: skip
    # a study record written without its modality records is not found by a narrowed query
    await records.put(STUDY, "1.5", study("1.5", "CT"))
    query = StudyQuery(records)
    assert await found(query, "CT") == ["1.1", "1.2"]
    assert await found(query, "MR\\PT") == ["1.2", "1.3"]
    assert await found(query, "ct") == []  # CS matching is case-sensitive
    assert await found(query, "C*") == ["1.1", "1.2", "1.5"]  # not narrowed: every record read
    both = Matching(comma_lists=True, multiple_values=True)
    assert await found(query, "CT,PT", how=both) == ["1.2"]
    await records.put_many([
        RecordPut(SERIES, "2.1", series("1.2", "2.1", "PT"), index="study"),
        RecordPut(SERIES, "2.2", series("1.2", "2.2", "CT"), index="study"),
        RecordPut(SERIES, "2.3", series("1.3", "2.3", "MR"), index="study"),
    ])  # fmt: skip
    assert await found(query, "PT", "SERIES") == ["2.1"]
    assert await found(query, "MR\\CT", "SERIES") == ["2.2", "2.3"]


async def test_more_studies_than_the_index_is_worth_reads_them_all(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query_module, "INDEXED_MAX", 2)
    await put_studies(records, [study(f"3.{n}", "CT") for n in range(1, 6)])
    await records.put(STUDY, "3.9", study("3.9", "CT"))  # found only by reading every record
    assert await found(StudyQuery(records), "CT") == [*(f"3.{n}" for n in range(1, 6)), "3.9"]


async def test_the_index_answers_what_matching_every_study_answers(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random modality sets (some with values that differ only in case or by a space, or that
    hold a slash) and random match values over several pages of the index: the query answers
    the studies whose record matches, no more, no fewer."""
    monkeypatch.setattr("fhir_server.imaging.modality_index.PAGE", 4)
    rng = random.Random(20261205)
    pool = ["CT", "MR", "PT", "US", "DX", "ct", "SR", "OT", "C", "CTA", "A/B", "A", "MR "]
    studies = [study(f"4.{n:02d}", *rng.sample(pool, rng.randint(0, 3))) for n in range(60)]
    await put_studies(records, studies)
    query = StudyQuery(records)
    values = (
        pool
        + ["\\".join(rng.sample(pool, rng.randint(2, 3))) for _ in range(20)]
        + ["XA", "A/", "CT\\XA"]
    )
    for how in (Matching(), Matching(multiple_values=True)):
        for value in values:
            [key] = keys_of({"ModalitiesInStudy": value}, "STUDY", how)
            expected = sorted(str(s["study"]) for s in studies if matches(s["attributes"], key))
            assert await found(query, value, how=how) == expected, (value, how)
