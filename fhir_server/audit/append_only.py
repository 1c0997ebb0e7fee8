"""AuditEvents are never changed nor deleted (CN-4.1.4: prevent illegal modification; RO-24:
access is monitored, which a rewritable log would not prove).

A PRE_STORE hook, so it holds on every path into the store: REST update, patch and delete,
every entry of a transaction or batch, and any later door. Creating AuditEvents stays open
(external systems send theirs, and this server's own trail is written the same way).
"""

from __future__ import annotations

from fhir_server.core.errors import HookVeto
from fhir_server.events.hooks import PendingWrite

APPEND_ONLY = "AuditEvents are append-only: they are never changed or deleted (CN-4.1.4, RO-24)"


async def refuse_audit_changes(write: PendingWrite) -> None:
    """Veto (422) any write of an AuditEvent but its first version: an update or patch of an
    existing one, or a deletion. A PUT that creates a new AuditEvent (version 1) is a create."""
    if write.resource_type != "AuditEvent":
        return
    if write.resource is None or write.version > 1:
        raise HookVeto(APPEND_ONLY, expression=["AuditEvent"])
