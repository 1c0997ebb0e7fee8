"""Errors of the terminology service (typed, translated to OperationOutcome at the doors).

Each says which value set, code system or parameter it is about
(http://hl7.org/fhir/R4/terminology-service.html; IssueType ``not-supported``, ``too-costly``,
``not-found``).
"""

from __future__ import annotations

from fhir_server.core.errors import FeatureNotSupported, InvalidRequest, ResourceNotFound


class UnknownValueSet(ResourceNotFound):
    """No ValueSet with that canonical url is known (HTTP 404 for an operation's url)."""

    def __init__(self, url: str, expression: tuple[str, ...] = ()) -> None:
        super().__init__(f"ValueSet '{url}' is not known to this server", expression=expression)
        self.url = url


class UnknownCodeSystem(ResourceNotFound):
    def __init__(self, url: str, expression: tuple[str, ...] = ()) -> None:
        super().__init__(f"CodeSystem '{url}' is not known to this server", expression=expression)
        self.url = url


class UnknownConceptMap(ResourceNotFound):
    def __init__(self, url: str, expression: tuple[str, ...] = ()) -> None:
        super().__init__(f"ConceptMap '{url}' is not known to this server", expression=expression)
        self.url = url


class ExpansionNotSupported(FeatureNotSupported):
    """The value set needs a code system the server does not hold (SNOMED CT, LOINC, DICOM…)
    in a way only that code system could answer (a whole system or a filter)."""


class TooCostly(InvalidRequest):
    """The expansion would exceed the server's limit (HTTP 400, IssueType too-costly)."""

    code = "too-costly"
