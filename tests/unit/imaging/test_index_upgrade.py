"""The one-time upgrade of the imaging index (imaging/index_upgrade.py): study records written
before they were indexed by Patient ID are put again with the index and their accession,
Study Date and Patient's Name records, once, page after page."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.imaging import index_upgrade
from fhir_server.imaging.kinds import META, STUDY
from fhir_server.imaging.query import StudyQuery
from fhir_server.storage.records import RecordStore

CTX = RequestContext(channel="test")


def clock() -> datetime:
    return datetime(2026, 12, 4, tzinfo=UTC)


def old_study(uid: str, patient: str | None) -> dict[str, object]:
    """A study record as written before the index: no ``patient`` field (and no accession or
    date record beside it)."""
    attributes: dict[str, object] = {
        "0020000D": {"vr": "UI", "Value": [uid]},
        "00080050": {"vr": "SH", "Value": [f"A-{uid}"]},
        "00080020": {"vr": "DA", "Value": [f"2024010{uid[-1]}"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"Name{uid[-1]}^Old"}]},
    }
    if patient is not None:
        attributes["00100020"] = {"vr": "LO", "Value": [patient]}
    return {"study": uid, "attributes": attributes, "imaging_study": None, "organization": None}


async def test_old_study_records_are_indexed_once(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_upgrade, "PAGE", 2)  # several pages
    for n, patient in enumerate(["P1", "P2", "P1", None, "P1"]):
        await records.put(STUDY, f"1.2.{n}", old_study(f"1.2.{n}", patient))
    query = StudyQuery(records)

    async def studies_of(patient: str, key: str = "PatientID") -> list[str]:
        found = await query.search(CTX, "STUDY", {key: patient})
        return [item["0020000D"]["Value"][0] for item in found]

    await records.put(META, "study-index-2", {"done": "2026-12-04T00:00:00Z"})  # the one before
    assert await studies_of("P1") == []  # the query goes by the index, which they lack
    assert await studies_of("A-1.2.3", "AccessionNumber") == []
    assert await studies_of("20240102-20240103", "StudyDate") == []
    assert await studies_of("name3*", "PatientName") == []
    assert await index_upgrade.index_studies(records, clock) == 5
    assert await studies_of("P1") == ["1.2.0", "1.2.2", "1.2.4"]
    assert await studies_of("P2") == ["1.2.1"]
    assert await studies_of("A-1.2.3", "AccessionNumber") == ["1.2.3"]
    assert await studies_of("20240102-20240103", "StudyDate") == ["1.2.2", "1.2.3"]
    assert await studies_of("name3*", "PatientName") == ["1.2.3"]
    assert await records.get(META, index_upgrade.STUDY_INDEX) is not None
    assert await records.get(META, "study-index-2") is None  # replaced by this version's
    assert await index_upgrade.index_studies(records, clock) == 0  # done before
