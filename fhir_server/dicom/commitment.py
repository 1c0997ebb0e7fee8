"""Storage Commitment SCP, push model (PS3.4 J): N-ACTION in, N-EVENT-REPORT out.

The N-ACTION (Action Type 1, Request Storage Commitment) is answered at once: 0x0000 when it
carries a Transaction UID and a Referenced SOP Sequence, else a failure with an Error Comment
(0x0120 missing attribute, 0x0123 no such action). The commitment itself runs after the answer,
in a worker thread: each referenced SOP Class/Instance is checked against the instance records
and blobs (``fhir_server.imaging.commitment``), the studies' ImagingStudy updates are flushed,
the confirmation is recorded as a Communication (RO-19), and the N-EVENT-REPORT (Event Type 1
all committed, 2 some failed; ReferencedSOPSequence, FailedSOPSequence with FailureReason) goes
back on the same association when the requester is still connected, else on a new association
to the requester's AE as the AE allow-list (``--dicom-peer AE=Organization/x@host:port``) gives
it, proposing the SCP role for the Storage Commitment Push Model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pynetdicom import build_role, evt

from fhir_server.core.clock import to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError
from fhir_server.dicom.find import failure
from fhir_server.dicom.scu import (
    STORAGE_COMMITMENT_PUSH,
    STORAGE_COMMITMENT_PUSH_INSTANCE,
    AssociationFailed,
    Bridge,
    RemoteAe,
    associate,
    client_ae,
)
from fhir_server.imaging.commitment import CommitmentResult, Reference, check, confirm
from fhir_server.interactions.service import FhirService
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore

LOG = logging.getLogger(__name__)
REQUEST_STORAGE_COMMITMENT = 1
MISSING_ATTRIBUTE = 0x0120
NO_SUCH_ACTION = 0x0123
PROCESSING_FAILURE = 0x0110
TIMEOUT = 120.0
#: Time for pynetdicom to send the N-ACTION response before a report on the same association.
ANSWER_GRACE = 0.2


class CommitmentService:
    """Storage Commitment Push Model SCP as a DimseService.

    ``context``: the RequestContext for a calling AE; ``organization``: the sending Organization
    of an AE (None when unknown); ``peer``: where an AE listens (for reports on a new
    association); ``flush``: ImagingService.flush for a study.
    """

    def __init__(
        self,
        service: FhirService,
        records: RecordStore,
        blobs: BlobStore,
        bridge: Bridge,
        *,
        ae_title: str,
        context: Callable[[str], RequestContext],
        organization: Callable[[str], str | None],
        peer: Callable[[str], RemoteAe | None],
        flush: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.service = service
        self.records = records
        self.blobs = blobs
        self.bridge = bridge
        self.ae_title = ae_title
        self.context = context
        self.organization = organization
        self.peer = peer
        self.flush = flush
        self.threads: list[threading.Thread] = []

    def contexts(self) -> list[tuple[str, list[str] | None, bool, bool]]:
        return [(STORAGE_COMMITMENT_PUSH, None, True, True)]

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [(evt.EVT_N_ACTION, self.on_n_action)]

    def on_n_action(self, event: Any) -> tuple[int | Dataset, Dataset | None]:
        if event.action_type != REQUEST_STORAGE_COMMITMENT:
            return failure(NO_SUCH_ACTION, f"Action Type ID {event.action_type} is not 1")
        try:
            info: Dataset = event.action_information
            transaction = str(info.get("TransactionUID", "") or "")
            references = [
                Reference(str(item.ReferencedSOPClassUID), str(item.ReferencedSOPInstanceUID))
                for item in info.get("ReferencedSOPSequence", [])
            ]
        except Exception as exc:
            return failure(PROCESSING_FAILURE, f"Action Information cannot be read: {exc}")
        if not transaction:
            return failure(MISSING_ATTRIBUTE, "Transaction UID (0008,1195) is missing")
        if not references:
            return failure(MISSING_ATTRIBUTE, "Referenced SOP Sequence (0008,1199) is empty")
        calling = str(event.assoc.requestor.ae_title).strip()
        worker = threading.Thread(
            target=self._commit,
            args=(event.assoc, calling, transaction, references),
            name=f"storage-commitment-{transaction}",
            daemon=True,
        )
        self.threads = [t for t in self.threads if t.is_alive()] + [worker]
        worker.start()
        return 0x0000, None

    def _commit(self, assoc: Any, calling: str, transaction: str, refs: list[Reference]) -> None:
        try:
            result = self.bridge.call(self._check(calling, transaction, refs), timeout=TIMEOUT)
            self._report(assoc, calling, result)
        except Exception:
            LOG.exception("storage commitment %s for %s failed", transaction, calling)

    async def _check(
        self, calling: str, transaction: str, references: list[Reference]
    ) -> CommitmentResult:
        result = await check(self.records, self.blobs, transaction, references)
        if self.flush is not None:
            for study in result.studies:
                await self.flush(study)
        sent = to_instant(datetime.now(UTC))
        org = self.organization(calling)
        try:
            await confirm(self.service, self.context(calling), result, calling, org, sent)
        except FhirError:  # e.g. the peer's Organization is not on this server: still report
            LOG.exception("recording storage commitment %s as a Communication failed", transaction)
        return result

    def _report(self, assoc: Any, calling: str, result: CommitmentResult) -> None:
        report = event_report(result, self.ae_title)
        time.sleep(ANSWER_GRACE)
        if assoc.is_established:
            status = assoc.send_n_event_report(
                report, result.event_type, STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE
            )
            if status is not None and getattr(status, "Status", 0xFFFF) == 0x0000:
                return
        remote = self.peer(calling)
        if remote is None:
            raise AssociationFailed(f"no address known for the calling AE {calling!r}")
        ae = client_ae(self.ae_title)
        ae.add_requested_context(STORAGE_COMMITMENT_PUSH)
        role = build_role(STORAGE_COMMITMENT_PUSH, scp_role=True)
        outgoing = associate(ae, remote, ext_neg=[role])
        try:
            outgoing.send_n_event_report(
                report, result.event_type, STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE
            )
        finally:
            outgoing.release()


def event_report(result: CommitmentResult, retrieve_ae: str) -> Dataset:
    """The N-EVENT-REPORT Event Information (PS3.4 J.3.3)."""
    ds = Dataset()
    ds.TransactionUID = result.transaction_uid
    ds.RetrieveAETitle = retrieve_ae
    if result.committed:
        ds.ReferencedSOPSequence = Sequence(
            [_item(ref.sop_class, ref.sop_instance) for ref in result.committed]
        )
    if result.failed:
        failed = []
        for failure in result.failed:
            item = _item(failure.reference.sop_class, failure.reference.sop_instance)
            item.FailureReason = failure.reason
            failed.append(item)
        ds.FailedSOPSequence = Sequence(failed)
    return ds


def _item(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item
