"""Validation of R4 resources before they are stored.

:func:`validate_structure` lists structural errors as OperationOutcome issues;
:func:`check_structure` raises :class:`~fhir_server.core.errors.UnprocessableResource` (422).
"""

from fhir_server.validation.structure import check_structure, validate_structure

__all__ = ["check_structure", "validate_structure"]
