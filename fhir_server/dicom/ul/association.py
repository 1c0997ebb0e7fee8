"""One association the acceptor serves itself: P-DATA-TF in, DIMSE messages assembled from
their PDV fragments (PS3.8 annex E), C-ECHO and C-STORE answered, A-RELEASE and A-ABORT
honoured. Messages are handled in the order they arrive (an asynchronous operations window of
one, the default of PS3.7 D.3.3.3: the requestor waits for each response).

A release is answered once the storage service has ended the association (its studies written
to FHIR, its audit recorded), at most :data:`RELEASE_WAIT` s: a modality or script that queries
right after ``storescu`` returns finds what it sent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fhir_server.core.waiting import wait_within
from fhir_server.dicom.ul import dimse, pdu
from fhir_server.dicom.ul.part10 import file_meta
from fhir_server.imaging.instances import SOP_CLASS_NOT_SUPPORTED, SUCCESS, short_comment

if TYPE_CHECKING:
    from fhir_server.dicom.ul.acceptor import StorageHandler

log = logging.getLogger(__name__)

MISTYPED_ARGUMENT = 0x0212
#: How long an A-RELEASE-RQ waits for the association's end (then answered anyway, the end going
#: on): well under the 30 s dcmtk and pynetdicom wait for the A-RELEASE-RP by default.
RELEASE_WAIT = 15.0


@dataclass(slots=True)
class Requestor:
    """The peer, as pynetdicom's ``assoc.requestor`` names it for the handlers and audit."""

    ae_title: str
    address: str
    port: int


@dataclass(slots=True)
class Negotiated:
    """The A-ASSOCIATE-AC's results and the accepted contexts: id -> (abstract, transfer)."""

    results: list[tuple[int, int, str]] = field(default_factory=list)
    accepted: dict[int, tuple[str, str]] = field(default_factory=dict)
    peer_max_pdu: int = 0


class Association:
    def __init__(
        self,
        requestor: Requestor,
        negotiated: Negotiated,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handler: StorageHandler,
        max_pdu: int,
        timeout: float,
    ) -> None:
        self.requestor = requestor
        self.negotiated = negotiated
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._max_pdu = max_pdu
        self._timeout = timeout
        self._command = bytearray()
        #: The data set's fragments as received (views of their PDUs), joined once with the
        #: file meta when the last one is in: no copy per fragment, none of the whole but one.
        self._data: list[memoryview] = []
        self._pending: tuple[int, dict[int, bytes]] | None = None
        self._ending: asyncio.Future[None] | None = None

    async def serve(self) -> None:
        """Until the requestor releases or aborts the association (or the network fails)."""
        while True:
            kind, body = await wait_within(pdu.read_pdu(self._reader, self._max_pdu), self._timeout)
            if kind == pdu.P_DATA_TF:
                await self._p_data(body)
            elif kind == pdu.RELEASE_RQ:
                self._ending = asyncio.ensure_future(self._ended())
                try:
                    await asyncio.wait_for(asyncio.shield(self._ending), RELEASE_WAIT)
                except TimeoutError:
                    log.warning("association from %s released before its studies were written "
                                "(they are being written)", self.requestor.ae_title)  # fmt: skip
                self._writer.write(pdu.encode_release_rp())
                await self._writer.drain()
                return
            elif kind == pdu.ABORT:
                return
            else:
                raise pdu.PduError(f"unexpected PDU of type 0x{kind:02X} in an association")

    async def end(self) -> None:
        """The storage service's end of this association, once: started by a release (before
        its answer) or now (an abort, a network failure, the node stopping); awaited whole."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._ended())
        await self._ending

    async def _ended(self) -> None:
        try:
            await self._handler.ended(self)
        except Exception:
            log.exception("the end of the association from %s failed", self.requestor.ae_title)

    async def _p_data(self, body: bytes) -> None:
        for context_id, control, fragment in pdu.decode_p_data(body):
            if context_id not in self.negotiated.accepted:
                raise pdu.PduError(f"P-DATA-TF on presentation context {context_id}, "
                                   "which was not accepted")  # fmt: skip
            if control & 0x01:
                self._command += fragment
                if control & 0x02:
                    command = dimse.decode_command(bytes(self._command))
                    self._command.clear()
                    if dimse.us(command, dimse.DATA_SET_TYPE) == dimse.NO_DATA_SET:
                        await self._dispatch(context_id, command, [])
                    else:
                        self._pending = (context_id, command)
            else:
                if self._pending is None:
                    raise pdu.PduError("a data set fragment arrived before its command")
                self._data.append(fragment)
                if control & 0x02:
                    context, command = self._pending
                    data, self._pending, self._data = self._data, None, []
                    await self._dispatch(context, command, data)

    async def _dispatch(
        self, context_id: int, command: dict[int, bytes], data: list[memoryview]
    ) -> None:
        field_ = dimse.us(command, dimse.COMMAND_FIELD)
        abstract, syntax = self.negotiated.accepted[context_id]
        message_id = dimse.us(command, dimse.MESSAGE_ID) or 0
        if field_ == dimse.C_ECHO_RQ:
            await self._send(context_id, {
                dimse.AFFECTED_SOP_CLASS: abstract, dimse.COMMAND_FIELD: dimse.C_ECHO_RSP,
                dimse.MESSAGE_ID_RESPONDED: message_id, dimse.DATA_SET_TYPE: dimse.NO_DATA_SET,
                dimse.STATUS: SUCCESS,
            })  # fmt: skip
        elif field_ == dimse.C_STORE_RQ:
            await self._store(context_id, command, data, abstract, syntax, message_id)
        else:
            raise pdu.PduError(f"DIMSE command 0x{field_ or 0:04X} is not served on a storage "
                               "association")  # fmt: skip

    async def _store(
        self,
        context_id: int,
        command: dict[int, bytes],
        data: list[memoryview],
        abstract: str,
        syntax: str,
        message_id: int,
    ) -> None:
        sop_class = dimse.text(command, dimse.AFFECTED_SOP_CLASS)
        sop_instance = dimse.text(command, dimse.AFFECTED_SOP_INSTANCE)
        comment: str | None
        if abstract == dimse.VERIFICATION or sop_class != abstract:
            status = SOP_CLASS_NOT_SUPPORTED
            comment = short_comment(
                f"Affected SOP Class {sop_class} is not the context's {abstract}"
            )
        elif not sop_instance or not any(data):
            status = MISTYPED_ARGUMENT
            comment = "C-STORE without Affected SOP Instance UID or data set"
        else:
            meta = file_meta(sop_class, sop_instance, syntax, self.requestor.ae_title)
            part10 = b"".join([meta, *data])
            status, comment = await self._handler.store(self, part10)
        response: dict[int, int | str] = {
            dimse.AFFECTED_SOP_CLASS: sop_class, dimse.COMMAND_FIELD: dimse.C_STORE_RSP,
            dimse.MESSAGE_ID_RESPONDED: message_id, dimse.DATA_SET_TYPE: dimse.NO_DATA_SET,
            dimse.STATUS: status, dimse.AFFECTED_SOP_INSTANCE: sop_instance,
        }  # fmt: skip
        if comment and status != SUCCESS:
            response[dimse.ERROR_COMMENT] = comment
        await self._send(context_id, response)

    async def _send(self, context_id: int, values: dict[int, int | str]) -> None:
        self._writer.write(pdu.encode_p_data(
            context_id, dimse.encode_command(values), command=True,
            max_length=self.negotiated.peer_max_pdu,
        ))  # fmt: skip
        await self._writer.drain()
