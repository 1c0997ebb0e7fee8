"""The modality index of the imaging records: finding the studies of a modality (QIDO-RS
``ModalitiesInStudy=MR``, a worklist filtered to one modality, C-FIND by Modality) without
reading every study record.

Each study record has a ``dicom-study-modality`` record (kinds.STUDY_MODALITY) per value of its
Modalities in Study (0008,0061), keyed ``<modality>/<Study Instance UID>``; the record port lists
a kind's keys in order, so the studies of a modality are a run of keys.

Why this never changes what a query answers (the match, matching.py, decides; the index only
says which study records to read): a CS value without wildcards matches a value equal to it
(case-sensitive), and the index is read only for such values (a list of them: any one, or with
Multiple Value Matching every one, of which any one's studies are a superset). At SERIES and
IMAGE level a Modality (0008,0060) key narrows to the studies having that modality: a study's
Modalities in Study are its instances' Modality values (study_map.study_record), written with
its series records (as with the other indexes, an instance of a study not written yet is found
once it is: at the end of its association or STOW-RS request). Written with the study record
(study_map.study_puts); a record left by a modality no longer in the study is a stale candidate,
filtered out by the match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.kinds import STUDY_MODALITY, studies_under_prefixes
from fhir_server.storage.records import RecordPut, RecordStore

MODALITIES_IN_STUDY_TAG = tag_key(0x00080061)
MODALITY_TAG = tag_key(0x00080060)
PAGE = 1000


def modality_puts(study: str, attributes: Mapping[str, Any]) -> list[RecordPut]:
    """The ``dicom-study-modality`` records of a study; none without Modalities in Study."""
    item = attributes.get(MODALITIES_IN_STUDY_TAG)
    if not isinstance(item, dict):
        return []
    modalities = sorted({str(m) for m in item.get("Value", ()) if m})
    return [RecordPut(STUDY_MODALITY, f"{m}/{study}", {"study": study, "modality": m})
            for m in modalities]  # fmt: skip


async def studies_of_modalities(
    records: RecordStore, modalities: Iterable[str], limit: int
) -> list[str] | None:
    """The Study Instance UIDs the index holds under any of ``modalities``, in UID order; None
    when there are more than ``limit`` (reading every study record is then cheaper than reading
    them one by one)."""
    prefixes = (f"{modality}/" for modality in modalities)
    return await studies_under_prefixes(
        records, STUDY_MODALITY, "modality", prefixes, limit, page=PAGE
    )
