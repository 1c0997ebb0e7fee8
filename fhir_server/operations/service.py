"""OperationService: finds the operation of a call in the table, checks where and how it was
invoked, authorizes it, and runs its handler (http://hl7.org/fhir/R4/operations.html)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InteractionNotSupported, InvalidRequest
from fhir_server.interactions.reading import check_type
from fhir_server.interactions.service import FhirService
from fhir_server.interactions.table import OperationCall, OperationListing
from fhir_server.operations.inputs import Inputs
from fhir_server.operations.table import INSTANCE, SYSTEM, TYPE, Invocation, OperationDef


class OperationService:
    """The operations of one server (implements interactions.table.Operations)."""

    def __init__(self, fhir: FhirService, table: Sequence[OperationDef]) -> None:
        self.fhir = fhir
        self._by_name: dict[str, list[OperationDef]] = {}
        for op in table:
            self._by_name.setdefault(op.name, []).append(op)

    def listing(self) -> list[OperationListing]:
        return [
            OperationListing(op.name, op.definition, op.resource_types)
            for ops in self._by_name.values()
            for op in ops
        ]

    def find(self, name: str, level: str, resource_type: str | None) -> OperationDef:
        """The operation of that name at that level and type; InvalidRequest naming it."""
        candidates = self._by_name.get(name)
        if not candidates:
            known = ", ".join(f"${n}" for n in sorted(self._by_name))
            raise InvalidRequest(
                f"Unknown operation ${name}; this server offers {known}", expression=[f"${name}"]
            )
        for op in candidates:
            if op.allows(level, resource_type):
                return op
        where = f"on {resource_type}" if resource_type else "at the system level"
        places = "; ".join(_places(op) for op in candidates)
        raise InvalidRequest(
            f"Operation ${name} cannot be invoked {where} ({level} level); it is offered {places}",
            expression=[f"${name}"],
        )

    async def invoke(self, ctx: RequestContext, call: OperationCall) -> dict[str, Any]:
        level = INSTANCE if call.id is not None else TYPE if call.resource_type else SYSTEM
        if call.resource_type is not None:
            check_type(call.resource_type)
        op = self.find(call.name, level, call.resource_type)
        if call.method == "GET" and not op.idempotent:
            raise InteractionNotSupported(
                f"Operation ${op.name} changes data: invoke it with POST", expression=[op.name]
            )
        if ctx.access is not None and call.resource_type is not None:
            self.fhir.policy.require(ctx.access, op.letter, call.resource_type)
        inputs = _inputs(op, call)
        inputs.check_known(op.parameters, op.name)
        resource = None
        if call.id is not None:
            assert call.resource_type is not None
            shown = await self.fhir.read(ctx, call.resource_type, call.id)
            resource = fhirjson.loads_object(shown.body, call.resource_type)
        invocation = Invocation(ctx, self.fhir, inputs, call.resource_type, call.id, resource)
        return await op.handler(invocation)


def _inputs(op: OperationDef, call: OperationCall) -> Inputs:
    if call.method == "GET" or call.body is None:
        return Inputs.from_query(call.query)
    body = call.body
    if body.get("resourceType") != "Parameters" and op.resource_input is not None:
        # The resource posted as is; its other parameters (mode, profile) come in the URL.
        return Inputs.of_resource(op.resource_input, body, call.query)
    return Inputs.from_parameters(body)


def _places(op: OperationDef) -> str:
    levels = "/".join(sorted(op.levels))
    types = ", ".join(op.resource_types)
    return f"at {levels} level" + (f" on {types}" if types else "")
