"""Composition of the DICOM door: the imaging ingest (always: DICOMweb uses it), the DIMSE
node (None with --dicom-port 0) and the priors operation. Called by bootstrap.build()."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

from fhir_server.core.clock import Clock
from fhir_server.dicom.assembly import Peers, priors_operation, query_services
from fhir_server.dicom.audit import DimseAudit
from fhir_server.dicom.bridge import LoopBridge
from fhir_server.dicom.node import DicomNode, NodeConfig
from fhir_server.dicom.retrieve import RetrieveService
from fhir_server.dicom.scu import RemoteAe, client_tls_context, peer_table
from fhir_server.dicom.storage import StorageService
from fhir_server.events.hooks import Hooks
from fhir_server.imaging.gate import GatePolicy
from fhir_server.imaging.priors import Priors
from fhir_server.imaging.query import StudyQuery
from fhir_server.imaging.service import ImagingService
from fhir_server.imaging.store_result import Sender
from fhir_server.interactions.service import FhirService
from fhir_server.operations.table import OperationDef
from fhir_server.settings import Settings
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore


class _DeferredBridge:
    """A LoopBridge bound to the server loop when the node starts (build() has no loop)."""

    def __init__(self) -> None:
        self.bridge: LoopBridge | None = None

    def bind(self) -> None:
        self.bridge = LoopBridge(asyncio.get_running_loop())

    def call(self, coroutine: Any, timeout: float = 60.0) -> Any:
        if self.bridge is None:
            coroutine.close()
            raise RuntimeError("the DICOM bridge is not bound to the server loop yet")
        return self.bridge.call(coroutine, timeout)


@dataclass
class DicomDoor:
    imaging: ImagingService
    node: DicomNode | None
    priors: OperationDef | None
    bridge: _DeferredBridge
    fetcher: Priors | None = None

    async def start(self) -> None:
        """After the store and blobs are open: the ingest, then the node last."""
        self.bridge.bind()
        await self.imaging.start()
        if self.node is not None:
            await self.node.start()

    async def stop(self) -> None:
        """Background prior fetches first, the node next (no new instances), then the ingest
        (flushes pending studies)."""
        if self.fetcher is not None:
            await self.fetcher.close()
        if self.node is not None:
            await self.node.stop()
        await self.imaging.stop()


def _client_tls(settings: Settings) -> ssl.SSLContext | None:
    """The context of outgoing TLS associations, when a peer or the remote asks for TLS."""
    remotes = [peer.address for peer in peer_table(settings.dicom_peers).values()]
    if settings.dicom_remote is not None:
        remotes.append(RemoteAe.parse(settings.dicom_remote))
    if not any(remote is not None and remote.tls for remote in remotes):
        return None
    return client_tls_context(
        settings.dicom_tls_ca, settings.dicom_tls_cert, settings.dicom_tls_key
    )


def make_dicom(
    settings: Settings,
    service: FhirService,
    records: RecordStore,
    blobs: BlobStore,
    hooks: Hooks,
    clock: Clock,
) -> DicomDoor:
    base = (settings.base_url or f"http://{settings.host}:{settings.port}/fhir").rstrip("/")
    policy = GatePolicy.parse(settings.dicom_gate) if settings.dicom_gate else GatePolicy.default()
    imaging = ImagingService(service, records, blobs, clock, policy=policy, base_url=base)
    bridge = _DeferredBridge()
    peers = Peers(settings.dicom_peers, _client_tls(settings))
    fetching = priors_operation(
        settings.dicom_aet, settings.dicom_remote, settings.dicom_priors, settings.dicom_retrieve,
        service, records, hooks, bridge, imaging, Sender, peers,
    )  # fmt: skip
    node = None
    if settings.dicom_port != 0:
        query = StudyQuery(records, base.rsplit("/fhir", 1)[0] + "/dicomweb")
        relayed: dict[int, str] = {}
        audit = DimseAudit(
            hooks, bridge, peers.organization, enabled=settings.auth != "off", base_url=base,
            relayed=relayed,
        )  # fmt: skip
        services: list[Any] = query_services(
            settings.dicom_aet, service, records, blobs, bridge, imaging, query.search, peers,
            audit,
        )  # fmt: skip
        services.append(
            RetrieveService(records, blobs, bridge, peers.address, imaging.flush, audit)
        )
        services.append(audit)  # its association-end handlers
        storage = StorageService(imaging, bridge, Sender, peers.organization, audit)
        config = NodeConfig(
            ae_title=settings.dicom_aet,
            host=settings.dicom_host or settings.host,
            port=settings.dicom_port,
            allowed=None if settings.auth == "off" else tuple(peers.table),
            tls_cert=settings.dicom_tls_cert,
            tls_key=settings.dicom_tls_key,
        )
        node = DicomNode(config, storage, services, relayed)
    priors, fetcher = fetching if fetching is not None else (None, None)
    return DicomDoor(imaging, node, priors, bridge, fetcher)
