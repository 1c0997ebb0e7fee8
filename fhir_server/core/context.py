"""Who is asking, through which door: built by each door, passed to every service call."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server.core.access import Access
from fhir_server.core.ids import random_uuid


@dataclass(frozen=True, slots=True)
class RequestContext:
    """``channel`` is the door (rest, hl7v2, dicom, system); ``base_url`` the FHIR base the
    caller sees, used for absolute URLs (Location, Bundle fullUrl and links). ``access``: what
    the caller's token grants, enforced by the services; None for an unrestricted caller (the
    server itself, or ``--auth off``). ``client_address``: where the request came from (audit).
    ``keep_unchanged``: a transaction's update whose content equals the current version stores
    no new version (answered 200 with the current one) — for doors that re-send what they hold
    (an HL7 v2 order repeats the patient's demographics on every message); REST keeps the FHIR
    default, a new version per update."""

    channel: str = "system"
    base_url: str = ""
    principal: str | None = None
    scopes: frozenset[str] = frozenset()
    organization: str | None = None
    request_id: str = field(default_factory=lambda: random_uuid().replace("-", ""))
    access: Access | None = None
    client_address: str | None = None
    keep_unchanged: bool = False
