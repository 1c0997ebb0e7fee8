"""The DIMSE node: one pynetdicom AE serving Storage, Verification and the extra services
(C-FIND/worklist, C-MOVE/C-GET, storage commitment: each a DimseService giving its contexts and
handlers), with TCP_NODELAY on every accepted socket, an AE allow-list (--dicom-peer) when
authorization is on, and optional TLS.
"""

from __future__ import annotations

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

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
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


HANDSHAKE_TIMEOUT = 10.0


class _ServerContext(ssl.SSLContext):
    """pynetdicom wraps each accepted socket in its accept loop (AssociationServer.get_request):
    a peer that never finishes the handshake would stall every other peer, and a failed
    handshake would leak the socket. The handshake gets a deadline and a failure closes it."""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT)
            wrapped = super().wrap_socket(sock, *args, **kwargs)
            wrapped.settimeout(None)
            return wrapped
        except OSError:
            sock.close()
            raise


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
    """One AE, started in a background server thread by :meth:`start`."""

    def __init__(
        self,
        config: NodeConfig,
        storage: Any,
        services: Sequence[Any] = (),
    ) -> None:
        self.config = config
        self.storage = storage
        self.services = list(services)
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the one the OS chose for port 0)."""
        if self._server is None:
            return self.config.port
        return int(self._server.server_address[1])

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
        ae.add_supported_context(VERIFICATION)
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

    def _ssl(self) -> ssl.SSLContext | None:
        if self.config.tls_cert is None:
            return None
        context = _ServerContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.config.tls_cert, self.config.tls_key)
        return context

    def _on_requested(self, event: evt.Event) -> None:
        allowed = self.config.allowed
        ae = str(event.assoc.requestor.ae_title).strip()
        if allowed is not None and ae not in allowed:
            log.warning(
                "DICOM association from %s rejected: calling AE %r is not a --dicom-peer",
                event.assoc.requestor.address, ae,
            )  # fmt: skip

    def start(self) -> None:
        if self.config.allowed is not None and not self.config.allowed:
            log.warning("DICOM node: no --dicom-peer is configured: every association is rejected")
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, nodelay),
            (evt.EVT_REQUESTED, self._on_requested),
        ]
        handlers += self.storage.handlers()
        for service in self.services:
            handlers += service.handlers()
        self._server = self._ae().start_server(
            (self.config.host, self.config.port), block=False, evt_handlers=handlers,
            ssl_context=self._ssl(),
        )  # fmt: skip
        log.info(
            "DICOM node %s listening on %s:%d", self.config.ae_title, self.config.host, self.port
        )

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()


def _no_peer() -> str:
    """An allow-list entry no peer can know (an empty list would let every AE in, and
    pynetdicom refuses AE titles that are not valid): random, never logged or shown."""
    return "NOPEER" + secrets.token_hex(5)
