"""The Study Date index (imaging/date_index.py) in a real SQLite record store: a query by Study
Date (0008,0020), a date or a range, reads the studies the index finds, and answers exactly what
matching every study record would (matching.py, PS3.4 C.2.2.2)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.imaging import query as query_module
from fhir_server.imaging import study_map
from fhir_server.imaging.date_index import DateRange, date_put, date_ranges
from fhir_server.imaging.kinds import STUDY, STUDY_DATE
from fhir_server.imaging.matching import matches
from fhir_server.imaging.query import StudyQuery, keys_of
from fhir_server.storage.records import RecordStore

CTX = RequestContext(channel="test")


def study(uid: str, date: list[str] | None, vr: str = "DA") -> dict[str, Any]:
    """A ``dicom-study`` value with the Study Date ``date`` (None: no attribute)."""
    attributes: dict[str, Any] = {"0020000D": {"vr": "UI", "Value": [uid]}}
    if date is not None:
        attributes["00080020"] = {"vr": vr, "Value": date} if date else {"vr": vr}
    return {"study": uid, "attributes": attributes, "imaging_study": None, "organization": None}


async def put_studies(records: RecordStore, studies: list[dict[str, Any]]) -> None:
    await records.put_many([p for s in studies for p in study_map.study_puts(s)])


async def by_date(query: StudyQuery, value: str) -> list[str]:
    found = await query.search(CTX, "STUDY", {"StudyDate": value})
    return [item["0020000D"]["Value"][0] for item in found]


def test_the_key_orders_one_eight_digit_date_and_files_the_rest_apart() -> None:
    put = date_put("1.2.3", study("1.2.3", ["20240105"])["attributes"])
    assert put is not None and put.kind == STUDY_DATE and put.key == "20240105/1.2.3"
    for odd in (["20240105", "20240106"], ["2024.01.05"], ["240105"]):
        put = date_put("1.2.3", study("1.2.3", odd)["attributes"])
        assert put is not None and put.key == "~/1.2.3", odd
    put = date_put("1.2.3", study("1.2.3", ["20240105"], vr="LO")["attributes"])
    assert put is not None and put.key == "~/1.2.3"  # not a DA: matched as text, not as range
    assert date_put("1.2.3", study("1.2.3", None)["attributes"]) is None
    assert date_put("1.2.3", study("1.2.3", [])["attributes"]) is None


def test_match_values_read_as_matching_reads_them() -> None:
    assert date_ranges("20240105") == [DateRange("20240105", "20240105")]
    assert date_ranges(" 20240101 - 20241231 ") == [DateRange("20240101", "20241231")]
    assert date_ranges("-20240105\\20240301-") == [
        DateRange("", "20240105"), DateRange("20240301", ""),
    ]  # fmt: skip
    for universal in ("", "*", "2024*", "2024010?", "-"):
        assert date_ranges(universal) is None, universal


async def test_a_query_by_study_date_goes_by_the_index(records: RecordStore) -> None:
    await put_studies(records, [study("1.1", ["20240105"]), study("1.2", ["20240301"]),
                                study("1.3", ["20231201"])])  # fmt: skip
    # a study record written without its date record is not found by a date query
    await records.put(STUDY, "1.4", study("1.4", ["20240105"]))
    query = StudyQuery(records)
    assert await by_date(query, "20240105") == ["1.1"]
    assert await by_date(query, "20240101-") == ["1.1", "1.2"]
    assert await by_date(query, "-20240105") == ["1.1", "1.3"]
    assert await by_date(query, "20231201\\20240301") == ["1.2", "1.3"]
    assert await by_date(query, "20240102-20240104") == []
    # a wildcard is matched on every study record, as before the index
    assert await by_date(query, "2024010*") == ["1.1", "1.4"]


async def test_dates_the_index_cannot_order_are_still_found(records: RecordStore) -> None:
    await put_studies(records, [study("2.1", ["20240105", "20240106"]), study("2.2", ["2024"]),
                                study("2.3", ["20240106"]), study("2.4", [])])  # fmt: skip
    query = StudyQuery(records)
    assert await by_date(query, "20240106") == ["2.1", "2.3"]
    assert await by_date(query, "20240101-20241231") == ["2.1", "2.3"]
    assert await by_date(query, "2024") == ["2.2"]
    assert await by_date(query, "-") == ["2.1", "2.2", "2.3"]  # a study without date: never


async def test_more_studies_than_the_index_is_worth_reads_them_all(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query_module, "INDEXED_MAX", 2)
    await put_studies(records, [study(f"3.{n}", [f"2024010{n}"]) for n in range(1, 6)])
    query = StudyQuery(records)
    assert await by_date(query, "20240102-20240104") == ["3.2", "3.3", "3.4"]
    assert await by_date(query, "20240105") == ["3.5"]


async def test_the_index_answers_what_matching_every_study_answers(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random dates (some the index cannot order) and random match values, several pages of
    the index: the query answers the studies whose record matches, no more, no fewer."""
    monkeypatch.setattr("fhir_server.imaging.date_index.PAGE", 7)
    rng = random.Random(20261205)
    days = [f"2024{m:02d}{d:02d}" for m in (1, 2, 12) for d in (1, 2, 15, 28)]
    odd = [["2024.01.02"], ["20240102", "20240215"], ["2024"], []]
    studies = []
    for n in range(60):
        date = rng.choice(odd) if n % 9 == 0 else [rng.choice(days)]
        studies.append(study(f"4.{n:02d}", date if n % 13 else None))
    await put_studies(records, studies)
    query = StudyQuery(records)
    values = ["20240102", "20240101-20240215", "-20240201", "20241201-", "2024",
              "20240102\\20241228", "20240215-20240101", "2024010", "20240102 -20240102",
              "202401021200-"]  # fmt: skip
    values += [f"{rng.choice(days)}-{rng.choice(days)}" for _ in range(10)]
    for value in values:
        [key] = keys_of({"StudyDate": value}, "STUDY")
        expected = sorted(str(s["study"]) for s in studies if matches(s["attributes"], key))
        assert await by_date(query, value) == expected, value


async def test_an_accession_shared_by_more_studies_than_a_page_finds_them_all(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accession index is read a page at a time too (kinds.every), as the date index is."""
    monkeypatch.setattr(query_module, "PAGE", 2)
    shared = [study(f"5.{n}", ["20240105"]) for n in range(5)]
    for value in shared:
        value["attributes"]["00080050"] = {"vr": "SH", "Value": ["ACC-SHARED"]}
    await put_studies(records, shared)
    found = await StudyQuery(records).search(CTX, "STUDY", {"AccessionNumber": "ACC-SHARED"})
    assert [item["0020000D"]["Value"][0] for item in found] == [f"5.{n}" for n in range(5)]
