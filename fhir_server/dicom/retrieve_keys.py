"""The unique keys of a retrieve identifier (PS3.4 C.4.2.2.1), read for the imaging retrieval
(imaging/retrieval.py, which matches them against the stored instances).

:func:`parse` reads the Query/Retrieve Level and the unique keys (raw, so that a malformed UID is
reported with its attribute rather than warned about by pydicom): a UID list at the retrieve
level, single values above it, nothing below it; Patient ID is required at PATIENT level and a
filter below it.
"""

from __future__ import annotations

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

from fhir_server.dicom.scu import (
    PATIENT_ROOT_GET,
    PATIENT_ROOT_MOVE,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
)
from fhir_server.imaging.instances import UID_PATTERN
from fhir_server.imaging.retrieval import Request

IDENTIFIER_DOES_NOT_MATCH = 0xA900

PATIENT_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
STUDY_LEVELS = ("STUDY", "SERIES", "IMAGE")
LEVELS = {
    PATIENT_ROOT_MOVE: PATIENT_LEVELS, PATIENT_ROOT_GET: PATIENT_LEVELS,
    STUDY_ROOT_MOVE: STUDY_LEVELS, STUDY_ROOT_GET: STUDY_LEVELS,
}  # fmt: skip
#: The unique key of each level (PS3.4 C.4.2.2.1) with its tag, for Error Comments.
UNIQUE_KEYS = (
    ("PATIENT", "PatientID", "(0010,0020)"),
    ("STUDY", "StudyInstanceUID", "(0020,000D)"),
    ("SERIES", "SeriesInstanceUID", "(0020,000E)"),
    ("IMAGE", "SOPInstanceUID", "(0008,0018)"),
)


class Refused(Exception):
    """A retrieve refused before any sub-operation: its status and Error Comment."""

    def __init__(self, status: int, comment: str) -> None:
        super().__init__(comment)
        self.status = status
        self.comment = comment


def parse(identifier: Dataset, sop_class: str) -> Request:
    """The unique keys of ``identifier`` for ``sop_class``; Refused (0xA900) naming the
    attribute that is missing, malformed or below the retrieve level."""
    levels = LEVELS[sop_class]
    level = _text(identifier, "QueryRetrieveLevel").upper()
    if level not in levels:
        raise Refused(
            IDENTIFIER_DOES_NOT_MATCH,
            f"QueryRetrieveLevel (0008,0052) {level!r} is not {'/'.join(levels)}",
        )
    depth = PATIENT_LEVELS.index(level)
    values: dict[str, tuple[str, ...]] = {}
    for index, (key_level, keyword, tag) in enumerate(UNIQUE_KEYS):
        found = _values(identifier, keyword)
        if index > depth:
            if found:
                raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{keyword} {tag} is below {level} level")
            continue
        if index == 0:  # Patient ID: required at PATIENT level, a filter below it
            if len(found) > 1 or (not found and level == "PATIENT"):
                raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{keyword} {tag}: one value required")
        elif key_level in levels and not found:
            raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{keyword} {tag} is required at {level}")
        elif index < depth and len(found) > 1:
            raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{keyword} {tag}: one UID above {level}")
        elif index > 0 and not all(UID_PATTERN.fullmatch(v) and len(v) <= 64 for v in found):
            raise Refused(IDENTIFIER_DOES_NOT_MATCH, f"{keyword} {tag}: UIDs only, no wildcard")
        values[keyword] = found
    patient = values.get("PatientID", ())
    return Request(
        level, patient[0] if patient else None, values.get("StudyInstanceUID", ()),
        values.get("SeriesInstanceUID", ()), values.get("SOPInstanceUID", ()),
    )  # fmt: skip


def _values(identifier: Dataset, keyword: str) -> tuple[str, ...]:
    return tuple(v for v in (x.strip() for x in _text(identifier, keyword).split("\\")) if v)


def _text(identifier: Dataset, keyword: str) -> str:
    """An attribute's value as text, read raw: a malformed UID is reported by :func:`parse`
    with its attribute, not rejected (or warned about) by pydicom's value validation."""
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in identifier:
        return ""
    value = identifier.get_item(tag).value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\0 ")
    if isinstance(value, str):
        return value.strip()
    return "\\".join(map(str, value))
