"""The imaging ingest: every door's instances (C-STORE, STOW-RS, C-MOVE/C-GET) come in here.

:meth:`ImagingService.store_part10` checks the Part-10 bytes (:mod:`fhir_server.imaging.instances`;
on the event loop up to ``PREPARE_ON_LOOP_BYTES`` unless deflated, else in a worker thread),
stores them through the blob port exactly as received and writes the instance's index
record — the two durable writes issued together (on the SQLite store a small instance's bytes
and its record then commit in one transaction: storage/sqlite/job_group.py), and it returns
only once both are durable, so a success status is never given for bytes that could be lost —
and marks its study pending. The bytes go with a *note* (who sent them, when): with it the
record is rebuilt from the bytes, so a store that keeps the note durably with them may commit
the record without a sync of its own (the filesystem store's segments, for a large instance);
after a power failure :meth:`start` indexes again the instances it lists as restored.

Studies are written to FHIR **coalesced**: a background task rebuilds a pending study's
ImagingStudy once the study has been quiet for ``quiet`` seconds (or ``max_delay`` after its
first new instance), from every instance record of the study, through the one write pipeline — a
500-instance study is a handful of ImagingStudy versions, not 500. A pending marker record makes
a crash between store and flush harmless: :meth:`start` flushes what a previous run left
pending, after removing the records whose bytes the crash kept from becoming durable.

A resent SOP Instance UID is idempotent: the first stored instance is kept and the result says
``duplicate``. Refusals are recorded (``dicom-rejection``) with the sender and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.waiting import wait_within
from fhir_server.imaging import part10 as part10_meta
from fhir_server.imaging.gate import GatePolicy
from fhir_server.imaging.index_upgrade import index_studies
from fhir_server.imaging.instances import OUT_OF_RESOURCES, Prepared, Refused, prepare
from fhir_server.imaging.kinds import INSTANCE, PENDING, REJECTION, blob_key, study_instances
from fhir_server.imaging.restored import index_restored, instance_puts, note_of
from fhir_server.imaging.store_result import Sender, StoreResult, stored_result
from fhir_server.imaging.study_writer import StudyWriter
from fhir_server.interactions.locks import KeyedLocks
from fhir_server.interactions.service import FhirService
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore

LOG = logging.getLogger(__name__)
CONTENT_TYPE = "application/dicom"
#: Instances up to this size are checked on the event loop: their check is CPU work of well
#: under a millisecond whatever the pixel data's size (the walk steps over it) that holds the
#: GIL anyway, and a worker thread's round trip costs a quarter of it. Bigger ones, and
#: deflated ones (the check inflates them), go to a worker thread.
PREPARE_ON_LOOP_BYTES = 4 * 1024 * 1024


@dataclass
class _Pending:
    first: float
    last: float


@dataclass
class ImagingService:
    service: FhirService
    records: RecordStore
    blobs: BlobStore
    clock: Clock
    policy: GatePolicy = field(default_factory=GatePolicy.default)
    base_url: str = ""
    #: The site's IANA zone, for Study Date/Time without Timezone Offset From UTC.
    zone: str = "UTC"
    quiet: float = 1.0
    max_delay: float = 5.0
    _pending: dict[str, _Pending] = field(default_factory=dict, init=False)
    _instances: KeyedLocks = field(default_factory=KeyedLocks, init=False)
    #: Instance records being written, per study: its pending marker is kept meanwhile.
    _indexing: dict[str, int] = field(default_factory=dict, init=False)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)
    _wake: asyncio.Event | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _writer: StudyWriter = field(init=False)

    def __post_init__(self) -> None:
        self._writer = StudyWriter(self.service, self.records, self.base_url, self.zone)

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Upgrade the index records once (index_upgrade.py), flush what a previous run left
        pending, then start the coalescing task."""
        self._wake = asyncio.Event()
        upgraded = await index_studies(self.records, self.clock)
        if upgraded:
            LOG.info("imaging index: %d study records indexed (Patient ID, Accession Number, "
                     "Study Date)", upgraded)  # fmt: skip
        await index_restored(self.blobs, self.records, self.policy, self.clock)
        left = [str(r["study"]) for r in await self.records.find(PENDING, limit=100_000)]
        for study in left:
            await self._drop_records_without_bytes(study)
            await self._flush_one(study)
        self._task = asyncio.create_task(self._run(), name="imaging-flush")

    async def _drop_records_without_bytes(self, study: str) -> None:
        """After a crash: the records of a pending study whose bytes never became durable, or
        whose bytes are of another attempt (the two are written in parallel; such an instance
        was never acknowledged)."""
        for record in await self.instances(study):
            info = await self.blobs.info(blob_key(record))
            if info is None or ("size" in record and info.size != record["size"]):
                LOG.warning("instance %s of study %s has no stored bytes, or other bytes "
                            "(interrupted store): its record is removed",
                            record["sop_instance"], study)  # fmt: skip
                await self.records.delete(INSTANCE, str(record["sop_instance"]))

    async def stop(self) -> None:
        """Stop the coalescing task and write every pending study."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.flush()

    # --- ingest ------------------------------------------------------------------------------

    async def store_part10(self, part10: bytes, sender: Sender) -> StoreResult:
        """Check, store durably and index one Part-10 instance (see the module docstring)."""
        on_loop = len(part10) <= PREPARE_ON_LOOP_BYTES and not part10_meta.claimed_deflated(part10)
        claimed = part10_meta.claimed_instance(part10) if on_loop else None
        if claimed is None:
            return await self._store(part10, sender, on_loop, None)
        # one instance at a time per SOP Instance UID: a resend racing its first copy (two
        # associations, or twice in one STOW request) is a duplicate, never a mix of both; the
        # UID the file meta claims is locked during the checks (it is nearly always the data
        # set's)
        async with self._instances.hold(claimed):
            return await self._store(part10, sender, on_loop, claimed)

    async def _store(
        self, part10: bytes, sender: Sender, on_loop: bool, held: str | None
    ) -> StoreResult:
        """``on_loop``: checked on the event loop; ``held``: the SOP Instance UID locked."""
        try:
            if on_loop:
                prepared = prepare(part10, self.policy)
            else:
                prepared = await asyncio.to_thread(prepare, part10, self.policy)
        except Refused as refused:
            return await self._refuse(refused, sender, len(part10))
        uid = prepared.sop_instance
        try:
            if held == uid:
                existing = await self._store_unless_stored(prepared, part10, sender)
            else:
                async with self._instances.hold(uid):
                    existing = await self._store_unless_stored(prepared, part10, sender)
        except OSError as exc:  # disk full, permissions: the sender may retry later
            LOG.error("cannot store instance %s: %s", uid, exc)
            return StoreResult(
                OUT_OF_RESOURCES, f"Out of resources: {type(exc).__name__}",
                prepared.sop_class, uid, prepared.study_uid, prepared.series_uid,
            )  # fmt: skip
        return stored_result(prepared, existing)

    async def _refuse(self, refused: Refused, sender: Sender, size: int) -> StoreResult:
        await self._record_refusal(refused, sender, size)
        uids = refused.uids
        return StoreResult(
            refused.status, refused.comment, uids.get("SOP Class UID"),
            uids.get("SOP Instance UID"), uids.get("Study Instance UID"),
            uids.get("Series Instance UID"),
        )  # fmt: skip

    async def _store_unless_stored(
        self, prepared: Prepared, part10: bytes, sender: Sender
    ) -> dict[str, Any] | None:
        """Store a new instance's bytes and record at once, each unless already there (one
        commit when both go to the SQLite store's writer, else in parallel); the caller answers
        only once both are durable. None for a new instance; the first one's record for an
        instance stored before (bytes and record both there: a duplicate, nothing changed).
        Bytes or a record found alone belong to an attempt never acknowledged (its other write
        failed or a crash cut it): this instance's replace them. A record whose bytes could not
        be stored is deleted; one a crash left without its bytes, or with other bytes, was
        never acknowledged either, and :meth:`start` removes it (its study's pending marker was
        durable with it and is kept until both writes are over)."""
        uid, study = prepared.sop_instance, prepared.study_uid
        self._indexing[study] = self._indexing.get(study, 0) + 1
        received = to_instant(self.clock())
        note = note_of(sender, received)  # with the bytes, rebuilds the record
        try:
            stored, indexed = await self.blobs.put_if_absent_beside(
                uid, part10, content_type=CONTENT_TYPE, note=note,
                beside=lambda: self._index(prepared, part10, sender, received),
            )  # fmt: skip
            if isinstance(stored, BaseException):
                if indexed is True:
                    await self.records.delete(INSTANCE, uid)
                raise stored
            if isinstance(indexed, BaseException):
                raise indexed
            if not stored[1] and not indexed:
                existing = await self.records.get(INSTANCE, uid)
                if existing is not None:
                    await self._unmark_if_idle(study)
                    return existing
            if not stored[1]:
                await self.blobs.put(uid, part10, content_type=CONTENT_TYPE)
            if not indexed:
                await self._index(prepared, part10, sender, received, replace=True)
        finally:
            if self._indexing[study] > 1:
                self._indexing[study] -= 1
            else:
                del self._indexing[study]
        # Pending again even if a flush took the study meanwhile: that flush may have read the
        # instances before this record was written (its marker stayed: see _write_pending).
        now = time.monotonic()
        pending = self._pending.get(study)
        if pending is None:
            self._pending[study] = _Pending(now, now)
        else:
            pending.last = now
        if self._wake is not None:
            self._wake.set()
        return None

    async def _index(
        self,
        prepared: Prepared,
        part10: bytes,
        sender: Sender,
        received: str,
        *,
        replace: bool = False,
    ) -> bool:
        """The instance's record unless it has one (``replace``: whether or not), with its
        study's pending marker when the study is not pending yet (both in one durable write);
        whether the record was written."""
        marked = prepared.study_uid not in self._pending
        puts = instance_puts(prepared, part10, sender, received, replace=replace, marked=marked)
        if marked:
            return (await self.records.put_many(puts))[1]
        (record,) = puts
        return await self.records.put(
            record.kind, record.key, record.value, index=record.index, if_absent=record.if_absent
        )

    async def _unmark_if_idle(self, study: str) -> None:
        """A duplicate's write may have marked its study pending: unmark it unless the study
        is pending, being written, or other instances of it are being stored."""
        lock = self._locks.get(study)
        busy = self._indexing.get(study, 0) > 1 or (lock is not None and lock.locked())
        if study not in self._pending and not busy:
            await self.records.delete(PENDING, study)

    async def _record_refusal(self, refused: Refused, sender: Sender, size: int) -> None:
        value = {
            "received": to_instant(self.clock()),
            "status": refused.status,
            "comment": refused.comment,
            "detail": refused.detail,
            "size": size,
            "ae_title": sender.ae_title,
            "organization": sender.organization,
            "channel": sender.channel,
            "study": refused.uids.get("Study Instance UID") or "",
            "sop_instance": refused.uids.get("SOP Instance UID"),
            "sop_class": refused.uids.get("SOP Class UID"),
            "verdict": refused.verdict.to_json() if refused.verdict is not None else None,
        }
        key = f"{to_instant(self.clock())}-{uuid.uuid4().hex[:12]}"
        try:
            await self.records.put(REJECTION, key, value, index="study")
        except Exception:
            LOG.exception("cannot record the refusal of an instance")
        LOG.info("instance refused (%s via %s): %s", sender.ae_title, sender.channel,
                 refused.detail)  # fmt: skip

    # --- flushing ----------------------------------------------------------------------------

    async def flush(self, study_uid: str | None = None) -> None:
        """Write the ImagingStudy of one study now; or, when None, of every study that is
        pending or being written (returning once those writes are done)."""
        if study_uid is not None:
            await self._flush_one(study_uid)
            return
        busy = [study for study, lock in self._locks.items() if lock.locked()]
        await self.settle([*self._pending, *busy])

    async def settle(self, studies: Iterable[str]) -> None:
        """Write now, side by side, the ImagingStudy of each of ``studies`` that has instances
        not written yet, and wait for the writes of them already under way; a study written
        since its last instance is left alone. (The writes overlap: their reads and commits
        are shared, where one after the other each would wait for its own.)"""
        await asyncio.gather(
            *(self._flush_one(study, only_pending=True) for study in dict.fromkeys(studies))
        )

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await wait_within(self._wake.wait(), self.quiet)
            self._wake.clear()
            now = time.monotonic()
            due = [
                s for s, p in self._pending.items()
                if now - p.last >= self.quiet or now - p.first >= self.max_delay
            ]  # fmt: skip
            await asyncio.gather(*(self._flush_one(study) for study in due))
            if self._pending and not due:
                await asyncio.sleep(min(self.quiet, 0.2))

    async def _flush_one(self, study: str, *, only_pending: bool = False) -> None:
        lock = self._locks.setdefault(study, asyncio.Lock())
        async with lock:
            pending = self._pending.pop(study, None)
            # only_pending: a study written meanwhile (by whoever held the lock) is left alone
            if pending is not None or not only_pending:
                await self._write_pending(study, pending)
        if not lock.locked() and study not in self._pending:
            self._locks.pop(study, None)

    async def _write_pending(self, study: str, pending: _Pending | None) -> None:
        try:
            await self._write_study(study)
        except asyncio.CancelledError:
            if pending is not None:
                self._pending.setdefault(study, pending)
            raise
        except Exception:
            LOG.exception("cannot write the ImagingStudy of study %s", study)
            now = time.monotonic()
            self._pending.setdefault(study, _Pending(now, now))
            return
        if study not in self._pending and study not in self._indexing:
            await self.records.delete(PENDING, study)

    async def instances(self, study: str) -> list[dict[str, Any]]:
        """Every instance record of a study, in SOP Instance UID order."""
        return await study_instances(self.records, study)

    async def _write_study(self, study: str) -> None:
        await self._writer.write(study)  # study_writer.py
