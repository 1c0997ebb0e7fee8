"""Which index narrows an imaging query (query.py), read from its match keys alone: the exact
Patient IDs it asks for, else its exact Accession Numbers, else its Study Dates (date_index.py),
else the starts of its Patient's Name (name_index.py), else its exact modalities
(modality_index.py); a single Study Instance UID is a direct look-up. Each gives way to reading
every record when the key could also match entities the index does not list (wildcards,
universal values, Empty Value Matching)."""

from __future__ import annotations

from typing import Any

from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.date_index import STUDY_DATE_TAG, date_ranges
from fhir_server.imaging.matching import Key
from fhir_server.imaging.modality_index import MODALITIES_IN_STUDY_TAG, MODALITY_TAG
from fhir_server.imaging.name_index import PATIENT_NAME_TAG, name_prefixes


def narrowing(keys: list[Key]) -> tuple[str, list[Any]] | None:
    """The index that narrows a query without a study: the exact Patient IDs it asks for,
    else its exact Accession Numbers, else its Study Dates (dates and ranges,
    date_index.py), else the starts of its Patient's Name (name_index.py), else its exact
    Modalities in Study, or Modality at SERIES and IMAGE level (modality_index.py); None when
    it has none of them (every record is read)."""
    patients = exact(keys, tag_key(0x00100020))
    if patients is not None:
        return "patient", patients
    accessions = exact(keys, tag_key(0x00080050))
    if accessions is not None:
        return "accession", accessions
    for key in keys:
        if key.tag == STUDY_DATE_TAG and not key.empty:
            ranges = date_ranges(key.value)
            if ranges is not None:
                return "date", ranges
    for key in keys:
        if key.tag == PATIENT_NAME_TAG and not key.empty and not key.every:
            prefixes = name_prefixes(key.value)
            if prefixes is not None:
                return "name", prefixes
    for tag in (MODALITIES_IN_STUDY_TAG, MODALITY_TAG):
        modalities = exact(keys, tag)
        if modalities is not None:
            return "modality", modalities
    return None


def exact(keys: list[Key], tag: str) -> list[str] | None:
    """The values a key of ``tag`` must equal (a list of them: any), None when it matches
    otherwise (universal, wildcard) or is absent: the candidates an index may narrow to, as
    matching.matches compares (the whole value stripped, then split at backslashes)."""
    for key in keys:
        if key.tag != tag:
            continue
        value = key.value.strip()
        if value in ("", "*") or "*" in value or "?" in value or key.empty:
            return None  # (an empty attribute matches too under Empty Value Matching)
        return value.split("\\")
    return None


def unique(keys: list[Key], tag: str) -> str | None:
    """A single UID match value (no list, no wildcard) of ``tag``, for a direct look-up."""
    for key in keys:
        value = key.value.strip()
        if key.tag == tag and value and not any(c in value for c in "\\*?"):
            return value
    return None
