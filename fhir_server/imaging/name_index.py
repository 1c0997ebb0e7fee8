"""The Patient's Name index of the imaging records: finding a patient's studies by name
(QIDO-RS ``PatientName=POPESCU*``, C-FIND by Patient's Name) without reading every study record.

Each study record has a ``dicom-study-name`` record (kinds.STUDY_NAME) per component group value
of its Patient's Name (0010,0010) (``Popescu^Ana``, its ideographic and phonetic groups), keyed
``<folded>/<Study Instance UID>``: ``<folded>`` is the value's first :data:`KEY_CHARS` characters
lower-cased when they are all ASCII; any other value is filed under ``~`` and is a candidate of
every name query. The record port lists a kind's keys in order, so the studies of a name prefix
are a run of keys.

Why this never changes what a query answers (the match, matching.py, decides; the index only
says which study records to read): a person name matches case-insensitively, a wildcard one
character by character (Python ``re`` IGNORECASE) and an exact one by ``str.casefold``. Both
map an ASCII character only to its own lower case among ASCII characters; the non-ASCII
characters they equate with ASCII letters (the Kelvin sign, the long s, the dotless i...) are in
values filed under ``~``. So for a query value whose literal start (before any ``*`` or ``?``)
is ASCII, every value it matches either starts, lower-cased, with that start, or is filed under
``~``. A query whose start is empty, not ASCII, or that names component groups (``=``) is not
narrowed by the index.

Written with the study record (study_map.study_puts). A record left by a name that changed is a
stale candidate, filtered out by the match like any other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.kinds import STUDY_NAME, studies_under_prefixes
from fhir_server.storage.records import RecordPut, RecordStore

PATIENT_NAME_TAG = tag_key(0x00100010)
#: Characters of a name the key keeps (a longer prefix narrows no further in practice).
KEY_CHARS = 32
#: The key prefix of the names the index cannot fold (sorts after ASCII letters and digits).
UNFOLDED = "~"
PAGE = 1000


def name_puts(study: str, attributes: Mapping[str, Any]) -> list[RecordPut]:
    """The ``dicom-study-name`` records of a study (see the module docstring); none when it has
    no Patient's Name."""
    item = attributes.get(PATIENT_NAME_TAG)
    if not isinstance(item, dict):
        return []
    folded: set[str] = set()
    for value in item.get("Value", ()):
        groups = value.values() if isinstance(value, dict) else [value]
        folded.update(_fold(str(g)) for g in groups if g)
    return [RecordPut(STUDY_NAME, f"{name}/{study}", {"study": study, "name": name})
            for name in sorted(folded)]  # fmt: skip


def _fold(value: str) -> str:
    head = value[:KEY_CHARS]
    return head.lower() if head.isascii() and not head.startswith(UNFOLDED) else UNFOLDED


def name_prefixes(value: str) -> list[str] | None:
    """The folded starts a Patient's Name match value asks for (the value split at backslashes,
    as matching.py reads it), None when it is not narrowed (see the module docstring)."""
    prefixes: list[str] = []
    for part in value.split("\\"):
        if "=" in part:
            return None
        cut = min((i for i in (part.find("*"), part.find("?")) if i >= 0), default=len(part))
        start = part[:cut][:KEY_CHARS]
        if not start or not start.isascii() or start.startswith(UNFOLDED):
            return None
        prefixes.append(start.lower())
    return prefixes or None


async def studies_named(
    records: RecordStore, prefixes: Iterable[str], limit: int
) -> list[str] | None:
    """The Study Instance UIDs the index holds under ``prefixes`` and under ``~``, in UID
    order; None when there are more than ``limit`` (reading every study record is then
    cheaper than reading them one by one)."""
    return await studies_under_prefixes(
        records, STUDY_NAME, "name", [*prefixes, UNFOLDED + "/"], limit, page=PAGE
    )
