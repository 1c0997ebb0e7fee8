"""Storage SCP (C-STORE) and Verification SCP (C-ECHO): a door that only translates.

The received data set is passed on exactly as encoded (no decode) to the imaging ingest; its
StoreResult becomes the C-STORE response status (PS3.4 B.2.3). Storage associations are served
by the node's acceptor on the server loop (:meth:`StorageService.store`, no thread hop); the
pynetdicom handlers serve C-STOREs on associations the acceptor relays (storage proposed beside
other services, e.g. storage commitment), through the loop bridge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydicom import Dataset
from pynetdicom import evt
from pynetdicom.pdu_primitives import A_RELEASE

from fhir_server.dicom.assembly import Ingest
from fhir_server.dicom.audit import DimseAudit
from fhir_server.dicom.scu import Bridge
from fhir_server.dicom.ul.association import RELEASE_WAIT
from fhir_server.imaging.instances import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, short_comment

log = logging.getLogger(__name__)

STORE_TIMEOUT = 120.0

#: Sender(ae_title, organization, channel) — the imaging service's Sender type, given by bootstrap.
SenderFactory = Callable[[str | None, str | None, str], Any]


def _status(status: int, comment: str | None) -> Dataset:
    ds = Dataset()
    ds.Status = status
    if comment:
        ds.ErrorComment = short_comment(comment)
    return ds


class StorageService:
    """EVT_C_STORE and EVT_C_ECHO handlers of the node."""

    def __init__(
        self,
        ingest: Ingest,
        bridge: Bridge,
        sender: SenderFactory,
        organization: Callable[[str], str | None],
        audit: DimseAudit | None = None,
    ) -> None:
        self.ingest = ingest
        self.bridge = bridge
        self.sender = sender
        self.organization = organization
        self.audit = audit
        #: Studies stored on each open association (by id of it), the acceptor's or relayed.
        self._studies: dict[int, set[str]] = {}

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [
            (evt.EVT_C_STORE, self.on_c_store), (evt.EVT_C_ECHO, self.on_c_echo),
            (evt.EVT_ACSE_RECV, self.on_acse_recv), (evt.EVT_CONN_CLOSE, self.on_conn_close),
        ]  # fmt: skip

    def on_c_echo(self, event: evt.Event) -> int:
        return 0x0000

    async def store(self, association: Any, part10: bytes) -> tuple[int, str | None]:
        """One C-STORE of an association the acceptor serves: (status, Error Comment)."""
        status, comment, result = await self._store(association, part10)
        self._stored(association, result)
        return status, comment

    def _stored(self, association: Any, result: Any) -> None:
        if result is not None and result.ok and result.study_uid and not result.duplicate:
            self._studies.setdefault(id(association), set()).add(result.study_uid)

    async def _store(self, association: Any, part10: bytes) -> tuple[int, str | None, Any]:
        """Ingest, audit and the response's (status, Error Comment), with the StoreResult
        (None when the ingest failed): both doors, the acceptor's and pynetdicom's."""
        ae = str(association.requestor.ae_title).strip()
        sender = self.sender(ae, self.organization(ae), "c-store")
        try:
            result: Any = await self.ingest.store_part10(part10, sender)
        except Exception as exc:
            log.exception("C-STORE from %s failed", ae)
            return OUT_OF_RESOURCES, short_comment(f"store failed: {type(exc).__name__}"), None
        if self.audit is not None:
            self.audit.stored(association, result.study_uid, result.patient_id, ok=result.ok)
        comment = short_comment(result.comment) if result.comment else None
        return int(result.status), comment, result

    async def ended(self, association: Any) -> None:
        """The association the acceptor served ended: its audit is due, and the studies it
        stored are written to FHIR now (a modality releases once it has sent a study: waiting
        for the ingest's quiet time would only delay the ImagingStudy)."""
        if self.audit is not None:
            await self.audit.association_ended(association)
        await self._settle(sorted(self._studies.pop(id(association), ())))

    async def _settle(self, studies: list[str]) -> None:
        try:
            await self.ingest.settle(studies)
        except Exception:  # the ingest keeps the studies pending and retries
            log.exception("ImagingStudies of studies %s not written at association end",
                          ", ".join(studies))  # fmt: skip

    def on_c_store(self, event: evt.Event) -> Dataset:
        """A C-STORE on an association relayed to pynetdicom (its thread, through the bridge)."""
        ae = str(event.assoc.requestor.ae_title).strip()
        try:
            part10 = bytes(event.encoded_dataset())
        except Exception as exc:
            log.warning("C-STORE from %s: data set unreadable: %s", ae, type(exc).__name__)
            return _status(CANNOT_UNDERSTAND, f"data set cannot be read: {type(exc).__name__}")
        try:
            status, comment, result = self.bridge.call(
                self._store(event.assoc, part10), timeout=STORE_TIMEOUT
            )
        except TimeoutError:
            log.error("C-STORE from %s: ingest timed out", ae)
            return _status(OUT_OF_RESOURCES, "store timed out")
        self._stored(event.assoc, result)
        return _status(status, comment)

    def on_acse_recv(self, event: evt.Event) -> None:
        """A relayed association's A-RELEASE-RQ, before pynetdicom answers it: the studies
        stored on it are written first, as on the acceptor's associations (at most
        RELEASE_WAIT s)."""
        primitive = getattr(event, "primitive", None)  # EVT_ACSE_RECV's keyword
        if not isinstance(primitive, A_RELEASE) or primitive.result is not None:
            return
        studies = sorted(self._studies.pop(id(event.assoc), ()))
        if not studies:
            return
        try:
            self.bridge.call(self._settle(studies), timeout=RELEASE_WAIT)
        except TimeoutError:
            log.warning("association released before its studies were written (they are "
                        "being written)")  # fmt: skip

    def on_conn_close(self, event: evt.Event) -> None:
        """A relayed association's connection closed (aborted, dropped, or released): the
        ingest's quiet time writes what it stored, if the release did not."""
        self._studies.pop(id(event.assoc), None)
