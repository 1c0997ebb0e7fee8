"""What DICOM peers do over DIMSE, told to the INTERACTION_DONE hooks (the audit trail, RO-24,
CN-4.1.4) as PS3.15 A.5.3 lays out DICOM's own audit messages:

- instances received by C-STORE: one "DICOM Instances Transferred" per association and study,
  when the association ends (released, aborted or dropped), with the number stored and refused;
- instances sent by C-MOVE or C-GET: one per request and study, with the number matched and the
  Move Destination;
- a C-FIND (query/retrieve or worklist): one "Query" with its matching keys.

The peer is the calling AE title and the Organization the allow-list maps it to (an absolute
reference under the server's FHIR base, as the trail's references are). Only with
authorization on (``enabled``), as for the other doors: with ``--auth off`` no request carries
an identity. pynetdicom's handlers (relayed associations) run in its threads and tell the hooks
through the bridge; associations the acceptor serves tell them on the loop. A failure to tell
them is logged, never raised into the association.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import evt

from fhir_server.core.context import RequestContext
from fhir_server.dicom.scu import Bridge
from fhir_server.dicom.ul.association import Requestor
from fhir_server.events.hooks import Hooks, InteractionDone

log = logging.getLogger(__name__)

CHANNEL = "dicom"
HOOK_TIMEOUT = 5.0
#: Matching keys shown in a query's audit (the identifier's values are the query, as BALP keeps
#: a REST search's query string; AuditEvents are readable only with a system scope).
MAX_QUERY = 2000


@dataclass
class _Received:
    patient: str | None = None
    stored: int = 0
    refused: int = 0


@dataclass
class _Association:
    ae_title: str
    address: str | None
    studies: dict[str, _Received] = field(default_factory=dict)


class DimseAudit:
    """The DICOM door's audit notifications; a DimseService (no contexts) for its
    association-end handlers, and called by the storage, find and retrieve handlers."""

    def __init__(
        self,
        hooks: Hooks,
        bridge: Bridge,
        organization: Callable[[str], str | None],
        *,
        enabled: bool,
        base_url: str = "",
        relayed: Mapping[int, str] | None = None,
    ) -> None:
        self.hooks = hooks
        self.base_url = base_url
        self.bridge = bridge
        self.organization = organization
        self.enabled = enabled
        #: The node's relayed connections: local port -> the real peer's address.
        self.relayed: Mapping[int, str] = {} if relayed is None else relayed
        self._lock = threading.Lock()
        self._open: dict[int, _Association] = {}

    def contexts(self) -> list[tuple[str, list[str] | None, bool, bool]]:
        return []

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [(evt.EVT_RELEASED, self.on_end), (evt.EVT_ABORTED, self.on_end),
                (evt.EVT_CONN_CLOSE, self.on_end)]  # fmt: skip

    # --- told by the handlers ---------------------------------------------------------------

    def stored(self, assoc: Any, study: str | None, patient: str | None, *, ok: bool) -> None:
        """One C-STORE answered; counted until the association ends."""
        if not self.enabled or not study:
            return
        with self._lock:
            seen = self._open.get(id(assoc))
            if seen is None:
                seen = self._open[id(assoc)] = _Association(_ae(assoc), self._address(assoc))
            received = seen.studies.setdefault(study, _Received())
            received.patient = received.patient or patient
            if ok:
                received.stored += 1
            else:
                received.refused += 1

    def queried(self, assoc: Any, sop_class: str, identifier: Dataset, status: int) -> None:
        """One C-FIND answered (``status``: an HTTP-like 200 or 400/500 for the outcome)."""
        if not self.enabled:
            return
        keys = "&".join(f"{e.keyword or e.tag}={_text(e.value)}" for e in identifier)
        query = f"{keys}&sop-class={sop_class}"[:MAX_QUERY]
        self._tell(assoc, InteractionDone("C-FIND", status, query=query))

    def sent(
        self,
        assoc: Any,
        operation: str,
        studies: Iterable[str],
        instances: int,
        destination: str | None = None,
    ) -> None:
        """One C-MOVE or C-GET whose sub-operations were started, per study."""
        if not self.enabled:
            return
        details = [("NumberOfInstances", str(instances))]
        if destination:
            details.append(("MoveDestination", destination))
        for study in dict.fromkeys(studies):
            done = InteractionDone(operation, 200, studies=(study,), details=tuple(details))
            self._tell(assoc, done)

    # --- association end --------------------------------------------------------------------

    def on_end(self, event: Any) -> None:
        """A relayed association ended (pynetdicom's thread)."""
        for ctx, done in self._ended(event.assoc):
            self._notify(ctx, done)

    async def association_ended(self, assoc: Any) -> None:
        """An association the acceptor served ended (on the server loop)."""
        for ctx, done in self._ended(assoc):
            try:
                await self.hooks.interaction_done(ctx, done)
            except Exception as exc:  # the trail logs what it drops; never break the node
                log.error("DICOM audit of %s from %s not told: %s", done.interaction,
                          ctx.principal, type(exc).__name__)  # fmt: skip

    def _ended(self, assoc: Any) -> list[tuple[RequestContext, InteractionDone]]:
        with self._lock:
            seen = self._open.pop(id(assoc), None)
        if seen is None:
            return []
        out: list[tuple[RequestContext, InteractionDone]] = []
        for study, received in seen.studies.items():
            details = (("NumberOfInstances", str(received.stored)),
                       ("Refused", str(received.refused)))  # fmt: skip
            status = 200 if received.stored else 400
            done = InteractionDone(
                "C-STORE", status, studies=(study,), details=details,
                patient_identifiers=(received.patient,) if received.patient else (),
            )  # fmt: skip
            out.append((self._context(seen.ae_title, seen.address), done))
        return out

    # --- telling the hooks ------------------------------------------------------------------

    def _tell(self, assoc: Any, done: InteractionDone) -> None:
        self._notify(self._context(_ae(assoc), self._address(assoc)), done)

    def _address(self, assoc: Any) -> str | None:
        """The peer's address: a relayed association's requestor is the node's relay."""
        requestor = assoc.requestor
        if not isinstance(requestor, Requestor):
            relayed = self.relayed.get(int(getattr(requestor, "port", 0) or 0))
            if relayed is not None:
                return relayed
        address = getattr(requestor, "address", None)
        return str(address) if address else None

    def _context(self, ae_title: str, address: str | None) -> RequestContext:
        return RequestContext(
            channel=CHANNEL, base_url=self.base_url, principal=ae_title,
            organization=self.organization(ae_title), client_address=address,
        )  # fmt: skip

    def _notify(self, ctx: RequestContext, done: InteractionDone) -> None:
        try:
            self.bridge.call(self.hooks.interaction_done(ctx, done), timeout=HOOK_TIMEOUT)
        except Exception as exc:  # the trail logs what it drops; never break the association
            log.error("DICOM audit of %s from %s not told: %s", done.interaction,
                      ctx.principal, type(exc).__name__)  # fmt: skip


def _ae(assoc: Any) -> str:
    return str(assoc.requestor.ae_title).strip()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)
