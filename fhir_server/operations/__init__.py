"""FHIR operations (http://hl7.org/fhir/R4/operations.html): the operation table, its
dispatcher and the operations themselves (L3; they use the interactions' service for reads and
authorization, and the terminology service).

How the pieces fit:

* :class:`~fhir_server.operations.table.OperationDef` is one row of the table: name, levels
  (system/type/instance), resource types, GET allowed (``idempotent``), the SMART letter the
  caller's scopes must grant on the type, the declared input parameter names, the handler, and
  ``resource_input`` (the parameter a POSTed plain resource stands for);
* :class:`~fhir_server.operations.service.OperationService` holds the table: it finds the row
  (unknown operation or wrong level/type: 400 naming it), refuses GET on a non-idempotent one,
  checks the scopes (``FhirService.policy.require``), parses the inputs (query, Parameters, or
  the single resource), reads the instance for an instance-level call (through
  ``FhirService.read``, so with the caller's scopes) and calls the handler;
* the REST door routes ``[base]/$op``, ``[base]/{type}/$op`` and ``[base]/{type}/{id}/$op``
  (GET and POST, before the interaction routes) to ``FhirService.operations``, and the
  CapabilityStatement lists every row (``rest.resource.operation``).

Adding an operation (e.g. the lead's ``$validate``) is one more row, given to the service in the
composition root (bootstrap)::

    OperationDef(
        "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate",
        frozenset((TYPE, INSTANCE)), tuple(sorted(r4.resource_types())), validate_handler,
        frozenset(("resource", "mode", "profile")), idempotent=True, letter="r",
        resource_input="resource",
    )

where ``async def validate_handler(call: Invocation) -> dict`` reads
``call.inputs.resource("resource")`` (or ``call.resource`` at instance level) and returns an
OperationOutcome. ``build_operations(fhir, terminology, clock, extra=(row,))`` takes the rows.
"""

from fhir_server.operations.inputs import Inputs
from fhir_server.operations.service import OperationService
from fhir_server.operations.table import INSTANCE, SYSTEM, TYPE, Invocation, OperationDef

__all__ = ["INSTANCE", "SYSTEM", "TYPE", "Inputs", "Invocation", "OperationDef", "OperationService"]
