"""The audit trail: an AuditEvent for every request that carries an identity and for every
failed authentication (issue 7.8; CN-4.1.4, RO-24), without slowing the response path.

The door's INTERACTION_DONE / INTERACTION_FAILED notification only captures what it saw into a
bounded queue (no I/O; when the queue is full the event is dropped, counted and logged at
ERROR: a slow store must never hold responses back). A background task drains the queue in
batches (up to ``batch_size`` events, or what came within ``flush_interval`` seconds), looks
up the patient of resources that are not Patients (their Patient compartment, off the response
path), and stores the batch as one unit of work of creates through the normal write pipeline
(``FhirService.create_all``: validation, PRE_STORE, outbox) on the ``audit`` channel, which is
itself never audited. If the unit is refused, the batch is retried entry by entry (a batch
Bundle) so one bad event loses only itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from fhir_server.audit.append_only import refuse_audit_changes
from fhir_server.audit.events import Observed, audit_event
from fhir_server.core import fhirjson
from fhir_server.core.clock import Clock, system_clock
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, Unauthenticated, http_status
from fhir_server.core.waiting import wait_within
from fhir_server.events.hooks import Hooks, InteractionDone
from fhir_server.search.extract import Indexer
from fhir_server.storage.port import ResourceStore

log = logging.getLogger(__name__)

#: The channel of the trail's own writes: requests on it are never audited (no loop).
AUDIT_CHANNEL = "audit"


class AuditedService(Protocol):
    """What the trail needs of FhirService (interactions/service.py, same layer: not imported)."""

    @property
    def store(self) -> ResourceStore: ...

    @property
    def indexer(self) -> Indexer: ...

    async def create_all(
        self, ctx: RequestContext, type: str, bodies: Sequence[dict[str, Any]]
    ) -> Sequence[object]: ...

    async def batch_or_transaction(
        self,
        ctx: RequestContext,
        bundle: object,
        *,
        preference: str = ...,
        lenient: bool = ...,
    ) -> dict[str, Any]: ...


class AuditTrail:
    """``base_url``: the server's FHIR base, for requests whose context has none (non-HTTP
    doors); ``observer``: the name of this server in ``AuditEvent.source``. Counters:
    ``recorded`` (stored), ``dropped`` (queue full), ``lost`` (the store refused them)."""

    def __init__(
        self,
        service: AuditedService,
        clock: Clock = system_clock,
        *,
        base_url: str = "",
        observer: str = "fhir-server",
        queue_size: int = 10_000,
        batch_size: int = 100,
        flush_interval: float = 0.5,
    ) -> None:
        self._service = service
        self._clock = clock
        self._base_url = base_url.rstrip("/")
        self._observer = observer
        self._queue: asyncio.Queue[Observed] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self._taken: list[Observed] = []
        self._storing: asyncio.Future[None] | None = None
        self.recorded = 0
        self.dropped = 0
        self.lost = 0

    def register(self, hooks: Hooks) -> None:
        """Subscribe to the doors' notifications and make AuditEvents append-only."""
        hooks.on_interaction_done(self.on_interaction_done)
        hooks.on_interaction_failed(self.on_interaction_failed)
        hooks.on_pre_store(refuse_audit_changes)

    # --- the response path: capture and enqueue only -----------------------------------------

    async def on_interaction_done(self, ctx: RequestContext, done: InteractionDone) -> None:
        """A success is audited when the request carries an identity (not with --auth off): a
        token, or a DICOM peer's AE title (``principal``)."""
        if ctx.channel == AUDIT_CHANNEL or (ctx.access is None and ctx.principal is None):
            return
        self._enqueue(
            Observed(
                ctx, done.interaction, done.status, self._clock(), done.resource_type, done.id,
                done.version, done.query, done.patients, studies=done.studies,
                patient_identifiers=done.patient_identifiers, details=done.details,
            )
        )  # fmt: skip

    async def on_interaction_failed(
        self, ctx: RequestContext, interaction: str, error: FhirError
    ) -> None:
        """A failure is audited when the request carries an identity, and a failed
        authentication always (it carries none, by definition)."""
        unauthenticated = isinstance(error, Unauthenticated)
        if ctx.channel == AUDIT_CHANNEL or (ctx.access is None and not unauthenticated):
            return
        self._enqueue(
            Observed(
                ctx, interaction, http_status(error), self._clock(),
                failure=error.diagnostics, unauthenticated=unauthenticated,
            )
        )  # fmt: skip

    def _enqueue(self, seen: Observed) -> None:
        try:
            self._queue.put_nowait(seen)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.error(
                    "AUDIT EVENTS DROPPED: the audit queue is full (%d waiting); the AuditEvent "
                    "of request %s is lost, %d lost so far (CN-4.1.4, RO-24)",
                    self._queue.qsize(), seen.context.request_id, self.dropped,
                )  # fmt: skip

    # --- the background task ------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self) -> None:
        """Stop the task and store everything still queued (a batch being stored finishes)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._storing is not None:
            await self._storing
            self._storing = None
        await self.flush()

    async def flush(self) -> None:
        """Store now what was taken from the queue and what is queued."""
        pending, self._taken = self._taken, []
        while not self._queue.empty():
            pending.append(self._queue.get_nowait())
        for start in range(0, len(pending), self._batch_size):
            await self._store_batch(pending[start : start + self._batch_size])

    async def _run(self) -> None:
        while True:
            self._taken = [await self._queue.get()]
            await self._fill(self._taken)
            batch, self._taken = self._taken, []
            self._storing = asyncio.ensure_future(self._store_batch(batch))
            await asyncio.shield(self._storing)  # a stop lets a batch being stored finish
            self._storing = None

    async def _fill(self, batch: list[Observed]) -> None:
        """Take more events until the batch is full or ``flush_interval`` has passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._interval
        while len(batch) < self._batch_size:
            while not self._queue.empty() and len(batch) < self._batch_size:
                batch.append(self._queue.get_nowait())
            remaining = deadline - loop.time()
            if len(batch) >= self._batch_size or remaining <= 0:
                return
            try:
                batch.append(await wait_within(self._queue.get(), remaining))
            except TimeoutError:
                return

    async def _store_batch(self, batch: list[Observed]) -> None:
        """Never raises: what cannot be stored is counted as lost and logged."""
        if not batch:
            return
        try:
            events = [await self._audit_event(seen) for seen in batch]
            await self._write(events)
        except Exception:
            self.lost += len(batch)
            log.exception("AUDIT EVENTS LOST: %d AuditEvents could not be stored", len(batch))

    async def _audit_event(self, seen: Observed) -> dict[str, Any]:
        base = seen.context.base_url.rstrip("/") or self._base_url
        patients = await self._patients(seen)
        return audit_event(seen, base=base, observer=self._observer, patients=patients)

    async def _write(self, events: list[dict[str, Any]]) -> None:
        ctx = RequestContext(channel=AUDIT_CHANNEL)  # no base: the references stay external
        try:
            await self._service.create_all(ctx, "AuditEvent", events)
            self.recorded += len(events)
            return
        except FhirError as refused:
            log.warning("audit transaction refused (%s); storing one by one", refused.diagnostics)
        answer = await self._service.batch_or_transaction(
            ctx, _bundle("batch", events), preference="minimal"
        )
        for entry in answer.get("entry", []):
            response = entry.get("response", {})
            if str(response.get("status", "")).startswith("201"):
                self.recorded += 1
                continue
            self.lost += 1
            log.error("AUDIT EVENT LOST: the store refused it: %s", response.get("outcome"))

    # --- which patients -----------------------------------------------------------------------

    async def _patients(self, seen: Observed) -> list[str]:
        """The door's patients; a Patient itself; else the Patient compartment of the resource
        (looked up here, off the response path); else the patient in the token's context when
        its scopes are patient-level (everything it reaches is that patient's)."""
        found = list(seen.patients)
        kind, id_ = seen.resource_type, seen.id
        if kind == "Patient" and id_ is not None:
            found.append(id_)
        elif kind is not None and id_ is not None and not found and seen.failure is None:
            found += await self._compartment_patients(kind, id_, seen.version)
        access = seen.context.access
        if not found and access is not None and access.patient is not None:
            patient_level = any(scope.level == "patient" for scope in access.scopes)
            found += [access.patient] if patient_level else []
        return list(dict.fromkeys(found))

    async def _compartment_patients(self, kind: str, id_: str, version: str | None) -> list[str]:
        store = self._service.store
        number = int(version) if version is not None and version.isdigit() else None
        stored = await (store.read(kind, id_) if number is None else store.vread(kind, id_, number))
        if stored is not None and stored.body is None and stored.version > 1:
            stored = await store.vread(kind, id_, stored.version - 1)  # a deletion: what it was
        if stored is None or stored.body is None:
            return []
        index = self._service.indexer.index(fhirjson.loads(stored.body))
        return [cid for ctype, cid in index.compartments if ctype == "Patient"]


def _bundle(kind: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    entries = [{"resource": e, "request": {"method": "POST", "url": "AuditEvent"}} for e in events]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}
