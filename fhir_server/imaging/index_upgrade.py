"""One-time upgrades of the imaging index records (kinds.py), run when the ingest starts.

``dicom-study`` records are indexed by Patient ID since 2026-12-04 (study_map.study_put): a
patient's studies are then found by the index (QIDO-RS and C-FIND by PatientID, C-MOVE/C-GET
at PATIENT level) instead of by reading every study record. The records written before are put
again with their index, a page at a time, then a ``dicom-meta`` record says it is done; an
upgrade interrupted by a crash runs again whole (putting a record again changes nothing).
"""

from __future__ import annotations

from fhir_server.core.clock import Clock, to_instant
from fhir_server.imaging import study_map
from fhir_server.imaging.attributes import first
from fhir_server.imaging.kinds import META, STUDY
from fhir_server.storage.records import RecordStore

STUDIES_BY_PATIENT = "study-patient-index"
PAGE = 1000


async def index_studies_by_patient(records: RecordStore, clock: Clock) -> int:
    """Put every ``dicom-study`` record again with its Patient ID index, unless done before;
    the number of records put."""
    if await records.get(META, STUDIES_BY_PATIENT) is not None:
        return 0
    put = 0
    after: str | None = None
    while True:
        page = await records.find(STUDY, limit=PAGE, after=after)
        puts = [
            study_map.study_put(
                {**record, "patient": first(record.get("attributes") or {}, "PatientID")}
            )
            for record in page
        ]
        if puts:
            await records.put_many(puts)
            put += len(puts)
        if len(page) < PAGE:
            break
        after = str(page[-1]["study"])
    await records.put(META, STUDIES_BY_PATIENT, {"done": to_instant(clock())})
    return put


def _patient(record: dict[str, object]) -> str | None:
    attributes = record.get("attributes")
    return first(attributes if isinstance(attributes, dict) else {}, "PatientID")
