"""ORM^O01 / OMI^O23 → ONE FHIR transaction through FhirService (after the ACK, in the worker).

The transaction holds: the Patient (conditional update on the first PID-3 identifier, with the
sender's assigning-authority → system map), the ordering Practitioner (ORC-12, else OBR-16;
conditional on its identifier), the Encounter of PV1 (conditional on PV1-19 when valued), and
per order (ORC group) a ServiceRequest and a Task, both conditional on the placer order number.
A change, cancel or status change (anything but NW) must name an order we already hold: else
V2Error 204. Without an OBR such a message only changes the status of the stored order. Every
resource the mapping writes carries ``meta.tag`` ``urn:fhir-server:origin|hl7v2`` and
``urn:fhir-server:hl7v2-sender|APP^FACILITY`` (MSH-3.1^MSH-4.1): the results hook finds the
destination of an order's ORU^R01 through the latter. All or nothing: a failure raises V2Error
(reject=False) and nothing is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Sequence
from datetime import UTC, tzinfo
from typing import Any

import orjson

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError
from fhir_server.core.ids import random_uuid
from fhir_server.hl7v2.er7 import Message
from fhir_server.hl7v2.errors import (
    APPLICATION_INTERNAL_ERROR,
    UNKNOWN_KEY_IDENTIFIER,
    V2Error,
)
from fhir_server.hl7v2.mapping.batch import merge
from fhir_server.hl7v2.mapping.datatypes import (
    display_name,
    local_system,
    practitioner_parts,
    search_token,
    token_value,
)
from fhir_server.hl7v2.mapping.dates import dtm_to_fhir
from fhir_server.hl7v2.mapping.order import (
    Order,
    OrderRefs,
    orders,
    origin_tags,
    placer_identifier,
    service_request,
    statuses,
    task,
)
from fhir_server.hl7v2.mapping.patient import encounter, patient
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.senders import SenderConfig
from fhir_server.interactions.service import FhirService

CHANNEL = "hl7v2"


class OrderMapper:
    """The mapping, with its tables and the senders' time zone (``--hl7-timezone``)."""

    def __init__(self, tables: V2Tables, zone: tzinfo = UTC) -> None:
        self.tables = tables
        self.zone = zone

    def transaction(
        self,
        message: Message,
        sender: SenderConfig,
        existing: dict[str, dict[str, Any]],
        built: dict[str, dict[str, Any]] | None = None,
        urls: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The transaction Bundle; ``existing``: stored ServiceRequests by placer number (for
        orders other than NW); ``built``, if given, receives the ServiceRequests written here
        by placer number; ``urls``, if given, the entries' fullUrls by conditional URL, shared
        by the Bundles of one group (the same Patient in two of them gets the same fullUrl, so
        their merge has no reference to rewrite)."""
        application = message.msh.get(3, 1, 1)
        facility = message.msh.get(4, 1, 1)
        fallback = local_system(f"{application}.{facility}" if facility else application)
        systems = sender.identifier_systems
        entries: list[dict[str, Any]] = []
        pid = message.segment("PID")
        if pid is None:
            raise V2Error("PID", 1, None, None, "100", message="no PID segment")
        body = patient(pid, self.tables, systems, fallback, sender.organization)
        patient_ref = _conditional(entries, "Patient", body, body["identifier"][0], urls)
        encounter_ref = None
        pv1 = message.segment("PV1")
        if pv1 is not None:
            visit, key = encounter(pv1, self.tables, systems, fallback, self.zone, patient_ref)
            if key is None:
                key = _derived_visit(message, application, facility, fallback)
                if key is not None:
                    visit["identifier"] = [key]
            encounter_ref = _conditional(entries, "Encounter", visit, key, urls)
        sent = message.msh.get(7, 1, 1)
        authored = dtm_to_fhir(sent, self.zone) if sent else None
        tags = origin_tags(application, facility)
        for order in orders(message):
            requester = self._requester(entries, order, systems, fallback, urls)
            refs = OrderRefs(patient_ref, requester, encounter_ref, tags)
            placer = placer_identifier(order, fallback)
            stored = existing.get(placer["value"])
            if order.obr is None and stored is not None:
                request = _status_only(stored, order, self.tables, tags)
            else:
                request = service_request(order, self.tables, fallback, self.zone, refs)
                if stored is not None:
                    _keep_identifiers(request, stored)
            request_ref = _conditional(entries, "ServiceRequest", request, placer, urls)
            if built is not None:
                built[placer["value"]] = request
            stamp = authored or request.get("authoredOn") or "1970-01-01T00:00:00+00:00"
            work = task(order, self.tables, fallback, self.zone, refs, request_ref, stamp)
            _conditional(entries, "Task", work, placer, urls)
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "identifier": {"system": fallback, "value": message.msh_control_id},
            "entry": entries,
        }

    def _requester(
        self,
        entries: list[dict[str, Any]],
        order: Order,
        systems: Any,
        fallback: str,
        urls: dict[str, str] | None,
    ) -> dict[str, Any] | None:
        xcn = order.value(12, 16)
        if not xcn:
            return None
        enc = order.orc.encoding
        ident, name = practitioner_parts(xcn, enc, self.tables, systems, fallback)
        if ident is None:
            return {"display": display_name(name)} if display_name(name) else None
        body: dict[str, Any] = {"resourceType": "Practitioner", "identifier": [ident]}
        if name:
            body["name"] = [name]
        for entry in entries:  # the same practitioner on several orders: one entry
            if entry["resource"]["resourceType"] == "Practitioner" and entry["resource"][
                "identifier"
            ] == [ident]:
                return {"reference": entry["fullUrl"]}
        return {"reference": _conditional(entries, "Practitioner", body, ident, urls)}

    async def process(
        self, message: Message, sender: SenderConfig, service: FhirService
    ) -> list[str]:
        """Map and apply ``message``; the references (``Type/id``) written, in entry order."""
        ctx = RequestContext(channel=CHANNEL, organization=sender.organization, keep_unchanged=True)
        existing = await self._existing(message, service, ctx)
        bundle = self.transaction(message, sender, existing)
        try:
            response = await service.batch_or_transaction(ctx, bundle, preference="minimal")
        except FhirError as error:
            raise V2Error(
                "MSH", 1, None, None, APPLICATION_INTERNAL_ERROR,
                message=f"the FHIR transaction was refused: {error.diagnostics}",
            ) from None  # fmt: skip
        return [_reference(entry) for entry in response.get("entry", [])]

    async def process_many(
        self, messages: Sequence[Message], sender: SenderConfig, service: FhirService
    ) -> list[list[str] | V2Error]:
        """Map and apply several messages of ``sender``, in order, as one transaction (group
        mapping, see :mod:`~fhir_server.hl7v2.mapping.batch`); for each message its references
        or its error. A message that cannot be mapped (e.g. a cancel of an unknown order) gets
        its error and writes nothing, as alone; an order changed after being created in the
        same group is found there. If the merged transaction fails, the messages are applied
        one at a time, so each failure stays with its own message."""
        ctx = RequestContext(channel=CHANNEL, organization=sender.organization, keep_unchanged=True)
        outcomes: list[list[str] | V2Error] = []
        bundles: list[dict[str, Any]] = []
        built: dict[str, dict[str, Any]] = {}  # placer number → ServiceRequest of this group
        urls: dict[str, str] = {}  # conditional URL → fullUrl, the same in every Bundle
        changed: list[dict[str, Any]] = []
        for message in messages:
            with contextlib.suppress(V2Error):  # reported when the message is mapped, below
                changed += [placer for _, placer in _changed_orders(message)]
        stored = await self._lookups(service, ctx, changed)
        for message in messages:
            try:
                existing = await self._existing(message, service, ctx, built, stored)
                bundle = self.transaction(message, sender, existing, built, urls)
            except V2Error as error:
                outcomes.append(error)
                continue
            outcomes.append([])
            bundles.append(bundle)
        if not bundles:
            return outcomes
        merged, positions = merge(bundles)
        try:
            response = await service.batch_or_transaction(ctx, merged, preference="minimal")
        except FhirError:
            return [await self._one(m, sender, service) for m in messages]
        written = [_reference(entry) for entry in response.get("entry", [])]
        mapped = iter(positions)
        return [
            o if isinstance(o, V2Error) else [written[i] for i in next(mapped)] for o in outcomes
        ]

    async def _one(
        self, message: Message, sender: SenderConfig, service: FhirService
    ) -> list[str] | V2Error:
        try:
            return await self.process(message, sender, service)
        except V2Error as error:
            return error

    async def _existing(
        self,
        message: Message,
        service: FhirService,
        ctx: RequestContext,
        built: dict[str, dict[str, Any]] | None = None,
        stored: dict[str, list[dict[str, Any]]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """The ServiceRequests the changes in ``message`` name, by placer number: from
        ``built`` (earlier messages of the same group) first, else from the store (``stored``:
        the matches already looked up by placer number, see :meth:`_lookups`)."""
        found: dict[str, dict[str, Any]] = {}
        wanted = _changed_orders(message)
        if stored is None:
            stored = await self._lookups(service, ctx, [placer for _, placer in wanted])
        for order, placer in wanted:
            if built is not None and placer["value"] in built:
                found[placer["value"]] = built[placer["value"]]
                continue
            matches = stored[placer["value"]]
            if not matches:
                raise V2Error(
                    "ORC", order.sequence, 2, 1, UNKNOWN_KEY_IDENTIFIER,
                    message=f"ORC-1 {order.control}: no order with placer number "
                    f"{placer['value']!r} is known here",
                )  # fmt: skip
            found[placer["value"]] = matches[0]
        return found

    async def _lookups(
        self, service: FhirService, ctx: RequestContext, placers: Sequence[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """The stored ServiceRequests of each placer number, searched concurrently (the store
        answers searches started together in one read)."""
        unique = list({placer["value"]: placer for placer in placers}.values())
        results = await asyncio.gather(
            *(
                service.search_type(ctx, "ServiceRequest", [("identifier", token_value(placer))])
                for placer in unique
            )
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for placer, result in zip(unique, results, strict=True):
            decoded = orjson.loads(orjson.dumps(result))  # entries hold stored bytes (Fragments)
            found[placer["value"]] = [
                e["resource"] for e in decoded.get("entry", []) if e.get("resource")
            ]
        return found


def _changed_orders(message: Message) -> list[tuple[Order, dict[str, Any]]]:
    """The orders of ``message`` other than NW, each with its placer identifier."""
    application = message.msh.get(3, 1, 1)
    facility = message.msh.get(4, 1, 1)
    fallback = local_system(f"{application}.{facility}" if facility else application)
    return [
        (order, placer_identifier(order, fallback))
        for order in orders(message)
        if order.control != "NW"
    ]


def _conditional(
    entries: list[dict[str, Any]],
    type_: str,
    body: dict[str, Any],
    key: dict[str, Any] | None,
    urls: dict[str, str] | None = None,
) -> str:
    full_url = f"urn:uuid:{random_uuid()}"
    request = (
        {"method": "PUT", "url": f"{type_}?{search_token(key)}"}
        if key is not None
        else {"method": "POST", "url": type_}
    )
    if urls is not None and key is not None:
        full_url = urls.setdefault(request["url"], full_url)
    entries.append({"fullUrl": full_url, "resource": body, "request": request})
    return full_url


def _status_only(
    stored: dict[str, Any], order: Order, tables: V2Tables, tags: list[dict[str, str]]
) -> dict[str, Any]:
    body = copy.deepcopy(stored)
    body.pop("id", None)
    body["meta"] = {"tag": tags}
    body["status"] = statuses(order, tables)[0]
    return body


def _keep_identifiers(request: dict[str, Any], stored: dict[str, Any]) -> None:
    have = {(i.get("system"), i.get("value")) for i in request["identifier"]}
    for ident in stored.get("identifier", []):
        if (ident.get("system"), ident.get("value")) not in have:
            request["identifier"].append(ident)


def _reference(entry: dict[str, Any]) -> str:
    location = str(entry.get("response", {}).get("location") or entry.get("fullUrl", ""))
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


async def process(
    message: Message,
    sender: SenderConfig,
    service: FhirService,
    mapper: OrderMapper | None = None,
) -> list[str]:
    """The worker's entry point (shared design). Pass the application's ``mapper`` (bootstrap
    builds one); without it the tables are loaded for this call."""
    return await (mapper or OrderMapper(V2Tables.load())).process(message, sender, service)


def _derived_visit(
    message: Message, application: str, facility: str, fallback: str
) -> dict[str, Any] | None:
    """Without PV1-19: an Encounter identifier from the first order's placer number and the
    sender (system urn:fhir-server:hl7v2:<sender>:visit), so a replay updates, not duplicates."""
    for order in orders(message):
        placer = placer_identifier(order, fallback)
        sender = f"{application}.{facility}" if facility else application
        return {"system": f"urn:fhir-server:hl7v2:{sender}:visit", "value": placer["value"]}
    return None
