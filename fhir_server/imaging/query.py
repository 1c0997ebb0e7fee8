"""Study, series and instance queries over the imaging index (C-FIND and QIDO-RS share it).

The index is the record port's ``dicom-study``, ``dicom-series`` and ``dicom-instance`` records
written by :class:`~fhir_server.imaging.service.ImagingService` (DICOM JSON headers, PS3.18
Annex F). :meth:`StudyQuery.search` matches keys the way PS3.4 C.2.2.2 says
(:mod:`fhir_server.imaging.matching`). A query without a study is narrowed by an index when it
asks for exact Patient IDs or, else, exact Accession Numbers or, else, Study Dates (single dates
or ranges, :mod:`fhir_server.imaging.date_index`) or, else, a Patient's Name with a literal start
(:mod:`fhir_server.imaging.name_index`), as :mod:`fhir_server.imaging.narrowing` reads the
keys; otherwise every record of its level is read.

Each result is a DICOM JSON object with the level's required return attributes (PS3.18 Tables
10.6.3-3/-4/-5, present and empty when the index has no value), the include fields and the
matched keys. With a scoped caller (``ctx.access``), a user- or system-level scope granting read
or search on ImagingStudy is required.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydicom.datadict import dictionary_VM, dictionary_VR, keyword_for_tag, tag_for_keyword

from fhir_server.core.access import CREATE, READ, SEARCH
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, InvalidRequest
from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.date_index import studies_in
from fhir_server.imaging.kinds import ACCESSION, INSTANCE, SERIES, STUDY, every
from fhir_server.imaging.matching import MULTIPLE_VALUE_VRS, Key, malformed, matches
from fhir_server.imaging.modality_index import studies_of_modalities
from fhir_server.imaging.name_index import studies_named
from fhir_server.imaging.narrowing import narrowing, unique
from fhir_server.storage.records import RecordStore

Level = Literal["STUDY", "SERIES", "IMAGE"]
Json = dict[str, Any]
RESOURCE_TYPE = "ImagingStudy"
PAGE = 500
#: Studies an accession or date index may find before a query reads every study record instead
#: (one look-up each costs more than a study record read in a page), and those looked up at once.
INDEXED_MAX = 2000
GET_BATCH = 100
ALL = "all"

#: PS3.18 Table 10.6.3-3 (study), -4 (series), -5 (instance): the attributes every answer has.
STUDY_RETURN = (
    "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName",
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyID",
    "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
)  # fmt: skip
SERIES_RETURN = (
    "StudyInstanceUID", "Modality", "SeriesDescription", "SeriesNumber", "SeriesInstanceUID",
    "NumberOfSeriesRelatedInstances", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
)  # fmt: skip
INSTANCE_RETURN = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPClassUID", "SOPInstanceUID", "InstanceNumber",
    "Rows", "Columns", "BitsAllocated", "NumberOfFrames", "TimezoneOffsetFromUTC",
)  # fmt: skip
RETURN: dict[str, tuple[str, ...]] = {
    "STUDY": STUDY_RETURN,
    "SERIES": SERIES_RETURN,
    "IMAGE": INSTANCE_RETURN,
}
RETRIEVE_URL = tag_key(0x00081190)


def attribute_tag(name: str) -> int:
    """A keyword (``PatientID``) or an eight-digit hexadecimal tag (``00100020``) as a tag;
    InvalidRequest naming the attribute when it is neither, or when it is a path into a
    sequence (PS3.18 8.3.4.1 ``RequestAttributesSequence.RequestedProcedureID``: matching inside
    sequences is not offered)."""
    text = name.strip()
    if "." in text:
        for part in text.split("."):
            _top_level_tag(part, name)
        raise InvalidRequest(
            f"{name!r} names an attribute inside a sequence: this server matches top-level "
            "attributes only (e.g. AccessionNumber, StudyInstanceUID)"
        )
    return _top_level_tag(text, name)


def _top_level_tag(text: str, name: str) -> int:
    if re.fullmatch(r"[0-9A-Fa-f]{8}", text):
        return int(text, 16)
    tag = tag_for_keyword(text)
    if tag is None:
        where = f"{name!r}" if text == name.strip() else f"{text!r} in {name!r}"
        raise InvalidRequest(
            f"{where} is not a DICOM attribute keyword or tag (e.g. PatientID or 00100020)"
        )
    return int(tag)


@lru_cache(maxsize=1024)
def _vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "UN"


@lru_cache(maxsize=1024)
def _multi_valued(tag: int) -> bool:
    try:
        return str(dictionary_VM(tag)) != "1"
    except KeyError:
        return False


@dataclass(frozen=True, slots=True)
class Matching:
    """How a query's values read. ``comma_lists``: a list is written with commas, as QIDO-RS
    does (PS3.18 8.3.4.1: always for a UID list; for other attributes under Multiple Value
    Matching), not with backslashes as in a C-FIND identifier; ``empty_values`` and
    ``multiple_values``: Empty Value and Multiple Value Matching asked for (QIDO-RS
    ``emptyvaluematching`` and ``multiplevaluematching``; see matching.py); ``strict``: a
    value that cannot match as written is refused (``matching.malformed``: QIDO-RS answers an
    invalid query 400, PS3.18 8.3.4.1), not matched as text, as C-FIND does for peers' legacy
    dates (``2024``, ``2024.01.02``) and wildcards in dates."""

    comma_lists: bool = False
    empty_values: bool = False
    multiple_values: bool = False
    strict: bool = False


DIMSE = Matching()


def keys_of(keys: Mapping[str, str], level: Level, how: Matching = DIMSE) -> list[Key]:
    """The match keys as (tag, VR, value); at STUDY level ``Modality`` matches Modalities in
    Study (0008,0061), the attribute a study has."""
    out = []
    for name, value in keys.items():
        tag = attribute_tag(name)
        if level == "STUDY" and tag == 0x00080060:
            tag = 0x00080061
        vr = _vr(tag)
        every = how.multiple_values and vr in MULTIPLE_VALUE_VRS and _multi_valued(tag)
        text = str(value)
        if how.comma_lists and (vr == "UI" or every):
            text = text.replace(",", "\\")
        key = Key(tag_key(tag), vr, text, empty=how.empty_values, every=every)
        problem = malformed(key) if how.strict else None
        if problem is not None:
            raise InvalidRequest(f"{name}={value!r}: {problem}")
        out.append(key)
    return out


def include_tags(includefields: Collection[str]) -> list[str] | None:
    """The tag keys to include, None for ``all``."""
    out = []
    for name in includefields:
        if name.strip().lower() == ALL:
            return None
        out.append(tag_key(attribute_tag(name)))
    return out


# --- answers -------------------------------------------------------------------------------


def answer(
    attributes: Mapping[str, Any],
    level: Level,
    keys: list[Key],
    include: list[str] | None,
    retrieve_url: str | None,
) -> Json:
    """The answer for one matching entity: required attributes (empty when absent), include
    fields (every indexed attribute for ``all``) and the matched keys, in tag order."""
    out: Json = {}
    if include is None:
        out.update(attributes)
    wanted = [tag_key(int(tag_for_keyword(k) or 0)) for k in RETURN[level]]
    for tag in [*wanted, *(include or ()), *(k.tag for k in keys)]:
        if tag in attributes:
            out[tag] = attributes[tag]
        elif tag not in out:
            out[tag] = {"vr": _vr(int(tag, 16))}
    if retrieve_url is not None:
        out[RETRIEVE_URL] = {"vr": "UR", "Value": [retrieve_url]}
    return dict(sorted(out.items()))


def require_read(ctx: RequestContext) -> None:
    """Queries and retrievals need read or search on ImagingStudy at user or system level."""
    _require(ctx, (READ, SEARCH), "read (r) or search (s)")


def require_store(ctx: RequestContext) -> None:
    """STOW-RS creates and updates ImagingStudy: a user/system scope granting create."""
    _require(ctx, (CREATE,), "create (c)")


def _require(ctx: RequestContext, letters: tuple[str, ...], what: str) -> None:
    access = ctx.access
    if access is None:
        return
    granted = [s for letter in letters for s in access.granting(letter, RESOURCE_TYPE)]
    if any(s.level in ("user", "system") for s in granted):
        return
    if granted:
        raise Forbidden(
            f"DICOM studies are not patient compartment scoped: {what} on {RESOURCE_TYPE} "
            "needs a user/ or system/ scope, the token has only patient/ ones"
        )
    raise Forbidden(f"This needs {what} on {RESOURCE_TYPE} (e.g. user/{RESOURCE_TYPE}.rs)")


class StudyQuery:
    """The query service over one record store; ``base``: the DICOMweb base URL (answers get a
    Retrieve URL (0008,1190) when it is set)."""

    def __init__(self, records: RecordStore, base: str | None = None) -> None:
        self.records = records
        self.base = base.rstrip("/") if base else None

    async def search(
        self,
        ctx: RequestContext,
        level: Level,
        keys: Mapping[str, str],
        *,
        study_uid: str | None = None,
        series_uid: str | None = None,
        includefields: Collection[str] = (),
        limit: int | None = None,
        offset: int = 0,
        base: str | None = None,
        how: Matching = DIMSE,
    ) -> list[Json]:
        """The matching entities of ``level`` as DICOM JSON (see the module docstring);
        ``study_uid``/``series_uid`` restrict to one study/series (QIDO-RS paths, C-FIND
        unique keys). InvalidRequest for an unknown attribute, Forbidden without the scope."""
        if level not in RETURN:
            raise InvalidRequest(f"query level must be STUDY, SERIES or IMAGE, not {level!r}")
        require_read(ctx)
        parsed = keys_of(keys, level, how)
        include = include_tags(includefields)
        root = (base.rstrip("/") if base else None) or self.base
        found: list[Json] = []
        skip = max(offset, 0)
        async for attributes, url in self._candidates(level, parsed, study_uid, series_uid, root):
            if not all(matches(attributes, key) for key in parsed):
                continue
            if skip:
                skip -= 1
                continue
            found.append(answer(attributes, level, parsed, include, url))
            if limit is not None and len(found) >= limit:
                break
        return found

    async def _candidates(
        self,
        level: Level,
        keys: list[Key],
        study_uid: str | None,
        series_uid: str | None,
        root: str | None,
    ) -> AsyncIterator[tuple[Json, str | None]]:
        study = study_uid or unique(keys, tag_key(0x0020000D))
        narrow = None if study is not None else narrowing(keys)
        if level == "STUDY":
            records = self._study_records(study, narrow)
        elif level == "SERIES":
            records = self._by_study(SERIES, study, narrow)
        else:
            records = self._by_study(INSTANCE, study, narrow)
        async for record in records:
            if series_uid is not None and level != "STUDY" and record.get("series") != series_uid:
                continue
            yield _attributes(record, level), _url(root, level, record)

    async def _study_records(
        self, study: str | None, narrow: tuple[str, list[Any]] | None = None
    ) -> AsyncIterator[Json]:
        """The study record of ``study``; else those an index finds for ``narrow`` (the
        Patient IDs, the Accession Numbers or the Study Dates a key asks for, see
        :func:`_narrowing`), in Study Instance UID order; else every study record."""
        if study is not None:
            record = await self.records.get(STUDY, study)
            if record is not None:
                yield record
            return
        if narrow is None:
            async for record in self._scan(STUDY, None):
                yield record
            return
        field, wanted = narrow
        if field == "patient":
            found: dict[str, Json] = {}
            for value in dict.fromkeys(wanted):
                async for record in self._scan(STUDY, value):
                    found[str(record["study"])] = record
            for uid in sorted(found):
                yield found[uid]
            return
        uids = await self._indexed_studies(field, wanted)
        if uids is None:  # too many for one look-up each: read them all
            async for record in self._scan(STUDY, None):
                yield record
            return
        for start in range(0, len(uids), GET_BATCH):
            batch = uids[start : start + GET_BATCH]
            for record in await asyncio.gather(*(self.records.get(STUDY, u) for u in batch)):
                if record is not None:
                    yield record

    async def _indexed_studies(self, field: str, wanted: list[Any]) -> list[str] | None:
        """The Study Instance UIDs the accession, Study Date, Patient's Name or modality index
        finds, in UID order; None when one of the last three finds more than
        :data:`INDEXED_MAX`."""
        if field == "date":
            return await studies_in(self.records, wanted, INDEXED_MAX)
        if field == "name":
            return await studies_named(self.records, wanted, INDEXED_MAX)
        if field == "modality":
            return await studies_of_modalities(self.records, wanted, INDEXED_MAX)
        found: set[str] = set()
        for value in dict.fromkeys(wanted):
            found.update([str(a["study"]) async for a in every(self.records, ACCESSION, value,
                                                                page=PAGE)])  # fmt: skip
        return sorted(found)

    async def _by_study(
        self, kind: str, study: str | None, narrow: tuple[str, list[Any]] | None = None
    ) -> AsyncIterator[Json]:
        """The records of ``kind`` of ``study``; else of the studies ``narrow`` finds, study
        after study; else every record of ``kind``."""
        if study is not None or narrow is None:
            async for record in self._scan(kind, study):
                yield record
            return
        async for summary in self._study_records(None, narrow):
            async for record in self._scan(kind, str(summary["study"])):
                yield record

    async def _scan(self, kind: str, value: str | None) -> AsyncIterator[Json]:
        """Every record of ``kind`` (with ``value``: of one study, or for study records of one
        Patient ID: the records' index), a page at a time."""
        async for record in every(self.records, kind, value, page=PAGE):
            yield record


def _attributes(record: Mapping[str, Any], level: Level) -> Json:
    attributes = dict(record.get("attributes") or {})
    ids = {"0020000D": record.get("study"), "0020000E": record.get("series")}
    if level == "IMAGE":
        ids["00080016"] = record.get("sop_class")
        ids["00080018"] = record.get("sop_instance")
    for tag, uid in ids.items():
        if uid and tag not in attributes:
            attributes[tag] = {"vr": "UI", "Value": [uid]}
    return attributes


def _url(root: str | None, level: Level, record: Mapping[str, Any]) -> str | None:
    if root is None:
        return None
    url = f"{root}/studies/{record.get('study')}"
    if level != "STUDY":
        url += f"/series/{record.get('series')}"
    if level == "IMAGE":
        url += f"/instances/{record.get('sop_instance')}"
    return url


def keyword(tag: str) -> str:
    """The keyword of a tag key, or the key itself when the dictionary has none."""
    return keyword_for_tag(int(tag, 16)) or tag
