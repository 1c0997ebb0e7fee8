"""The operation table: one :class:`OperationDef` per FHIR operation the server offers.

An entry says where the operation may be invoked (``levels``: system, type, instance; and on
which ``resource_types``), whether GET is allowed (``idempotent``: operations.html says an
operation that changes nothing may be invoked by GET), the SMART letter the caller's scopes must
grant on the resource type, the parameters its OperationDefinition declares (any other name is
refused, naming it), and, when the definition has a single resource input, that parameter's
name (``resource_input``): a POST body that is that resource (not a Parameters) is then taken as
that parameter (operations.html#request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fhir_server.core.context import RequestContext
from fhir_server.operations.inputs import Inputs

if TYPE_CHECKING:
    from fhir_server.interactions.service import FhirService

SYSTEM, TYPE, INSTANCE = "system", "type", "instance"


@dataclass(frozen=True, slots=True)
class Invocation:
    """One call of an operation, as its handler sees it. ``resource`` is the stored resource
    of an instance-level call (read through the service, with the caller's scopes)."""

    ctx: RequestContext
    fhir: FhirService
    inputs: Inputs
    resource_type: str | None
    id: str | None
    resource: dict[str, Any] | None


#: Answers one invocation with the resource to return (Parameters, ValueSet, OperationOutcome…).
Handler = Callable[[Invocation], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class OperationDef:
    """One row of the table (see the module docstring)."""

    name: str  # without the '$'
    definition: str  # the OperationDefinition canonical (CapabilityStatement lists it)
    levels: frozenset[str]
    resource_types: tuple[str, ...]  # empty: system level only
    handler: Handler
    parameters: frozenset[str]  # the input parameters its OperationDefinition declares
    idempotent: bool = True
    letter: str = "r"
    resource_input: str | None = None

    def allows(self, level: str, resource_type: str | None) -> bool:
        if level not in self.levels:
            return False
        return level == SYSTEM or resource_type in self.resource_types
