"""The operation table of a server: the terminology operations plus any rows the composition
root adds (``$validate``…)."""

from __future__ import annotations

from collections.abc import Iterable

from fhir_server.core.clock import Clock
from fhir_server.interactions.service import FhirService
from fhir_server.operations.service import OperationService
from fhir_server.operations.table import OperationDef
from fhir_server.operations.terminology import terminology_operations
from fhir_server.terminology import TerminologyService


def build_operations(
    fhir: FhirService,
    terminology: TerminologyService,
    clock: Clock,
    extra: Iterable[OperationDef] = (),
) -> OperationService:
    """The operations, wired into ``fhir`` (its CapabilityStatement and the REST door reach
    them as ``fhir.operations``), and the terminology service into its searches (``:in``,
    ``:not-in``, ``:above``, ``:below`` on tokens)."""
    service = OperationService(fhir, [*terminology_operations(terminology, clock), *extra])
    fhir.operations = service
    fhir.terminology = terminology
    return service
