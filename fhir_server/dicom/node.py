"""The DIMSE node: the public DICOM port is an asyncio Upper Layer acceptor (dicom/ul) that
serves storage associations (C-STORE, C-ECHO) itself, on the server loop, and relays every other
association to one pynetdicom AE listening on a loopback-only port: Verification, Query/Retrieve
(C-FIND/worklist, C-MOVE/C-GET) and storage commitment, each a DimseService giving its contexts
and handlers. TCP_NODELAY on every socket, an AE allow-list (--dicom-peer) when authorization is
on (applied by the acceptor and again by the AE), and optional TLS (ended at the acceptor).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, _config, evt
from pynetdicom.transport import ThreadedAssociationServer

from fhir_server.dicom.scu import MAX_PDU, nodelay
from fhir_server.dicom.ul.acceptor import Acceptance, StorageHandler, UpperLayerServer
from fhir_server.dicom.ul.dimse import VERIFICATION

log = logging.getLogger(__name__)

TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian, JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1,
    JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000, RLELossless,
]  # fmt: skip


DEFAULT_SYNTAXES = [
    ImplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
]


LOOPBACK = "127.0.0.1"


class StorageDoor(StorageHandler, Protocol):
    """The storage service: C-STOREs of the acceptor's associations and, for relayed ones,
    pynetdicom handlers."""

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]: ...


class DimseService(Protocol):
    def contexts(self) -> list[tuple[str, list[str] | None, bool, bool]]: ...

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]: ...


@dataclass(frozen=True, slots=True)
class NodeConfig:
    ae_title: str
    host: str
    port: int
    allowed: tuple[str, ...] | None  # None: any calling AE (--auth off)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    timeout: float = 60.0


class DicomNode:
    """The acceptor on the public port and the relayed pynetdicom AE, started by :meth:`start`
    on the server loop. ``relayed`` maps each relayed connection's local port to the real peer's
    address (the AE's handlers and audit see the relay's loopback address otherwise)."""

    def __init__(
        self,
        config: NodeConfig,
        storage: StorageDoor,
        services: Sequence[Any] = (),
        relayed: dict[int, str] | None = None,
    ) -> None:
        self.config = config
        self.storage = storage
        self.services = list(services)
        self.relayed: dict[int, str] = {} if relayed is None else relayed
        self._server: ThreadedAssociationServer | None = None
        self._acceptor: UpperLayerServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        if self._acceptor is None:
            return self.config.port
        return self._acceptor.bound_port

    def _ae(self) -> AE:
        _config.LOG_REQUEST_IDENTIFIERS = False
        _config.LOG_RESPONSE_IDENTIFIERS = False
        ae = AE(ae_title=self.config.ae_title)
        ae.maximum_pdu_size = MAX_PDU
        ae.acse_timeout = self.config.timeout
        ae.dimse_timeout = self.config.timeout
        ae.network_timeout = self.config.timeout
        ae.maximum_associations = 32
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(str(cx.abstract_syntax), TRANSFER_SYNTAXES)
        ae.add_supported_context(VERIFICATION, DEFAULT_SYNTAXES)
        for service in self.services:
            for uid, syntaxes, scu_role, scp_role in service.contexts():
                roles = scu_role or scp_role
                ae.add_supported_context(
                    uid, syntaxes or DEFAULT_SYNTAXES,
                    scu_role=scu_role if roles else None, scp_role=scp_role if roles else None,
                )  # fmt: skip
        if self.config.allowed is not None:
            ae.require_calling_aet = list(self.config.allowed) or [_no_peer()]
        return ae

    def _acceptance(self) -> Acceptance:
        """What the acceptor serves itself: the storage SOP classes and Verification."""
        syntaxes = {str(cx.abstract_syntax): tuple(str(ts) for ts in TRANSFER_SYNTAXES)
                    for cx in AllStoragePresentationContexts}  # fmt: skip
        syntaxes[VERIFICATION] = tuple(str(ts) for ts in DEFAULT_SYNTAXES)
        allowed = self.config.allowed
        return Acceptance(
            syntaxes, None if allowed is None else frozenset(allowed), MAX_PDU,
            timeout=self.config.timeout,
        )  # fmt: skip

    def _ssl(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def _on_requested(self, event: evt.Event) -> None:
        """Only the acceptor's relay reaches the AE (its port is on the loopback interface)."""
        requestor = event.assoc.requestor
        address = self.relayed.get(int(requestor.port))
        if address is None:
            log.warning("DICOM: a connection to the relayed AE did not come through the relay")
            event.assoc.abort()
            return
        allowed = self.config.allowed
        ae = str(requestor.ae_title).strip()
        if allowed is not None and ae not in allowed:
            log.warning(
                "DICOM association from %s rejected: calling AE %r is not a --dicom-peer",
                address, ae,
            )  # fmt: skip

    def _start_relayed(self) -> ThreadedAssociationServer:
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, nodelay),
            (evt.EVT_REQUESTED, self._on_requested),
        ]
        handlers += self.storage.handlers()
        for service in self.services:
            handlers += service.handlers()
        server = self._ae().start_server((LOOPBACK, 0), block=False, evt_handlers=handlers)
        assert server is not None  # block=False returns the running server
        return server

    async def start(self) -> None:
        if self.config.allowed is not None and not self.config.allowed:
            log.warning("DICOM node: no --dicom-peer is configured: every association is rejected")
        self._server = server = await asyncio.to_thread(self._start_relayed)
        relay = (LOOPBACK, int(server.server_address[1]))
        self._acceptor = UpperLayerServer(
            self.config.host, self.config.port, self._acceptance(), self.storage,
            tls=self._ssl(), relay=lambda: relay, relayed=self.relayed,
        )  # fmt: skip
        try:
            await self._acceptor.start()
        except BaseException:
            self._acceptor = None
            await asyncio.to_thread(server.shutdown)
            raise
        log.info(
            "DICOM node %s listening on %s:%d", self.config.ae_title, self.config.host, self.port
        )

    async def stop(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            await acceptor.stop()
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)


def _no_peer() -> str:
    """An allow-list entry no peer can know (an empty list would let every AE in, and
    pynetdicom refuses AE titles that are not valid): random, never logged or shown."""
    return "NOPEER" + secrets.token_hex(5)
