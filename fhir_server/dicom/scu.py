"""Outgoing (SCU) associations: the remote PACS, storage-commitment reports, C-GET.

Every outgoing socket gets TCP_NODELAY (without it small DIMSE messages wait for delayed ACKs:
about 10 instead of 130 C-STOREs a second), through an EVT_CONN_OPEN handler; the maximum PDU is
1 MiB, and identifiers are kept out of pynetdicom's logs (no PHI in logs).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
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
    """A DICOM peer: AE title, host and port (``AE@host:port``)."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> RemoteAe:
        ae_title, at, address = text.partition("@")
        host, colon, port = address.rpartition(":")
        if not (at and colon and ae_title and host and port.isdigit()) or len(ae_title) > 16:
            raise ValueError(f"a DICOM peer must be AE@host:port, not {text!r}")
        return cls(ae_title, host, int(port))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


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
            raise ValueError(f"a DICOM peer must be AE=Organization/<id>[@host:port], not {text!r}")
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
    )
    if not assoc.is_established:
        reason = "rejected" if assoc.is_rejected else "aborted" if assoc.is_aborted else "failed"
        raise AssociationFailed(f"association to {remote} {reason}")
    return assoc
