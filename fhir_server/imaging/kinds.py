"""The record kinds of the imaging index (the record port, storage/records.py): one place for the
ingest, QIDO/WADO, storage commitment and the DICOM door."""

from __future__ import annotations

INSTANCE = "dicom-instance"  # key: SOP Instance UID; index: study
SERIES = "dicom-series"  # key: Series Instance UID; index: study
STUDY = "dicom-study"  # key: Study Instance UID
PENDING = "dicom-pending"  # key: Study Instance UID: its ImagingStudy is to be written
REJECTION = "dicom-rejection"  # key: time + random; index: study
