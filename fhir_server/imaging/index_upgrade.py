"""One-time upgrades of the imaging index records (kinds.py), run when the ingest starts.

Since 2026-12-04 ``dicom-study`` records are indexed by Patient ID and each study with an Accession
Number has a ``dicom-accession`` record indexed by it; since that night each study with a Study Date
has a ``dicom-study-date`` record too (date_index.py), and since 2026-12-05 each study with a
Patient's Name ``dicom-study-name`` records (name_index.py), and later that day each study
``dicom-study-modality`` records (modality_index.py), all written by study_map.study_puts: a
patient's studies, an accession's, a period's or a modality's are found by an index (QIDO-RS and
C-FIND by PatientID, AccessionNumber, StudyDate, PatientName or Modality, C-MOVE/C-GET at PATIENT
level) instead of by reading every study record. The study records written before are put again with
their index and their accession, date, name and modality records, a page at a time, then a
``dicom-meta`` record names the index version done (``study-index-4``; a store that did only an
earlier one is put again whole); an upgrade interrupted by a crash runs again whole (putting a
record again changes nothing).
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.imaging import study_map
from fhir_server.imaging.kinds import META, STUDY, every
from fhir_server.storage.records import RecordStore

STUDY_INDEX = "study-index-4"
#: The markers of the versions before, removed once this one is done.
EARLIER = ("study-index-1", "study-index-2", "study-index-3")
PAGE = 1000


async def index_studies(records: RecordStore, clock: Clock) -> int:
    """Put every ``dicom-study`` record again with its Patient ID index, its Accession Number,
    Study Date, Patient's Name and modality records, unless done before; the number of study
    records put."""
    if await records.get(META, STUDY_INDEX) is not None:
        return 0
    put = 0
    batch: list[dict[str, Any]] = []
    async for record in every(records, STUDY, page=PAGE):
        batch.append(record)
        if len(batch) == PAGE:
            put += await _put_again(records, batch)
            batch = []
    put += await _put_again(records, batch)
    await records.put(META, STUDY_INDEX, {"done": to_instant(clock())})
    for marker in EARLIER:
        await records.delete(META, marker)
    return put


async def _put_again(records: RecordStore, studies: list[dict[str, Any]]) -> int:
    if studies:
        await records.put_many([put for study in studies for put in study_map.study_puts(study)])
    return len(studies)
