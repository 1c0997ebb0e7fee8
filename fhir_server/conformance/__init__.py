"""The canonical resources the server knows: StructureDefinitions, ValueSets, CodeSystems,
ConceptMaps (R4 core, the project's own profiles and terminology, and those stored on the server).
"""

from fhir_server.conformance.registry import CANONICAL_TYPES, Conformance, canonical_key

__all__ = ["CANONICAL_TYPES", "Conformance", "canonical_key"]
