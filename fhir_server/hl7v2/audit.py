"""HL7 v2 messages exchanged over MLLP, told to the INTERACTION_DONE hooks (the audit trail,
RO-24, CN-4.1.4) as DICOM's exchange events lay them out (PS3.15 A.5.3): a received message is
an "Import" (DCM 110107, action C), a result delivered to a RIS an "Export" (110106, action R).
The peer is the sending application and facility (MSH-3|MSH-4) and the Organization its
``--hl7-sender`` entry maps it to, or the destination's name; the message entity carries MSH-10,
MSH-9 and the acknowledgment code. Only with authorization on (``enabled``), as for the other
doors. The hooks only enqueue: a failure to tell them is logged, never raised into the door.
"""

from __future__ import annotations

import logging

from fhir_server.core.context import RequestContext
from fhir_server.events.hooks import Hooks, InteractionDone

log = logging.getLogger(__name__)

CHANNEL = "hl7v2"
IMPORT = "HL7-IMPORT"
EXPORT = "HL7-EXPORT"
#: Acknowledgment code -> the status the trail turns into an outcome (0, 4 or 8).
STATUS = {"AA": 200, "CA": 200, "AE": 422, "CE": 422, "AR": 400, "CR": 400}


class Hl7Audit:
    def __init__(self, hooks: Hooks, *, enabled: bool, base_url: str = "") -> None:
        self.hooks = hooks
        self.enabled = enabled
        self.base_url = base_url

    async def exchanged(
        self,
        interaction: str,
        *,
        peer: str,
        organization: str | None,
        address: str | None,
        control_id: str,
        message_type: str,
        code: str,
    ) -> None:
        """One message received (IMPORT) or delivered (EXPORT) and acknowledged with ``code``
        (``transport`` when no acknowledgment came)."""
        if not self.enabled:
            return
        ctx = RequestContext(
            channel=CHANNEL, base_url=self.base_url, principal=peer or "unknown sender",
            organization=organization, client_address=address,
        )  # fmt: skip
        details = (("MessageControlId", control_id), ("MessageType", message_type),
                   ("Acknowledgment", code))  # fmt: skip
        done = InteractionDone(interaction, STATUS.get(code, 500), details=details)
        try:
            await self.hooks.interaction_done(ctx, done)
        except Exception as exc:  # the trail logs what it drops; never break the door
            log.error("HL7 v2 audit of %s %s not told: %s", interaction, control_id,
                      type(exc).__name__)  # fmt: skip
