"""What a caller may do: the SMART scopes granted to it and its launch context, as plain data.

Built by a door from a verified access token (``fhir_server.auth``), carried on the
:class:`~fhir_server.core.context.RequestContext` and enforced by the services
(``fhir_server.interactions.authorize``). ``RequestContext.access is None`` means the caller is
not restricted by scopes: the server itself (workflow follow-ups, audit), or ``--auth off``.

Scope grammar (SMART App Launch 2.x, scopes-and-launch-context.html):
``(patient|user|system)/(ResourceType|*).[c][r][u][d][s][?param=value&...]``; SMART 1.0's
``.read``, ``.write`` and ``.*`` are read as ``rs``, ``cud`` and ``cruds``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScopeLevel = Literal["patient", "user", "system"]

#: The SMART v2 interaction letters, in their required order.
CREATE, READ, UPDATE, DELETE, SEARCH = "c", "r", "u", "d", "s"
INTERACTION_LETTERS = (CREATE, READ, UPDATE, DELETE, SEARCH)

#: Pseudo resource types of this server's own administration: never covered by ``*``.
#: ``system/Admin.cruds`` manages users and clients, ``system/Launch.c`` creates EHR launches.
ADMIN_TYPE = "Admin"
LAUNCH_TYPE = "Launch"


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """One granted resource scope. ``resource_type`` is ``*`` for every FHIR type;
    ``query`` holds the granular restriction (``?category=…``), () when none."""

    level: ScopeLevel
    resource_type: str
    interactions: frozenset[str]
    query: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def covers_type(self, resource_type: str) -> bool:
        if self.resource_type == "*":
            return resource_type not in (ADMIN_TYPE, LAUNCH_TYPE)
        return self.resource_type == resource_type


@dataclass(frozen=True, slots=True)
class Access:
    """The scopes and context one access token grants.

    ``patient``: id of the Patient in context; ``patient/`` scopes reach only that patient's
    compartment. ``fhir_user``: the user's resource (``Practitioner/123``), ``subject``: the user
    name or, for backend services, the client id. ``token_id``/``grant_id`` identify the token
    (audit, revocation)."""

    scopes: tuple[ResourceScope, ...]
    client_id: str
    subject: str
    patient: str | None = None
    encounter: str | None = None
    fhir_user: str | None = None
    issuer: str = ""
    token_id: str = ""
    grant_id: str = ""

    def granting(self, letter: str, resource_type: str) -> tuple[ResourceScope, ...]:
        """The scopes that allow interaction ``letter`` on ``resource_type``."""
        return tuple(
            s for s in self.scopes if letter in s.interactions and s.covers_type(resource_type)
        )

    def allows(self, letter: str, resource_type: str) -> bool:
        return bool(self.granting(letter, resource_type))
