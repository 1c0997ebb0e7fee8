"""Prior studies from the remote PACS (RO-16, RO-17: the radiologist has the patient's priors).

Two triggers, both ending in :meth:`Priors.fetch`:

- on request: ``POST [base]/ImagingStudy/$fetch-priors`` with ``patient`` (a ``Patient/<id>``
  reference, or ``system|value`` of its identifier) and optionally ``before`` (a date: only
  studies up to that day); the answer lists each prior and what became of it;
- automatically (``--dicom-priors auto``): a POST_COMMIT hook on the first version of an
  ImagingStudy fetches that patient's studies dated up to the new study's ``started`` day in the
  background, so they are local by the time the radiologist opens the new one.

The remote is asked by PatientID only (IssuerOfPatientID as a matching key would exclude the
many archives that leave it empty); answers whose issuer is present and different are dropped.
Studies already held (an instance record exists) or being retrieved are not fetched again, which
also stops a retrieved prior's own ImagingStudy from starting another round. The DICOM work
(C-FIND, then C-MOVE to our node or C-GET) is the :class:`Retriever`'s, in the DICOM door.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest
from fhir_server.imaging.kinds import INSTANCE
from fhir_server.interactions.service import FhirService
from fhir_server.storage.port import OutboxEvent
from fhir_server.storage.records import RecordStore

LOG = logging.getLogger(__name__)
UID_SYSTEM = "urn:dicom:uid"


@dataclass(frozen=True, slots=True)
class Prior:
    """One study the remote holds for the patient (its STUDY-level C-FIND answer)."""

    study_uid: str
    study_date: str = ""
    accession: str = ""
    modalities: str = ""
    description: str = ""
    instances: int | None = None
    issuer: str = ""


@dataclass(frozen=True, slots=True)
class Retrieved:
    """The outcome of one study's C-MOVE / C-GET (final status and sub-operation counts)."""

    status: int
    completed: int = 0
    failed: int = 0
    warning: int = 0
    comment: str = ""


class Retriever(Protocol):
    """The DICOM side (blocking; called in a worker thread)."""

    def find(self, patient_id: str, before: str | None) -> list[Prior]: ...

    def retrieve(self, study_uid: str) -> Retrieved: ...


class Priors:
    def __init__(
        self,
        service: FhirService,
        records: RecordStore,
        retriever: Retriever,
        flush: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.records = records
        self.retriever = retriever
        self.flush = flush
        self.in_flight: set[str] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    async def fetch(
        self, ctx: RequestContext, patient: str, before: str | None = None
    ) -> list[dict[str, Any]]:
        """Find the patient's studies on the remote and retrieve those not held here; one
        summary per study (study, date, modalities, outcome, counts, imagingStudy)."""
        patient_id, issuer = await self._identity(ctx, patient)
        dicom_before = before.replace("-", "")[:8] if before else None
        found = await asyncio.to_thread(self.retriever.find, patient_id, dicom_before)
        summaries = []
        for prior in found:
            if issuer and prior.issuer and prior.issuer != issuer:
                continue
            summaries.append(await self._fetch_one(ctx, prior))
        return summaries

    async def _fetch_one(self, ctx: RequestContext, prior: Prior) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "study": prior.study_uid,
            "date": prior.study_date,
            "modalities": prior.modalities,
        }
        if prior.study_uid in self.in_flight:
            return {**summary, "outcome": "in-progress"}
        if await self.records.find(INSTANCE, prior.study_uid, limit=1):
            summary["outcome"] = "already-held"
        else:
            self.in_flight.add(prior.study_uid)
            try:
                got = await asyncio.to_thread(self.retriever.retrieve, prior.study_uid)
            finally:
                self.in_flight.discard(prior.study_uid)
            ok = got.status in (0x0000, 0xB000) and got.completed > 0
            summary.update(
                outcome="retrieved" if ok else "failed",
                completed=got.completed,
                failed=got.failed,
                status=got.status,
            )
            if got.comment:
                summary["comment"] = got.comment
            if self.flush is not None and got.completed:
                await self.flush(prior.study_uid)
        study = await self._imaging_study(ctx, prior.study_uid)
        if study is not None:
            summary["imagingStudy"] = study
        return summary

    async def on_post_commit(self, event: OutboxEvent) -> None:
        """POST_COMMIT: a new ImagingStudy starts a background fetch of its patient's priors
        (never raises: a missing remote must not make the outbox retry forever)."""
        if event.resource_type != "ImagingStudy" or event.version != 1:
            return
        task = asyncio.get_running_loop().create_task(self._auto(event.id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _auto(self, study_id: str) -> None:
        ctx = RequestContext(channel="dicom")
        try:
            shown = await self.service.read(ctx, "ImagingStudy", study_id)
            study = orjson.loads(shown.body)
            subject = study.get("subject", {}).get("reference", "")
            if not subject.startswith("Patient/"):
                return
            before = str(study.get("started", ""))[:10] or None
            done = await self.fetch(ctx, subject, before)
            fetched = [d["study"] for d in done if d.get("outcome") == "retrieved"]
            LOG.info("priors for %s: %d found, %d retrieved", subject, len(done), len(fetched))
        except asyncio.CancelledError:
            raise
        except Exception:
            LOG.exception("fetching priors for ImagingStudy/%s failed", study_id)

    async def _identity(self, ctx: RequestContext, patient: str) -> tuple[str, str | None]:
        """(PatientID, issuer) of a ``Patient/<id>`` reference or a ``system|value`` token."""
        if patient.startswith("Patient/"):
            shown = await self.service.read(ctx, "Patient", patient.removeprefix("Patient/"))
            identifiers = orjson.loads(shown.body).get("identifier", [])
            usable = [i for i in identifiers if i.get("value")]
            if not usable:
                raise InvalidRequest(f"{patient} has no identifier to query the remote PACS by")
            return str(usable[0]["value"]), usable[0].get("system")
        system, bar, value = patient.rpartition("|")
        if not value:
            raise InvalidRequest(
                "parameter 'patient' must be Patient/<id> or the identifier system|value"
            )
        return value, (system or None) if bar else None

    async def _imaging_study(self, ctx: RequestContext, study_uid: str) -> str | None:
        params = [("identifier", f"{UID_SYSTEM}|urn:oid:{study_uid}")]
        bundle = await self.service.search_type(ctx, "ImagingStudy", params)
        entries = orjson.loads(orjson.dumps(bundle)).get("entry", [])
        return f"ImagingStudy/{entries[0]['resource']['id']}" if entries else None
