"""The composition root: the only place that names concrete adapters and registers hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fhir_server import __version__
from fhir_server.api.app import HttpApp, create_app
from fhir_server.api.hl7_admin import Hl7AdminApi
from fhir_server.audit.trail import AuditTrail
from fhir_server.auth.server.demo import seed_demo
from fhir_server.auth.server.routes import AuthRoutes
from fhir_server.auth.server.smart import SmartAuth
from fhir_server.auth.tokens import ExternalIssuer
from fhir_server.bootstrap_dicom import DicomDoor, make_dicom
from fhir_server.conformance import Conformance
from fhir_server.core import heap
from fhir_server.core.clock import Clock, system_clock
from fhir_server.core.ids import IdFactory, new_id
from fhir_server.core.urls import without_credentials
from fhir_server.dicom.node import DicomNode
from fhir_server.events.hooks import Hooks
from fhir_server.events.relay import OutboxRelay
from fhir_server.hl7v2.audit import Hl7Audit
from fhir_server.hl7v2.er7 import Message
from fhir_server.hl7v2.inbound import OrderMapper
from fhir_server.hl7v2.listener import MllpListener, tls_context
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.results import HOOK_NAME as HL7_RESULTS
from fhir_server.hl7v2.results import ResultsHook
from fhir_server.hl7v2.sender import ResultSender, parse_destinations
from fhir_server.hl7v2.senders import SenderConfig, Senders
from fhir_server.hl7v2.worker import InboundWorker, Outcome
from fhir_server.imaging.service import ImagingService
from fhir_server.interactions.capabilities import Software
from fhir_server.interactions.conformance_sync import ConformanceSync, local_content
from fhir_server.interactions.pipeline import WritePipeline
from fhir_server.interactions.service import FhirService
from fhir_server.messaging.log import MessageLog
from fhir_server.operations.build import build_operations
from fhir_server.operations.validate import validate_operation
from fhir_server.search.extract import Indexer
from fhir_server.search.registry import SearchRegistry
from fhir_server.settings import (
    Settings,
    default_conformance_dirs,
    default_validation_rules,
    is_mongodb_url,
)
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from fhir_server.storage.port import ResourceStore, StoreConfigurationError
from fhir_server.storage.sqlite import SqliteStore
from fhir_server.terminology import TerminologyService
from fhir_server.validation.profiles import ProfileValidator
from fhir_server.validation.rules import RuleSet

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Application:
    """The object graph of one server; ``start``/``stop`` run in the app's lifespan."""

    settings: Settings
    store: ResourceStore
    blobs: BlobStore  # DICOM instances, attachments: beside the resources, on the same backend
    hooks: Hooks
    relay: OutboxRelay
    service: FhirService
    audit: AuditTrail
    smart: SmartAuth | None = None  # None with --auth off
    conformance: ConformanceSync | None = None
    validator: ProfileValidator | None = None
    messages: MessageLog | None = None  # the HL7 v2 message log (admin API, listener, worker)
    mllp: MllpListener | None = None  # None with --mllp-port 0
    hl7_worker: InboundWorker | None = None  # maps received HL7 v2 messages (crash recovery)
    hl7_sender: ResultSender | None = None  # ORU^R01 out (None without --hl7-destination)
    imaging: ImagingService | None = None  # the imaging ingest (DIMSE and DICOMweb)
    dicom: DicomNode | None = None  # the DIMSE node (None with --dicom-port 0)
    dicom_door: DicomDoor | None = None
    #: Tune the garbage collector once started (:mod:`fhir_server.core.heap`): the server
    #: process sets it (``serve``), code embedding the application keeps its own settings.
    settle_heap: bool = False

    async def start(self) -> None:
        try:
            await self.store.open()
        except StoreConfigurationError as exc:
            log.critical("the store cannot be opened: %s", exc)
            raise
        await self.blobs.open()
        if self.conformance is not None:
            await self.conformance.start()
        if self.validator is not None:
            self.validator.check_configuration()
        if self.smart is not None:
            await self.smart.start()
            if self.settings.demo:
                settings = self.settings
                base = settings.base_url or f"http://{settings.host}:{settings.port}/fhir"
                await seed_demo(self.smart, settings.data_dir, base)
        await self.relay.start()
        await self.audit.start()
        if self.hl7_worker is not None:
            await self.hl7_worker.start()
        if self.hl7_sender is not None:
            await self.hl7_sender.start()
        if self.mllp is not None:
            await self.mllp.start()
        if self.dicom_door is not None:
            await self.dicom_door.start()
        log.info("FHIR store ready: %s", describe_store(self.settings))
        if self.settle_heap:
            heap.settle()

    def wake_hl7_worker(self) -> None:
        """A message was replayed or received: the inbound worker looks now, not at its poll."""
        if self.hl7_worker is not None:
            self.hl7_worker.wake()

    async def stop(self) -> None:
        if self.dicom_door is not None:
            await self.dicom_door.stop()
        if self.mllp is not None:
            await self.mllp.stop()
        if self.hl7_worker is not None:
            await self.hl7_worker.stop()
        if self.hl7_sender is not None:
            await self.hl7_sender.stop()
        if self.smart is not None:
            await self.smart.stop()
        await self.audit.stop()
        await self.relay.stop()
        await self.blobs.close()
        await self.store.close()


def make_store(
    location: str | None, data_dir: Path, *, synchronous: str = "FULL", clock: Clock = system_clock
) -> ResourceStore:
    """The store ``location`` names: a MongoDB URL, else SQLite in ``data_dir``."""
    if is_mongodb_url(location):
        assert location is not None
        from fhir_server.storage.mongo.store import MongoStore  # pymongo only when asked for

        return MongoStore(location, clock=clock)
    return SqliteStore(data_dir, synchronous=synchronous.upper(), clock=clock)


def make_blob_store(location: str | None, data_dir: Path, store: ResourceStore) -> BlobStore:
    """Blobs where the resources are: GridFS in the MongoDB database of ``store`` (sharing its
    client), else files under ``data_dir/blobs``, the small ones as rows of the SQLite
    store's database written by its writer (so that a DICOM instance's bytes commit with its
    record) when that store's commits are durable (``synchronous`` FULL or EXTRA); else rows
    of a database of their own (filesystem_blobs.py)."""
    if is_mongodb_url(location):
        from fhir_server.storage.mongo.blobs import GridFSBlobStore
        from fhir_server.storage.mongo.store import MongoStore

        assert isinstance(store, MongoStore)
        return GridFSBlobStore(store.db)
    if isinstance(store, SqliteStore) and store.synchronous in ("FULL", "EXTRA"):
        return FilesystemBlobStore(data_dir / "blobs", database=store.path, jobs=store.jobs)
    return FilesystemBlobStore(data_dir / "blobs")


def describe_store(settings: Settings) -> str:
    """Where the data lives, for people (no password)."""
    if is_mongodb_url(settings.store):
        assert settings.store is not None
        return "MongoDB " + without_credentials(settings.store)
    return f"SQLite in {settings.data_dir.resolve()}"


def conformance_dirs(settings: Settings) -> tuple[Path, ...]:
    if settings.conformance_dirs is not None:
        return settings.conformance_dirs
    return default_conformance_dirs()


def validation_rules(settings: Settings) -> RuleSet:
    """The rule set of ``--validation-rules`` (ValueError when it cannot be read)."""
    chosen = settings.validation_rules
    if chosen is not None and chosen.strip().lower() in ("off", "none", ""):
        return RuleSet()
    path = Path(chosen) if chosen is not None else default_validation_rules()
    return RuleSet.load(path) if path is not None else RuleSet()


def build(
    settings: Settings,
    *,
    hooks: Hooks | None = None,
    clock: Clock = system_clock,
    id_factory: IdFactory = new_id,
    relay_poll_interval: float = 1.0,
) -> Application:
    hooks = hooks or Hooks()
    store = make_store(
        settings.store, settings.data_dir, synchronous=settings.sqlite_synchronous, clock=clock
    )
    registry = SearchRegistry.load()
    indexer = Indexer(registry.params(), registry.compartments())
    conformance = Conformance.overlay(local_content(conformance_dirs(settings)))
    terminology = TerminologyService(conformance)
    validator = ProfileValidator(
        conformance, terminology, core_invariants=settings.core_invariants,
        rules=validation_rules(settings),
    )  # fmt: skip
    pipeline = WritePipeline(
        store,
        hooks,
        validator,
        clock,
        indexer=indexer.index,
        referential_integrity=settings.referential_integrity,
        registry=registry,
    )
    software = Software("fhir-server", __version__, datetime.now(UTC))
    service = FhirService(
        store, pipeline, hooks, clock, id_factory, software, registry=registry, indexer=indexer,
        max_bundle_entries=settings.max_bundle_entries,
    )  # fmt: skip
    blobs = make_blob_store(settings.store, settings.data_dir, store)
    door = make_dicom(settings, service, store.records, blobs, hooks, clock)
    extra = (validate_operation(validator),) + ((door.priors,) if door.priors else ())
    build_operations(service, terminology, clock, extra=extra)
    sync = ConformanceSync(conformance, store)
    sync.register(hooks)
    relay = OutboxRelay(store, hooks, clock=clock, poll_interval=relay_poll_interval)
    audit = AuditTrail(service, clock, base_url=settings.base_url or "", observer="fhir-server")
    audit.register(hooks)
    smart = None
    if settings.auth == "smart":
        external: tuple[ExternalIssuer, ...] = ()
        if settings.external_issuer and settings.external_jwks_url:
            external = (
                ExternalIssuer(
                    settings.external_issuer, settings.external_jwks_url,
                    settings.external_audience,
                ),
            )  # fmt: skip
        smart = SmartAuth(
            store.records, service, hooks, clock, base_url=settings.base_url, external=external,
            port=settings.port,
        )  # fmt: skip
        service.security = smart.capability_security
    application = Application(
        settings, store, blobs, hooks, relay, service, audit, smart, sync, validator
    )
    application.messages = MessageLog(store.records, clock)
    application.imaging, application.dicom, application.dicom_door = door.imaging, door.node, door
    base = (settings.base_url or f"http://{settings.host}:{settings.port}/fhir").rstrip("/")
    hl7_audit = Hl7Audit(hooks, enabled=settings.auth != "off", base_url=base)
    application.mllp = make_mllp(
        settings, application.messages, clock, on_received=application.wake_hl7_worker,
        audit=hl7_audit,
    )  # fmt: skip
    application.hl7_worker = make_hl7_worker(settings, application.messages, service)
    application.hl7_sender = make_hl7_results(
        settings, application.messages, service, clock, audit=hl7_audit
    )
    return application


def hl7_senders(settings: Settings) -> Senders:
    """The MLLP allow-list (--hl7-sender); with --auth off any sender is accepted."""
    return Senders.from_specs(settings.hl7_senders, accept_any=settings.auth == "off")


def make_hl7_worker(
    settings: Settings, messages: MessageLog, service: FhirService
) -> InboundWorker | None:
    """The inbound worker (maps received HL7 v2 messages; None with --mllp-port 0)."""
    if settings.mllp_port == 0:
        return None
    mapper = OrderMapper(V2Tables.load(settings.hl7_mappings), ZoneInfo(settings.hl7_timezone))
    senders = hl7_senders(settings)

    async def process(messages: Sequence[Message], sender: SenderConfig) -> list[Outcome]:
        return await mapper.process_many(messages, sender, service)

    return InboundWorker(messages, senders, process, delay=settings.hl7_worker_delay)


def make_hl7_results(
    settings: Settings,
    messages: MessageLog,
    service: FhirService,
    clock: Clock,
    audit: Hl7Audit | None = None,
) -> ResultSender | None:
    """ORU^R01 out: the POST_COMMIT hook "hl7v2-results" and the per-destination sender
    (None, and no hook, without --hl7-destination)."""
    destinations = parse_destinations(settings.hl7_destinations)
    if not destinations:
        return None
    sender = ResultSender(
        messages, destinations, ack_timeout=settings.hl7_ack_timeout,
        retry_initial=settings.hl7_retry_initial, retry_max=settings.hl7_retry_max, audit=audit,
    )  # fmt: skip
    tables = V2Tables.load(settings.hl7_mappings)
    hook = ResultsHook(
        service, messages, hl7_senders(settings), destinations, tables, clock,
        notify=sender.notify,
    )  # fmt: skip
    service.hooks.on_post_commit(HL7_RESULTS, hook)
    return sender


def make_mllp(
    settings: Settings,
    messages: MessageLog,
    clock: Clock,
    *,
    on_received: Callable[[], None] | None = None,
    audit: Hl7Audit | None = None,
) -> MllpListener | None:
    """The HL7 v2 door's listener (None with --mllp-port 0)."""
    if settings.mllp_port == 0:
        return None
    senders = hl7_senders(settings)
    if settings.auth != "off" and not len(senders):
        log.warning("MLLP: no --hl7-sender configured: every HL7 v2 message will be rejected")
    tls = None
    if settings.mllp_tls_cert is not None and settings.mllp_tls_key is not None:
        tls = tls_context(str(settings.mllp_tls_cert), str(settings.mllp_tls_key))
    return MllpListener(
        messages, senders, clock, host=settings.mllp_host or settings.host,
        port=settings.mllp_port, read_timeout=settings.mllp_read_timeout,
        max_message_bytes=settings.mllp_max_message_bytes, ssl_context=tls,
        on_received=on_received, audit=audit,
    )  # fmt: skip


def make_app(application: Application) -> HttpApp:
    """The HTTP application: the FHIR REST door, and the SMART authorization server's routes
    when authorization is on."""
    settings = application.settings
    smart = application.smart
    admin = []
    if application.messages is not None:  # the HL7 v2 message log: /admin/hl7/messages
        admin = Hl7AdminApi(
            application.messages, None if smart is None else smart.authenticate,
            on_replay=application.wake_hl7_worker,
        ).routes()  # fmt: skip
    imaging = getattr(application, "imaging", None)  # the DICOMweb door: /dicomweb
    if imaging is not None:
        from fhir_server.api.dicomweb import DicomWebApi
        from fhir_server.imaging.query import StudyQuery
        from fhir_server.imaging.wado import Retrieval

        records = application.store.records
        admin += DicomWebApi(
            imaging, StudyQuery(records), Retrieval(records, application.blobs),
            None if smart is None else smart.authenticate, base_url=settings.base_url,
            max_body_bytes=settings.max_body_bytes,
        ).routes()  # fmt: skip
    if smart is None:
        return create_app(
            application.service, application, base_url=settings.base_url,
            max_body_bytes=settings.max_body_bytes, routes=admin,
        )  # fmt: skip
    routes = AuthRoutes(smart).routes()
    first = [r for r in routes if getattr(r, "path", "").startswith("/fhir/")]
    rest = [r for r in routes if r not in first]
    return create_app(
        application.service, application, base_url=settings.base_url,
        max_body_bytes=settings.max_body_bytes, authenticate=smart.authenticate,
        first_routes=first, routes=[*rest, *admin], cors_origins=smart.registered_origins,
    )  # fmt: skip
