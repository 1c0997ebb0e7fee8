"""The record kinds of the imaging index (the record port, storage/records.py): one place for the
ingest, QIDO/WADO, storage commitment and the DICOM door."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from typing import Any

from fhir_server.storage.records import RecordStore

INSTANCE = "dicom-instance"  # key: SOP Instance UID; index: study
SERIES = "dicom-series"  # key: Series Instance UID; index: study
STUDY = "dicom-study"  # key: Study Instance UID; index: Patient ID (patient)
ACCESSION = "dicom-accession"  # key: Study Instance UID; index: its Accession Number
STUDY_DATE = "dicom-study-date"  # key: its Study Date / Study Instance UID (date_index.py)
STUDY_NAME = "dicom-study-name"  # key: its Patient's Name folded / Study UID (name_index.py)
STUDY_MODALITY = "dicom-study-modality"  # key: a modality / Study UID (modality_index.py)
PENDING = "dicom-pending"  # key: Study Instance UID: its ImagingStudy is to be written
REJECTION = "dicom-rejection"  # key: time + random; index: study
META = "dicom-meta"  # key: the name of a one-time upgrade of these records, once it is done


def blob_key(instance: Mapping[str, Any]) -> str:
    """The blob store key of an ``INSTANCE`` record's bytes: its ``blob`` field, else (a record
    written without one) its SOP Instance UID, the key the ingest stores the bytes under."""
    return str(instance.get("blob") or instance["sop_instance"])


#: The field of a kind's values that holds its record key (a page of ``every`` goes on after it).
_KEY_FIELD = {
    INSTANCE: "sop_instance", SERIES: "series", STUDY: "study", ACCESSION: "study",
    PENDING: "study",
}  # fmt: skip


async def every(
    records: RecordStore,
    kind: str,
    value: str | None = None,
    *,
    page: int = 1000,
    fields: Sequence[str] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every live record of ``kind`` (those whose indexed field is ``value``, when given), in
    key order, read ``page`` at a time; with ``fields``, only those (RecordStore.find; the
    kind's key field is read too)."""
    after: str | None = None
    if fields is not None and _KEY_FIELD[kind] not in fields:
        fields = [*fields, _KEY_FIELD[kind]]
    while True:
        found = await records.find(kind, value, limit=page, after=after, fields=fields)
        for record in found:
            yield record
        if len(found) < page:
            return
        after = str(found[-1][_KEY_FIELD[kind]])


async def study_instances(
    records: RecordStore, study: str, fields: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Every instance record of a study, in SOP Instance UID order (with ``fields``, only
    those fields of each, and its SOP Instance UID)."""
    return [record async for record in every(records, INSTANCE, study, fields=fields)]


async def studies_in_run(
    records: RecordStore,
    kind: str,
    field: str,
    after: str,
    within: Callable[[str], bool],
    found: set[str],
    limit: int,
    *,
    page: int = 1000,
) -> bool:
    """Add to ``found`` the studies of a study index (``kind``: records ``{"study", field}``
    keyed ``<value of field>/<Study Instance UID>``, date_index.py, name_index.py and
    modality_index.py) from the first key after ``after`` on, as long as ``within(key)``; False
    once there are more than ``limit`` (the caller then reads every study record instead)."""
    while True:
        batch = await records.find(kind, limit=page, after=after)
        for record in batch:
            key = f"{record.get(field, '')}/{record['study']}"
            if not within(key):
                return True
            found.add(str(record["study"]))
            if len(found) > limit:
                return False
            after = key
        if len(batch) < page:
            return True


async def studies_under_prefixes(
    records: RecordStore,
    kind: str,
    field: str,
    prefixes: Iterable[str],
    limit: int,
    *,
    page: int = 1000,
) -> list[str] | None:
    """The studies of a study index (as :func:`studies_in_run` reads one) whose keys start with
    any of ``prefixes``, in Study Instance UID order; None once there are more than ``limit``.
    The keys with a prefix are one run, from the first key after it."""
    found: set[str] = set()
    for prefix in dict.fromkeys(prefixes):
        within = functools.partial(_starts_with, prefix=prefix)
        if not await studies_in_run(records, kind, field, prefix, within, found, limit,
                                    page=page):  # fmt: skip
            return None
    return sorted(found)


def _starts_with(key: str, *, prefix: str) -> bool:
    return key.startswith(prefix)
