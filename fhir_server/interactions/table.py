"""The interaction table: the single source of the REST routes and the CapabilityStatement.

Every interaction the server supports appears here once, with its FHIR code
(http://hl7.org/fhir/R4/codesystem-restful-interaction.html), level, HTTP method and path
relative to the FHIR base. The REST door builds its routes from this table and the
CapabilityStatement lists exactly these interactions, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fhir_server.core.context import RequestContext


@dataclass(frozen=True, slots=True)
class InteractionRoute:
    """``handler`` names the door's handler when one interaction code has several forms
    (conditional update is ``update`` at type level, compartment search is ``search-type``)."""

    code: str
    level: str  # "instance", "type" or "system"
    method: str
    path: str
    handler: str = ""

    @property
    def handler_name(self) -> str:
        return self.handler or self.code


# Order matters where paths overlap: literal segments (metadata, _history, _search) come before
# the patterns that would also match them.
INTERACTIONS: tuple[InteractionRoute, ...] = (
    InteractionRoute("capabilities", "system", "GET", "metadata"),
    InteractionRoute("search-system", "system", "GET", ""),
    InteractionRoute("transaction", "system", "POST", "", "batch-transaction"),
    InteractionRoute("batch", "system", "POST", "", "batch-transaction"),
    InteractionRoute("search-system", "system", "POST", "_search"),
    InteractionRoute("history-system", "system", "GET", "_history"),
    InteractionRoute("search-type", "type", "GET", "{type}"),
    InteractionRoute("search-type", "type", "POST", "{type}/_search"),
    InteractionRoute("create", "type", "POST", "{type}"),
    InteractionRoute("update", "type", "PUT", "{type}", "update-conditional"),
    InteractionRoute("delete", "type", "DELETE", "{type}", "delete-conditional"),
    InteractionRoute("history-type", "type", "GET", "{type}/_history"),
    InteractionRoute("read", "instance", "GET", "{type}/{id}"),
    InteractionRoute("update", "instance", "PUT", "{type}/{id}"),
    InteractionRoute("patch", "instance", "PATCH", "{type}/{id}"),
    InteractionRoute("delete", "instance", "DELETE", "{type}/{id}"),
    InteractionRoute("history-instance", "instance", "GET", "{type}/{id}/_history"),
    InteractionRoute("vread", "instance", "GET", "{type}/{id}/_history/{vid}"),
    InteractionRoute("search-type", "type", "GET", "{ctype}/{cid}/{type}", "search-compartment"),
)

#: Interactions listed per resource in CapabilityStatement.rest.resource.interaction.
TYPE_INTERACTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(r.code for r in INTERACTIONS if r.level in ("instance", "type"))
)

#: Interactions listed in CapabilityStatement.rest.interaction (system level).
SYSTEM_INTERACTIONS: tuple[str, ...] = tuple(
    dict.fromkeys(r.code for r in INTERACTIONS if r.level == "system" and r.code != "capabilities")
)

#: Patch formats accepted by the patch interaction.
PATCH_FORMATS: tuple[str, ...] = ("application/json-patch+json", "application/fhir+json")


# --- operations (http://hl7.org/fhir/R4/operations.html) ---------------------------------------
# The operation table itself lives in fhir_server/operations/ (L3, above this package); the
# service and the REST door reach it through this protocol.

#: The operation routes, relative to the FHIR base; they come before the interaction routes
#: (``{type}/{id}`` would read an id ``$lookup``, ``{ctype}/{cid}/{type}`` search a compartment).
OPERATION_PATHS: tuple[tuple[str, str], ...] = (
    ("system", "${operation}"),
    ("type", "{type}/${operation}"),
    ("instance", "{type}/{id}/${operation}"),
)


@dataclass(frozen=True, slots=True)
class OperationListing:
    """An operation as CapabilityStatement lists it: ``name`` without the ``$``, the
    OperationDefinition canonical, and the resource types it is on (empty: system level)."""

    name: str
    definition: str
    resource_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OperationCall:
    """One invocation: ``[base]/$name``, ``[base]/Type/$name`` or ``[base]/Type/id/$name``,
    by GET (``query``) or POST (``body``: a Parameters resource, or the single resource input)."""

    name: str
    resource_type: str | None
    id: str | None
    method: str
    query: Sequence[tuple[str, str]]
    body: dict[str, Any] | None = None


class Operations(Protocol):
    """The operations the server offers (fhir_server.operations.OperationService)."""

    def listing(self) -> Sequence[OperationListing]: ...

    async def invoke(self, ctx: RequestContext, call: OperationCall) -> dict[str, Any]: ...
