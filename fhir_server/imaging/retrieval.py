"""The stored instances a retrieve selects (PS3.4 C.4.2.2.1): the unique keys of a C-MOVE or
C-GET identifier, as the DICOM door reads them (dicom/retrieve_keys.py), matched against the
ingest's records: ``dicom-instance`` records by study, then series and SOP Instance UIDs;
PATIENT level finds the ``dicom-study`` records by their Patient ID index (index_upgrade.py),
after flushing the pending studies (a study is in the study records once written).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fhir_server.imaging.attributes import first
from fhir_server.imaging.kinds import INSTANCE, STUDY, blob_key, every, study_instances
from fhir_server.storage.records import RecordStore


@dataclass(frozen=True, slots=True)
class Request:
    """The unique keys of a retrieve identifier; empty tuples are "any"."""

    level: str
    patient: str | None
    studies: tuple[str, ...]
    series: tuple[str, ...]
    instances: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    """One instance to send: its SOP Class and Instance UIDs, transfer syntax and blob key."""

    sop_class: str
    sop_instance: str
    transfer_syntax: str
    blob: str
    study: str = ""


class Matcher:
    """The stored instances a :class:`Request` selects (coroutines run on the server loop)."""

    def __init__(
        self,
        records: RecordStore,
        flush: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.records = records
        self.flush = flush

    async def match(self, request: Request) -> list[Match]:
        studies = request.studies or await self._patient_studies(request.patient)
        found: list[Match] = []
        for study in dict.fromkeys(studies):
            for record in await self._instances(study, request.instances):
                if request.series and record.get("series") not in request.series:
                    continue
                if request.patient is not None and _patient(record) != request.patient:
                    continue
                found.append(_match(record))
        return found

    async def _patient_studies(self, patient: str | None) -> list[str]:
        if patient is None:
            return []
        if self.flush is not None:
            await self.flush()  # a study is in the dicom-study records once it was written
        # the study records indexed by this Patient ID (imaging/index_upgrade.py)
        return [
            str(r["study"])
            async for r in every(self.records, STUDY, patient)
            if _patient(r) == patient
        ]

    async def _instances(self, study: str, instances: tuple[str, ...]) -> list[dict[str, Any]]:
        if instances:  # IMAGE level: direct look-ups
            found = [await self.records.get(INSTANCE, uid) for uid in dict.fromkeys(instances)]
            return [r for r in found if r is not None and r.get("study") == study]
        return await study_instances(self.records, study)


def _patient(record: dict[str, Any]) -> str | None:
    return first(record.get("attributes") or {}, "PatientID")


def _match(record: dict[str, Any]) -> Match:
    uid = str(record["sop_instance"])
    return Match(
        str(record.get("sop_class")), uid, str(record.get("ts")), blob_key(record),
        str(record.get("study") or ""),
    )  # fmt: skip
