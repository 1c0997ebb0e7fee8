"""Building the DIMSE services of this package from settings (called by bootstrap, the
composition root, which passes the concrete ImagingService, loop bridge and Sender type).

- :func:`query_services`: the C-FIND/worklist and storage-commitment services for DicomNode;
- :func:`priors_operation`: the priors fetcher for ``--dicom-remote`` (its POST_COMMIT hook
  registered with ``--dicom-priors auto``) and its ``ImagingStudy/$fetch-priors`` row.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

from fhir_server.core.context import RequestContext
from fhir_server.dicom.audit import DimseAudit
from fhir_server.dicom.commitment import CommitmentService
from fhir_server.dicom.find import FindService, Query
from fhir_server.dicom.priors import PriorsScu
from fhir_server.dicom.scu import Bridge, Peer, RemoteAe, peer_table
from fhir_server.events.hooks import Hooks
from fhir_server.imaging.priors import Priors
from fhir_server.interactions.service import FhirService
from fhir_server.operations.priors import fetch_priors_operation
from fhir_server.operations.table import OperationDef
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore

STORE_TIMEOUT = 120.0


class Ingest(Protocol):
    """What these services use of the ImagingService."""

    async def store_part10(self, part10: bytes, sender: Any) -> Any: ...

    async def flush(self, study_uid: str | None = None) -> None: ...

    async def settle(self, studies: Iterable[str]) -> None: ...


class Peers:
    """The --dicom-peer allow-list as these services ask it."""

    def __init__(
        self, specs: tuple[str, ...] | list[str], tls: ssl.SSLContext | None = None
    ) -> None:
        self.table: dict[str, Peer] = {
            ae: replace(peer, address=peer.address.secured(tls) if peer.address else None)
            for ae, peer in peer_table(specs).items()
        }
        self.tls = tls

    def organization(self, ae_title: str) -> str | None:
        peer = self.table.get(ae_title)
        return peer.organization if peer is not None else None

    def address(self, ae_title: str) -> RemoteAe | None:
        peer = self.table.get(ae_title)
        return peer.address if peer is not None else None

    def context(self, ae_title: str) -> RequestContext:
        return RequestContext(channel="dicom", organization=self.organization(ae_title))


def query_services(
    ae_title: str,
    fhir: FhirService,
    records: RecordStore,
    blobs: BlobStore,
    bridge: Bridge,
    ingest: Ingest,
    query: Query | None,
    peers: Peers,
    audit: DimseAudit | None = None,
) -> list[FindService | CommitmentService]:
    find = FindService(fhir, bridge, query, peers.context, audit=audit)
    commitment = CommitmentService(
        fhir, records, blobs, bridge, ae_title=ae_title, context=peers.context,
        organization=peers.organization, peer=peers.address, flush=_flush(ingest),
    )  # fmt: skip
    return [find, commitment]


def priors_operation(
    ae_title: str,
    remote_spec: str | None,
    mode: str,
    retrieve: str,
    fhir: FhirService,
    records: RecordStore,
    hooks: Hooks,
    bridge: Bridge,
    ingest: Ingest,
    sender: Callable[[str | None, str | None, str], Any],
    peers: Peers,
) -> tuple[OperationDef, Priors] | None:
    """The $fetch-priors operation and the fetcher behind it (to close at stop: it may run
    background fetches). ``remote_spec``: --dicom-remote; ``mode``: --dicom-priors;
    ``retrieve``: --dicom-retrieve. None unless a remote is set and priors are not off."""
    if remote_spec is None or mode == "off":
        return None
    remote = RemoteAe.parse(remote_spec).secured(peers.tls)
    origin = sender(remote.ae_title, peers.organization(remote.ae_title), "c-move")

    def store(part10: bytes) -> int:  # a C-GET sub-operation, in the association's thread
        result: Any = bridge.call(ingest.store_part10(part10, origin), timeout=STORE_TIMEOUT)
        return int(result.status)

    scu = PriorsScu(ae_title, remote, retrieve, store)
    priors = Priors(fhir, records, scu, _flush(ingest))
    if mode == "auto":
        hooks.on_post_commit("dicom-priors", priors.on_post_commit)
    return fetch_priors_operation(priors.fetch), priors


def _flush(ingest: Ingest) -> Callable[[str], Awaitable[None]]:
    async def flush(study_uid: str) -> None:
        await ingest.flush(study_uid)

    return flush
