"""Query/Retrieve SCP, retrieve side: C-MOVE and C-GET (PS3.4 C.4.2, C.4.3), Patient Root and
Study Root, PATIENT (patient root only), STUDY, SERIES and IMAGE levels.

The identifier's unique keys (PS3.4 C.4.2.2.1) select stored instances from the ingest's
records (:mod:`fhir_server.dicom.retrieve_keys`). Each sub-operation sends the stored Part-10
blob, read through the loop bridge and decoded by pydicom only lazily (its raw elements are
written back unchanged), in its original transfer syntax when the destination accepted it for
that SOP class; else, for an instance stored in a native little-endian syntax (Implicit or
Explicit VR, or Deflated), in the native little-endian syntax it accepted (pynetdicom re-encodes
the data set, every value unchanged). One stored compressed (or Big Endian) that the
destination did not accept as such fails, and is counted so: no codec here. pynetdicom sends
the pending responses with the remaining/completed/failed/warning counts and the final one
(0xB000 with the Failed SOP Instance UID List when some failed, 0xA702 when all did, success
with no sub-operation when nothing matched).

C-MOVE sends to the Move Destination as the AE allow-list gives its address
(``--dicom-peer AE=Organization/x@host:port``), over a new association (TCP_NODELAY) proposing one
context per stored SOP class and transfer syntax (a native one with Explicit and Implicit VR
Little Endian after it); an AE not there is refused with 0xA801.
C-GET sends over the requesting association (the storage contexts of the node accept the SCP
role the requestor proposes). Who may ask is the node's allow-list (with authorization on, only
``--dicom-peer`` AEs associate): no tokens in DIMSE.

Refusals before any sub-operation (0xC000 identifier cannot be decoded, 0xA900 identifier does
not fit, 0xA801 destination unknown, 0xA701 matching failed) carry an Error Comment naming the
attribute. pynetdicom sends those responses itself without one (0xA801 for an unknown
destination, success for zero sub-operations), so :func:`_refuse` amends that one response.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pynetdicom import AllStoragePresentationContexts, build_context, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_GET, C_MOVE
from pynetdicom.presentation import PresentationContext

from fhir_server.dicom.audit import DimseAudit
from fhir_server.dicom.retrieve_keys import LEVELS, Refused, parse
from fhir_server.dicom.scu import AssociationFailed, Bridge, RemoteAe, nodelay
from fhir_server.imaging.instances import short_comment
from fhir_server.imaging.retrieval import Match, Matcher, Request
from fhir_server.imaging.transcode import SOURCES, TARGETS, possible
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore

LOG = logging.getLogger(__name__)
TIMEOUT = 60.0
MAX_CONTEXTS = 128  # presentation context IDs are the odd numbers 1..255

PENDING = 0xFF00
CANCEL = 0xFE00
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA701  # unable to calculate the number of matches
MOVE_DESTINATION_UNKNOWN = 0xA801
UNABLE_TO_PROCESS = 0xC000


class RetrieveService:
    """C-MOVE and C-GET SCP as a DimseService (contexts + handlers for DicomNode).

    ``destination``: where a Move Destination AE listens (the --dicom-peer table), None when
    unknown; ``flush``: ImagingService.flush (PATIENT level reads the written studies).
    """

    def __init__(
        self,
        records: RecordStore,
        blobs: BlobStore,
        bridge: Bridge,
        destination: Callable[[str], RemoteAe | None],
        flush: Callable[[], Awaitable[None]] | None = None,
        audit: DimseAudit | None = None,
    ) -> None:
        self.matcher = Matcher(records, flush)
        self.blobs = blobs
        self.bridge = bridge
        self.destination = destination
        self.audit = audit

    def contexts(self) -> list[tuple[str, list[str] | None, bool, bool]]:
        retrieve: list[tuple[str, list[str] | None, bool, bool]] = [
            (uid, None, False, True) for uid in LEVELS
        ]
        # C-GET sends back on the requesting association: the requestor proposes the SCP role
        # for the storage SOP classes (SCP/SCU Role Selection) and the node accepts it.
        storage = [
            (str(cx.abstract_syntax), None, True, True) for cx in AllStoragePresentationContexts
        ]
        return retrieve + storage

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [(evt.EVT_C_MOVE, self.on_c_move), (evt.EVT_C_GET, self.on_c_get)]

    # --- handlers ----------------------------------------------------------------------------

    def on_c_move(self, event: Any) -> Iterator[Any]:
        calling = str(event.assoc.requestor.ae_title).strip()
        move_to = str(event.request.MoveDestination or "").strip()
        try:
            request = self._request(event)
            remote = self.destination(move_to)
            if remote is None:
                raise Refused(
                    MOVE_DESTINATION_UNKNOWN,
                    f"Move Destination {move_to!r} is not a --dicom-peer AE@host:port",
                )
            tls_args = _tls_args(remote)
            matches = self._match(request)
        except Refused as refused:
            LOG.info("C-MOVE from %s refused: %s", calling, refused.comment)
            _refuse(event, C_MOVE, MOVE_DESTINATION_UNKNOWN, refused)
            yield None, None
            return
        store: list[Association] = []
        restore = _no_watch
        if matches:  # pynetdicom associates (0xA801 when that fails) only for sub-operations
            note = Refused(MOVE_DESTINATION_UNKNOWN, f"association to {remote} failed")
            restore = _refuse(event, C_MOVE, MOVE_DESTINATION_UNKNOWN, note)
        handlers = [(evt.EVT_CONN_OPEN, nodelay), (evt.EVT_CONN_OPEN, _keep(store))]
        options = {
            "contexts": _contexts(matches), "evt_handlers": handlers,
            "tls_args": tls_args,
        }  # fmt: skip
        try:
            yield remote.host, remote.port, options
            yield len(matches)
            restore()
            self._audit(event, "C-MOVE", matches, move_to)
            yield from self._sub_operations(event, matches, lambda: store[0] if store else None)
        finally:
            restore()

    def on_c_get(self, event: Any) -> Iterator[Any]:
        calling = str(event.assoc.requestor.ae_title).strip()
        try:
            matches = self._match(self._request(event))
        except Refused as refused:
            LOG.info("C-GET from %s refused: %s", calling, refused.comment)
            _refuse(event, C_GET, SUCCESS, refused)
            yield 0
            return
        yield len(matches)
        self._audit(event, "C-GET", matches)
        yield from self._sub_operations(event, matches, lambda: event.assoc)

    # --- steps -------------------------------------------------------------------------------

    def _audit(
        self, event: Any, operation: str, matches: list[Match], destination: str | None = None
    ) -> None:
        if self.audit is not None and matches:
            per_study: dict[str, int] = {}
            for match in matches:
                per_study[match.study] = per_study.get(match.study, 0) + 1
            for study, count in per_study.items():
                self.audit.sent(event.assoc, operation, [study], count, destination)

    def _request(self, event: Any) -> Request:
        sop_class = str(event.request.AffectedSOPClassUID)
        try:
            identifier: Dataset = event.identifier
            list(identifier.elements())  # read every element now (values stay raw)
        except Exception as exc:
            raise Refused(UNABLE_TO_PROCESS, f"identifier cannot be decoded: {exc}") from exc
        return parse(identifier, sop_class)

    def _match(self, request: Request) -> list[Match]:
        try:
            return self.bridge.call(self.matcher.match(request), timeout=TIMEOUT)
        except Exception as exc:  # the record store or the loop: the requester may retry
            LOG.exception("retrieve: matching failed")
            raise Refused(OUT_OF_RESOURCES, f"matching failed: {type(exc).__name__}") from exc

    def _sub_operations(
        self, event: Any, matches: list[Match], association: Callable[[], Association | None]
    ) -> Iterator[tuple[int, Dataset | None]]:
        for match in matches:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, self._dataset(match, association())

    def _dataset(self, match: Match, association: Association | None) -> Dataset:
        """The stored instance, or a data set pynetdicom cannot send (it counts a failed
        sub-operation and lists its SOP Instance UID) when the destination did not accept its
        SOP class in its transfer syntax or the blob is missing or unreadable."""
        if association is None or not sendable(association, match):
            LOG.warning(
                "retrieve: %s not sent, the destination accepted no context for %s in %s",
                match.sop_instance, match.sop_class, match.transfer_syntax,
            )  # fmt: skip
            return _unsendable(match)
        try:
            data = self.bridge.call(_read(self.blobs, match.blob), timeout=TIMEOUT)
        except Exception as exc:
            LOG.error("retrieve: %s cannot be read: %s", match.sop_instance, exc)
            return _unsendable(match)
        if data is None:
            LOG.error("retrieve: %s has an instance record but no blob", match.sop_instance)
            return _unsendable(match)
        try:
            return pydicom.dcmread(BytesIO(data))
        except Exception as exc:
            LOG.error("retrieve: %s cannot be decoded: %s", match.sop_instance, exc)
            return _unsendable(match)


def _tls_args(remote: RemoteAe) -> Any:
    try:
        return remote.tls_args()
    except AssociationFailed as exc:
        raise Refused(MOVE_DESTINATION_UNKNOWN, str(exc)) from exc


async def _read(blobs: BlobStore, key: str) -> bytes | None:
    if await blobs.info(key) is None:
        return None
    async with await blobs.stream(key) as stream:
        return await stream.read_all()


def sendable(association: Association, match: Match) -> bool:
    """Whether the association accepted the instance's SOP class in its stored transfer syntax,
    or in one it can be re-encoded to (as pynetdicom's send_c_store then does)."""
    return any(
        cx.abstract_syntax == match.sop_class
        and possible(match.transfer_syntax, str(cx.transfer_syntax[0]))
        and cx.as_scu
        for cx in association.accepted_contexts
    )


def _unsendable(match: Match) -> Dataset:
    """No file meta, hence no transfer syntax: pynetdicom's send_c_store raises for it, which
    its Q/R service counts as a failed sub-operation with this SOP Instance UID."""
    ds = Dataset()
    ds.SOPClassUID = match.sop_class
    ds.SOPInstanceUID = match.sop_instance
    return ds


def _contexts(matches: list[Match]) -> list[PresentationContext]:
    """One context per stored (SOP class, transfer syntax): the instances as they are, or, for
    a native one, re-encoded in the native syntax the destination prefers."""
    pairs = dict.fromkeys((m.sop_class, m.transfer_syntax) for m in matches)
    if len(pairs) > MAX_CONTEXTS:
        LOG.warning("retrieve: %d SOP class/transfer syntax pairs, %d proposed",
                    len(pairs), MAX_CONTEXTS)  # fmt: skip
    return [
        build_context(sop_class, list(dict.fromkeys([ts, *(TARGETS if ts in SOURCES else ())])))
        for sop_class, ts in list(pairs)[:MAX_CONTEXTS]
    ]


def _keep(store: list[Association]) -> Callable[[Any], None]:
    def keep(event: Any) -> None:
        store.append(event.assoc)

    return keep


def _refuse(
    event: Any, kind: type[C_MOVE | C_GET], sent: int, refused: Refused
) -> Callable[[], None]:
    """Amend the response pynetdicom sends with status ``sent`` to this C-MOVE/C-GET request:
    ``refused``'s status and Error Comment (0000,0902). Returns the function that stops
    watching (called once the response went, or when the watch is no longer needed)."""
    dimse = event.assoc.dimse
    send = dimse.send_msg
    message_id = event.request.MessageID

    def send_msg(primitive: Any, context_id: int) -> None:
        if (
            isinstance(primitive, kind)
            and primitive.MessageIDBeingRespondedTo == message_id
            and primitive.Status == sent
        ):
            restore()
            response: Any = primitive
            response.Status = refused.status
            response.ErrorComment = short_comment(refused.comment)
        send(primitive, context_id)

    def restore() -> None:
        if vars(dimse).get("send_msg") is send_msg:
            del dimse.send_msg

    setattr(dimse, "send_msg", send_msg)  # noqa: B010 (an instance attribute, one response)
    return restore


def _no_watch() -> None:
    return None
