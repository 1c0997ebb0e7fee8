"""POST_COMMIT hook "hl7v2-results": a reported DiagnosticReport on a v2 order → ORU^R01 queued.

For each committed DiagnosticReport version with status final, amended, corrected or appended,
whose ``basedOn`` ServiceRequest carries the ``urn:fhir-server:origin|hl7v2`` tag (set by the
inbound mapping), the ORU^R01 is built and queued in the message log with the idempotency key
``ORU|DiagnosticReport/<id>/_history/<version>|<ServiceRequest id>`` (the outbox retries
nothing twice). Destination: the ``destination`` of the ``--hl7-sender`` entry of the order's
sender (tag ``urn:fhir-server:hl7v2-sender|APP^FACILITY``), else the only
``--hl7-destination`` when exactly one is configured; else the message is logged "failed" with
the reason, for an operator to route and replay.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError
from fhir_server.hl7v2.mapping.order import ORIGIN, SENDER
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.oru import OruParties, build_oru
from fhir_server.hl7v2.sender import Destination
from fhir_server.hl7v2.senders import Senders
from fhir_server.interactions.service import FhirService
from fhir_server.messaging.log import MessageLog
from fhir_server.storage.port import OutboxEvent

HOOK_NAME = "hl7v2-results"
REPORTED = frozenset({"final", "amended", "corrected", "appended"})


class ResultsHook:
    def __init__(
        self,
        service: FhirService,
        messages: MessageLog,
        senders: Senders,
        destinations: Mapping[str, Destination],
        tables: V2Tables,
        clock: Clock,
        notify: Callable[[], None] = lambda: None,
        application: str = "FHIRSERVER",
    ) -> None:
        self.service = service
        self.messages = messages
        self.senders = senders
        self.destinations = destinations
        self.tables = tables
        self.clock = clock
        self.notify = notify
        self.application = application
        self.ctx = RequestContext(channel="hl7v2")

    async def __call__(self, event: OutboxEvent) -> None:
        if event.resource_type != "DiagnosticReport" or event.interaction == "delete":
            return
        report = await self._read("DiagnosticReport", event.id, str(event.version))
        if report is None or report.get("status") not in REPORTED:
            return
        for based_on in report.get("basedOn", []):
            request = await self._follow(based_on)
            if request is None or request.get("resourceType") != "ServiceRequest":
                continue
            tags = request.get("meta", {}).get("tag", [])
            if not any(t.get("system") == ORIGIN and t.get("code") == "hl7v2" for t in tags):
                continue
            sender = next((str(t["code"]) for t in tags if t.get("system") == SENDER), "^")
            await self._queue(event, report, request, sender)

    async def _queue(
        self, event: OutboxEvent, report: dict[str, Any], request: dict[str, Any], sender: str
    ) -> None:
        application, _, facility = sender.partition("^")
        patient = await self._follow(report.get("subject") or request.get("subject") or {})
        interpreter = await self._interpreter(report)
        source = f"DiagnosticReport/{event.id}/_history/{event.version}"
        raw = build_oru(
            report, request, patient, interpreter,
            control_id=uuid.uuid4().hex[:20], timestamp=to_instant(self.clock()),
            parties=OruParties(self.application, "", application, facility), tables=self.tables,
        )  # fmt: skip
        destination, problem = self._destination(application, facility)
        key = f"ORU|{source}|{request.get('id', '')}"
        message_id = await self.messages.enqueue_outbound(
            destination or "", raw, key=key, source=source
        )
        if problem is not None:
            record = await self.messages.get(message_id)
            if record is not None and record["state"] == "queued":
                error = {"segment": None, "field": None, "code": "no-destination", "text": problem}
                await self.messages.mark(message_id, "failed", error=error)
            return
        self.notify()

    def _destination(self, application: str, facility: str) -> tuple[str | None, str | None]:
        config = self.senders.resolve(application, facility)
        wanted = config.destination if config is not None else None
        if wanted is not None:
            if wanted in self.destinations:
                return wanted, None
            return (
                None,
                f"--hl7-sender {application} names destination {wanted!r}, "
                "which no --hl7-destination defines",
            )
        if len(self.destinations) == 1:
            return next(iter(self.destinations)), None
        return None, (
            f"no destination for results of {application}^{facility}: give its --hl7-sender "
            f"entry ;destination=NAME ({len(self.destinations)} destinations are configured)"
        )

    async def _interpreter(self, report: dict[str, Any]) -> dict[str, Any] | None:
        for ref in report.get("resultsInterpreter", []):
            found = await self._follow(ref)
            if found is not None and found.get("resourceType") == "PractitionerRole":
                found = await self._follow(found.get("practitioner") or {})
            if found is not None and found.get("resourceType") == "Practitioner":
                return found
        return None

    async def _follow(self, reference: Any) -> dict[str, Any] | None:
        text = str(reference.get("reference", "")) if isinstance(reference, dict) else ""
        parts = text.split("/_history/")[0].split("/")
        if len(parts) < 2:
            return None
        return await self._read(parts[-2], parts[-1])

    async def _read(
        self, type_: str, id_: str, version: str | None = None
    ) -> dict[str, Any] | None:
        try:
            if version is None:
                shown = await self.service.read(self.ctx, type_, id_)
            else:
                shown = await self.service.vread(self.ctx, type_, id_, version)
        except FhirError:
            return None
        found: dict[str, Any] = json.loads(shown.body)
        return found
