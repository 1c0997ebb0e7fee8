"""Outgoing (SCU) associations: the remote PACS, storage-commitment reports, C-GET.

Every outgoing socket gets TCP_NODELAY (without it small DIMSE messages wait for delayed ACKs:
about 10 instead of 130 C-STOREs a second), through an EVT_CONN_OPEN handler; the maximum PDU is
1 MiB, and identifiers are kept out of pynetdicom's logs (no PHI in logs). A peer written
``AE@host:port;tls`` is reached over TLS 1.2+ (the peer's certificate verified against
``--dicom-tls-ca``, else the system's CAs, and its host name or IP checked; our
``--dicom-tls-cert`` presented when the peer asks for one).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pynetdicom import AE, _config, evt
from pynetdicom.association import Association

T = TypeVar("T")
MAX_PDU = 1024 * 1024

# SOP classes (PS3.4; pynetdicom's sop_class names are generated at run time, untyped).
MODALITY_WORKLIST_FIND = "1.2.840.10008.5.1.4.31"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
STORAGE_COMMITMENT_PUSH = "1.2.840.10008.1.20.1"
STORAGE_COMMITMENT_PUSH_INSTANCE = "1.2.840.10008.1.20.1.1"


class Bridge(Protocol):
    """What a DIMSE handler needs of the loop bridge (fhir_server/dicom/bridge.py LoopBridge)."""

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = ...) -> T: ...


class AssociationFailed(RuntimeError):
    """The peer could not be reached or rejected the association."""


@dataclass(frozen=True, slots=True)
class RemoteAe:
    """A DICOM peer: AE title, host and port (``AE@host:port``, ``;tls`` to reach it over
    TLS); ``context``: the client TLS context bootstrap gives to a TLS peer."""

    ae_title: str
    host: str
    port: int
    tls: bool = False
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> RemoteAe:
        spec, semicolon, option = text.partition(";")
        ae_title, at, address = spec.partition("@")
        host, colon, port = address.rpartition(":")
        if not (at and colon and ae_title and host and port.isdigit()) or len(ae_title) > 16:
            raise ValueError(f"a DICOM peer must be AE@host:port[;tls], not {text!r}")
        if semicolon and option.strip().lower() != "tls":
            raise ValueError(f"{text!r}: the only option after ';' is tls")
        return cls(ae_title, host, int(port), tls=bool(semicolon))

    def secured(self, context: ssl.SSLContext | None) -> RemoteAe:
        """This peer with the client TLS context (kept only when the peer asks for TLS)."""
        return replace(self, context=context) if self.tls else self

    def tls_args(self) -> tuple[ssl.SSLContext, str] | None:
        """pynetdicom's ``tls_args`` for this peer; AssociationFailed when it asks for TLS
        and no client context was given."""
        if not self.tls:
            return None
        if self.context is None:
            raise AssociationFailed(f"{self}: TLS is asked for but no client TLS context is set")
        return self.context, self.host

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (";tls" if self.tls else "")


def client_tls_context(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """The context of the node's outgoing TLS associations: TLS 1.2+, the peer's certificate
    verified against ``ca`` (else the system's CAs) with its host name or IP, ``cert``/``key``
    presented to peers that ask for a client certificate."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None and key is not None:
        context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True, slots=True)
class Peer:
    """One AE allow-list entry: ``AE=Organization/<id>[@host:port]`` (--dicom-peer)."""

    ae_title: str
    organization: str
    address: RemoteAe | None

    @classmethod
    def parse(cls, text: str) -> Peer:
        ae_title, eq, rest = text.partition("=")
        organization, at, address = rest.partition("@")
        if not (eq and ae_title.strip() and organization.startswith("Organization/")):
            raise ValueError(
                f"a DICOM peer must be AE=Organization/<id>[@host:port[;tls]], not {text!r}"
            )
        ae_title = ae_title.strip()
        remote = RemoteAe.parse(f"{ae_title}@{address}") if at else None
        return cls(ae_title, organization, remote)


def peer_table(specs: Sequence[str]) -> dict[str, Peer]:
    """The --dicom-peer entries by AE title."""
    return {peer.ae_title: peer for peer in map(Peer.parse, specs)}


def nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler: TCP_NODELAY on the association's socket."""
    transport = event.assoc.dul.socket
    sock = transport.socket if transport is not None else None
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client_ae(ae_title: str, timeout: float = 30.0) -> AE:
    """An AE for outgoing associations, with this module's socket and logging settings."""
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    ae = AE(ae_title=ae_title)
    ae.maximum_pdu_size = MAX_PDU
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    return ae


def associate(
    ae: AE,
    remote: RemoteAe,
    *,
    ext_neg: Sequence[Any] | None = None,
    handlers: Sequence[tuple[Any, Callable[..., Any]]] = (),
) -> Association:
    """An established association to ``remote`` (TCP_NODELAY set), else AssociationFailed."""
    assoc = ae.associate(
        remote.host,
        remote.port,
        ae_title=remote.ae_title,
        ext_neg=list(ext_neg) if ext_neg else None,
        evt_handlers=[(evt.EVT_CONN_OPEN, nodelay), *handlers],
        tls_args=remote.tls_args(),
    )
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "failed"
        raise AssociationFailed(f"association to {remote} {reason}")
    return assoc
