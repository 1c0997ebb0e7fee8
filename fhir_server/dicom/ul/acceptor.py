"""The node's listening socket: an asyncio DICOM Upper Layer acceptor (PS3.8) on the server's
event loop.

It reads each association's A-ASSOCIATE-RQ and either

- serves it itself, when every proposed presentation context is Verification or a storage SOP
  class and the request asks for no role selection, user identity or extended negotiation (what
  modalities, PACS and ``storescu`` send): the C-STOREs are handed to the ingest on this loop,
  without a thread hop, and answered as soon as it has made them durable; or
- relays it, byte for byte, to the pynetdicom AE that serves everything else (C-FIND, worklist,
  C-MOVE/C-GET, storage commitment) on a loopback-only port, remembering the peer's address for
  that AE's handlers and audit.

Either way TLS (when configured) ends here, every socket has TCP_NODELAY (asyncio sets it on TCP
transports), and the calling-AE allow-list is applied before an association is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from fhir_server.core.waiting import wait_within
from fhir_server.dicom.ul import pdu
from fhir_server.dicom.ul.association import Association, Negotiated, Requestor
from fhir_server.dicom.ul.part10 import IMPLEMENTATION_CLASS, IMPLEMENTATION_VERSION

log = logging.getLogger(__name__)

RQ_LIMIT = 1024 * 1024
HANDSHAKE_TIMEOUT = 10.0
RELAY_CHUNK = 256 * 1024


class StorageHandler(Protocol):
    """What the acceptor needs of the storage service."""

    async def store(self, association: Association, part10: bytes) -> tuple[int, str | None]: ...

    async def ended(self, association: Association) -> None: ...


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What the acceptor accepts: ``syntaxes`` maps each abstract syntax it serves itself to its
    transfer syntaxes; ``allowed`` is the calling-AE allow-list (None: any AE)."""

    syntaxes: dict[str, tuple[str, ...]]
    allowed: frozenset[str] | None
    max_pdu: int
    max_associations: int = 32
    timeout: float = 60.0


@dataclass
class UpperLayerServer:
    host: str
    port: int
    acceptance: Acceptance
    handler: StorageHandler
    tls: ssl.SSLContext | None = None
    #: Where associations this acceptor does not serve go (the pynetdicom AE), or None.
    relay: Callable[[], tuple[str, int] | None] = lambda: None
    #: Local port of each relayed connection -> the real peer's address.
    relayed: dict[int, str] = field(default_factory=dict)
    _server: asyncio.Server | None = field(default=None, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _associations: int = field(default=0, init=False)

    @property
    def bound_port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accepted, self.host, self.port, ssl=self.tls,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT if self.tls else None,
            limit=RELAY_CHUNK,
        )  # fmt: skip

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await wait_within(server.wait_closed(), 5.0)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        peer = writer.get_extra_info("peername") or ("", 0)
        try:
            await self._connection(reader, writer, Requestor("", str(peer[0]), int(peer[1])))
        except asyncio.CancelledError:  # the node stops: the connection is closed below
            pass
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, ssl.SSLError):
            pass
        except pdu.PduError as exc:
            log.warning("DICOM association from %s aborted: %s", peer[0], exc)
            writer.write(pdu.encode_abort(pdu.ABORT_SERVICE_PROVIDER, pdu.ABORT_INVALID_PARAMETER))
        except Exception:
            log.exception("DICOM association from %s failed", peer[0])
            writer.write(pdu.encode_abort(pdu.ABORT_SERVICE_PROVIDER, 0))
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await wait_within(writer.wait_closed(), 1.0)

    async def _connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, requestor: Requestor
    ) -> None:
        kind, body = await wait_within(pdu.read_pdu(reader, RQ_LIMIT), self.acceptance.timeout)
        if kind != pdu.ASSOCIATE_RQ:
            raise pdu.PduError(f"the first PDU is of type 0x{kind:02X}, not an A-ASSOCIATE-RQ")
        rq = pdu.decode_associate_rq(body)
        requestor.ae_title = rq.calling_ae
        relay = None if self._serves(rq) else self.relay()
        if relay is not None:
            await self._relay(relay, pdu.header(kind, body) + body, reader, writer, requestor)
            return
        rejection = self._rejection(rq, requestor)
        if rejection is not None:
            writer.write(pdu.encode_associate_rj(*rejection))
            await writer.drain()
            return
        negotiated = self._negotiate(rq)
        writer.write(pdu.encode_associate_ac(
            rq, negotiated.results, self.acceptance.max_pdu, IMPLEMENTATION_CLASS,
            IMPLEMENTATION_VERSION,
        ))  # fmt: skip
        self._associations += 1
        association = Association(
            requestor, negotiated, reader, writer, self.handler, self.acceptance.max_pdu,
            self.acceptance.timeout,
        )  # fmt: skip
        try:
            await association.serve()
        finally:
            self._associations -= 1
            await association.end()

    def _serves(self, rq: pdu.AssociateRq) -> bool:
        if rq.roles or rq.user_identity or rq.extended_negotiation:
            return False
        return all(c.abstract_syntax in self.acceptance.syntaxes for c in rq.contexts)

    def _rejection(self, rq: pdu.AssociateRq, requestor: Requestor) -> tuple[int, int, int] | None:
        """A-ASSOCIATE-RJ (result, source, reason) as pynetdicom gives them, or None."""
        if not rq.protocol_version & 0x0001:
            return pdu.REJECTED_PERMANENT, pdu.SOURCE_ACSE, pdu.REASON_PROTOCOL_VERSION
        if rq.application_context != pdu.APPLICATION_CONTEXT:
            return pdu.REJECTED_PERMANENT, pdu.SOURCE_SERVICE_USER, pdu.REASON_APPLICATION_CONTEXT
        allowed = self.acceptance.allowed
        if allowed is not None and rq.calling_ae not in allowed:
            log.warning(
                "DICOM association from %s rejected: calling AE %r is not a --dicom-peer",
                requestor.address, rq.calling_ae,
            )  # fmt: skip
            return pdu.REJECTED_PERMANENT, pdu.SOURCE_SERVICE_USER, pdu.REASON_CALLING_AE
        if self._associations >= self.acceptance.max_associations:
            return pdu.REJECTED_TRANSIENT, pdu.SOURCE_PRESENTATION, pdu.REASON_LOCAL_LIMIT
        return None

    def _negotiate(self, rq: pdu.AssociateRq) -> Negotiated:
        """Each context: its abstract syntax served and the first of our transfer syntaxes the
        requestor proposed (our order of preference, as pynetdicom negotiates), else the reason
        it is refused (PS3.8 9.3.3.2)."""
        negotiated = Negotiated()
        for context in rq.contexts:
            supported = self.acceptance.syntaxes.get(context.abstract_syntax)
            proposed = context.transfer_syntaxes[0] if context.transfer_syntaxes else ""
            if supported is None:
                result, syntax = pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, proposed
            else:
                syntax = next((ts for ts in supported if ts in context.transfer_syntaxes), "")
                result = pdu.ACCEPTANCE if syntax else pdu.TRANSFER_SYNTAXES_NOT_SUPPORTED
                syntax = syntax or proposed
            negotiated.results.append((context.id, result, syntax))
            if result == pdu.ACCEPTANCE:
                negotiated.accepted[context.id] = (context.abstract_syntax, syntax)
        negotiated.peer_max_pdu = rq.max_length
        return negotiated

    async def _relay(
        self,
        address: tuple[str, int],
        first: bytes,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        requestor: Requestor,
    ) -> None:
        up_reader, up_writer = await asyncio.open_connection(*address, limit=RELAY_CHUNK)
        local = int(up_writer.get_extra_info("sockname")[1])
        self.relayed[local] = requestor.address
        try:
            up_writer.write(first)
            await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))
        finally:
            self.relayed.pop(local, None)
            up_writer.close()


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until the source ends, then close the sink (which ends the other direction)."""
    try:
        while chunk := await source.read(RELAY_CHUNK):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        sink.close()
