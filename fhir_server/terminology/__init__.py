"""The local terminology service (L2): expansion, $lookup, $validate-code, $translate and the
binding membership check, over the conformance registry's CodeSystems, ValueSets and
ConceptMaps (http://hl7.org/fhir/R4/terminology-service.html)."""

from fhir_server.terminology.expand import Entry, Expansion
from fhir_server.terminology.output import ExpandOptions, expanded_value_set
from fhir_server.terminology.service import TerminologyService
from fhir_server.terminology.source import CanonicalSource
from fhir_server.terminology.translate import TranslateRequest
from fhir_server.terminology.validate import Coding

__all__ = [
    "CanonicalSource",
    "Coding",
    "Entry",
    "ExpandOptions",
    "Expansion",
    "TerminologyService",
    "TranslateRequest",
    "expanded_value_set",
]
