"""The Study Date index of the imaging records: a radiologist's worklist is a query by Study Date
(0008,0020), today's or a period's, often with nothing else to narrow it (RO-16/17: the studies
of a period to read, the priors of a span).

Each study record whose Study Date is one eight-digit DA value has a ``dicom-study-date`` record
(kinds.STUDY_DATE) keyed ``YYYYMMDD/<Study Instance UID>``: the record port lists a kind's keys
in order, so the studies of a date range are the keys from its first day to its last, read a page
at a time. A study whose Study Date is anything else (several values, another VR, not eight
digits) is keyed ``~/<uid>``: such studies are candidates of every date query and the match
decides (matching.py), so the index never changes what a query answers, only how many study
records it reads. A study without a Study Date has no such record: it matches no date (PS3.4
C.2.2.2.5 and C.2.2.2.1: a non-empty key never matches an empty value).

Written with the study record (study_map.study_puts). A record left by a date that changed (a
study's first instance replaced) is a stale candidate, filtered out by the match like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.kinds import STUDY_DATE, studies_in_run
from fhir_server.storage.records import RecordPut, RecordStore

STUDY_DATE_TAG = tag_key(0x00080020)
#: The key prefix of the studies whose Study Date the index cannot order (sorts after digits).
UNORDERED = "~"
PAGE = 1000


@dataclass(frozen=True, slots=True)
class DateRange:
    """Study Dates from ``low`` to ``high`` as PS3.4 compares them (text order, bounds
    included; an empty bound is open). An exact date is a range of one day."""

    low: str
    high: str


def date_put(study: str, attributes: Mapping[str, Any]) -> RecordPut | None:
    """The ``dicom-study-date`` record of a study (see the module docstring); None when it has
    no Study Date. Its value names the day it is filed under, so that a page can go on after
    its key."""
    item = attributes.get(STUDY_DATE_TAG)
    if not isinstance(item, dict):
        return None
    found = [v for v in item.get("Value", ()) if v is not None]
    if not found:
        return None
    ordered = item.get("vr", "DA") == "DA" and len(found) == 1 and _is_day(found[0])
    day = str(found[0]) if ordered else UNORDERED
    return RecordPut(STUDY_DATE, f"{day}/{study}", {"study": study, "day": day})


def _is_day(value: object) -> bool:
    return isinstance(value, str) and len(value) == 8 and value.isdigit()


def date_ranges(value: str) -> list[DateRange] | None:
    """The ranges a Study Date match value asks for, as matching.py reads it (the value
    stripped, split at backslashes; ``a-b``, ``-b``, ``a-`` ranges with their bounds stripped, a
    single date as is); None when it does not narrow (universal matching, wildcards)."""
    value = value.strip()
    if value in ("", "*") or "*" in value or "?" in value:
        return None
    ranges: list[DateRange] = []
    for part in value.split("\\"):
        if "-" in part:
            low, _, high = part.partition("-")
            if not low.strip() and not high.strip():
                return None  # "-": every date
            ranges.append(DateRange(low.strip(), high.strip()))
        else:
            ranges.append(DateRange(part, part))
    return ranges


async def studies_in(records: RecordStore, ranges: list[DateRange], limit: int) -> list[str] | None:
    """The Study Instance UIDs the index holds for ``ranges`` and those it cannot order, in
    UID order; None when there are more than ``limit`` (reading every study record is then
    cheaper than reading them one by one)."""
    found: set[str] = set()
    for wanted in ranges:
        if not await _collect(records, wanted, found, limit):
            return None
    if not await _collect(records, None, found, limit):
        return None
    return sorted(found)


async def _collect(
    records: RecordStore, wanted: DateRange | None, found: set[str], limit: int
) -> bool:
    """Add the studies of ``wanted`` (None: those the index cannot order) to ``found``; False
    once there are more than ``limit``. A page starts after the range's low bound: every key of
    a day from it on sorts after it (``YYYYMMDD/`` after ``YYYYMMDD``), as do a few keys of days
    before a bound longer than a day, which the match then drops."""
    if wanted is None:
        return await studies_in_run(
            records, STUDY_DATE, "day", UNORDERED, lambda key: True, found, limit, page=PAGE
        )
    high = wanted.high

    def within(key: str) -> bool:
        day = key.partition("/")[0]
        return day != UNORDERED and not (high and day > high)

    after = wanted.low or ""
    return await studies_in_run(records, STUDY_DATE, "day", after, within, found, limit, page=PAGE)
