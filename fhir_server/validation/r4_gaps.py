"""Where fhir.resources' R4B models are not a faithful R4 (4.0.1) validator, and what we do.

R4B (4.3.0) is "strictly backward compatible with R4" except for breaking changes in the
Evidence-Based Medicine and Medication Definition resources (http://hl7.org/fhir/R4B/); the
library adds a few defects and leniencies of its own. Every entry below was found by comparing
each R4 StructureDefinition snapshot (resources and datatypes) with the R4B model's fields, and
by validating all 5,306 official R4 examples; tests/ re-derive the comparison so this list cannot
silently drift from the models.

(a) ``FALLBACK_TYPES``: resource types without a faithful R4B model; validated from the R4
    snapshot by :mod:`fhir_server.validation.walk` instead (R4B datatype models still check
    their datatypes).
(b) Element-level differences inside otherwise faithful models, handled by the schema view
    (:mod:`fhir_server.validation.schema`): ``R4B_ONLY_ELEMENTS``, ``R4B_MISSING_ELEMENTS``,
    ``R4B_MISSING_PRIMITIVE_EXTENSIONS``, ``R4B_LAX_REQUIRED``.
(c) ``R4B_ERROR_FILTERS``: R4B errors on valid R4 content, dropped after our own check.
(d) ``R4B_LENIENCIES``: invalid R4 that R4B accepts; the JSON walk rejects it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

R4B_SCOPE = "http://hl7.org/fhir/R4B/ (breaking changes: EBM and Medication Definition)"
_REPLACED_PRODUCT = "not in R4B: replaced by MedicinalProductDefinition and related resources"
_REPLACED_SUBSTANCE = "not in R4B: folded into SubstanceDefinition"
_REMOVED_EBM = "not in R4B: evidence synthesis was redesigned around Evidence/Citation"

FALLBACK_TYPES: Mapping[str, str] = {
    "MedicinalProduct": _REPLACED_PRODUCT,
    "MedicinalProductAuthorization": _REPLACED_PRODUCT,
    "MedicinalProductContraindication": _REPLACED_PRODUCT,
    "MedicinalProductIndication": _REPLACED_PRODUCT,
    "MedicinalProductIngredient": _REPLACED_PRODUCT,
    "MedicinalProductInteraction": _REPLACED_PRODUCT,
    "MedicinalProductManufactured": _REPLACED_PRODUCT,
    "MedicinalProductPackaged": _REPLACED_PRODUCT,
    "MedicinalProductPharmaceutical": _REPLACED_PRODUCT,
    "MedicinalProductUndesirableEffect": _REPLACED_PRODUCT,
    "SubstanceNucleicAcid": _REPLACED_SUBSTANCE,
    "SubstancePolymer": _REPLACED_SUBSTANCE,
    "SubstanceProtein": _REPLACED_SUBSTANCE,
    "SubstanceReferenceInformation": _REPLACED_SUBSTANCE,
    "SubstanceSourceMaterial": _REPLACED_SUBSTANCE,
    "SubstanceSpecification": _REPLACED_SUBSTANCE,
    "EffectEvidenceSynthesis": _REMOVED_EBM,
    "RiskEvidenceSynthesis": _REMOVED_EBM,
    "Evidence": (
        "reshaped in R4B: exposureBackground, exposureVariant, outcome, name, topic... removed, "
        "variableDefinition (required), statistic, certainty... added"
    ),
    "EvidenceVariable": (
        "reshaped in R4B: type, topic, characteristic.definition[x]/participantEffective[x] "
        "changed, characteristic no longer required"
    ),
}

_CHOICE_TYPES_R4B = "R4B added CodeableReference and RatioRange to the open type list"
_SUBJECT_CANONICAL = "R4B added canonical to subject[x]; R4 allows CodeableConcept|Reference"

# (R4B model, JSON name) accepted by R4B but not an R4 element -> reason.
R4B_ONLY_ELEMENTS: Mapping[tuple[str, str], str] = {
    ("ActivityDefinition", "subjectCanonical"): _SUBJECT_CANONICAL,
    ("PlanDefinition", "subjectCanonical"): _SUBJECT_CANONICAL,
    ("PlanDefinitionAction", "subjectCanonical"): _SUBJECT_CANONICAL,
    **{
        (model, f"{stem}{suffix}"): _CHOICE_TYPES_R4B
        for model, stems in (
            ("Extension", ("value",)),
            ("ElementDefinitionExample", ("value",)),
            ("ElementDefinition", ("defaultValue", "fixed", "pattern")),
        )
        for stem in stems
        for suffix in ("CodeableReference", "RatioRange")
    },
}

# (R4B model, JSON name) of an R4 element the model lacks -> (choice stem, R4 type).
# R4 lists Meta among the open types (http://hl7.org/fhir/R4/datatypes.html#open); R4B does not.
R4B_MISSING_ELEMENTS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("Extension", "valueMeta"): ("value", "Meta"),
    ("ElementDefinitionExample", "valueMeta"): ("value", "Meta"),
    ("ElementDefinition", "defaultValueMeta"): ("defaultValue", "Meta"),
    ("ElementDefinition", "fixedMeta"): ("fixed", "Meta"),
    ("ElementDefinition", "patternMeta"): ("pattern", "Meta"),
}

# Models whose primitive elements lack the ``_name`` sibling in R4B -> reason.
R4B_MISSING_PRIMITIVE_EXTENSIONS: Mapping[str, str] = {
    "Extension": (
        "R4B's Extension has no `_valueX` fields, so an id/extension on an extension's primitive "
        "value (http://hl7.org/fhir/R4/json.html#primitive) is rejected as extra_forbidden"
    ),
}

# Datatypes whose R4 minimum cardinality R4B relaxed -> (required JSON names, reason).
R4B_LAX_REQUIRED: Mapping[str, tuple[tuple[str, ...], str]] = {
    "MarketingStatus": (
        ("country", "dateRange"),
        "R4 MarketingStatus.country and .dateRange are 1..1; R4B made them 0..1",
    ),
}


@dataclass(frozen=True, slots=True)
class ErrorFilter:
    """An R4B error on content that is valid R4, recognised by error type and position."""

    name: str
    error_types: frozenset[str]
    reason: str
    reference: str
    models: frozenset[str] | None = None  # R4B model holding the element
    key: re.Pattern[str] | None = None  # JSON property name at the error
    element_types: frozenset[str] | None = None  # FHIR type of the element at the error
    ctx_key: str | None = None  # key present in the error's context

    def matches(
        self,
        error_type: str,
        model: str | None,
        key: str | None,
        element_type: str | None,
        ctx: Mapping[str, object],
    ) -> bool:
        """True if an R4B error of that type, at that position, is this known defect."""
        return (
            error_type in self.error_types
            and (self.models is None or model in self.models)
            and (self.key is None or (key is not None and self.key.fullmatch(key) is not None))
            and (self.element_types is None or element_type in self.element_types)
            and (self.ctx_key is None or self.ctx_key in ctx)
        )


R4B_ERROR_FILTERS: tuple[ErrorFilter, ...] = (
    ErrorFilter(
        "primitive-extension-on-extension-value",
        frozenset({"extra_forbidden"}),
        R4B_MISSING_PRIMITIVE_EXTENSIONS["Extension"] + "; validated as a primitive extension",
        "http://hl7.org/fhir/R4/json.html#primitive",
        models=frozenset({"Extension"}),
        key=re.compile(r"_value[A-Z][A-Za-z0-9]*"),
    ),
    ErrorFilter(
        "meta-open-type",
        frozenset({"extra_forbidden"}),
        "R4 allows Meta in value[x] open types, R4B does not; validated as Meta",
        "http://hl7.org/fhir/R4/datatypes.html#open",
        models=frozenset({"Extension", "ElementDefinition", "ElementDefinitionExample"}),
        key=re.compile(r"(value|defaultValue|fixed|pattern)Meta"),
    ),
    ErrorFilter(
        "code-unicode-whitespace",
        frozenset({"string_pattern_mismatch"}),
        "R4B applies the code regex with Unicode \\s, so U+00A0 counts as whitespace; FHIR "
        "regexes use XML Schema \\s (space, tab, CR, LF). Codes are checked by primitives.py",
        "https://www.w3.org/TR/xmlschema-2/#charcter-classes",
        element_types=frozenset({"code"}),
    ),
    ErrorFilter(
        "uuid-version-4",
        frozenset({"uuid_version", "uuid_parsing", "uuid_type"}),
        "R4B requires a version-4 UUID; R4 uuid is any urn:uuid: UUID. Checked by primitives.py",
        "http://hl7.org/fhir/R4/datatypes.html#uuid",
        element_types=frozenset({"uuid"}),
    ),
    ErrorFilter(
        "null-array-item",
        frozenset({"list_type"}),
        "R4B reports a null array item on the array; the JSON walk reports it on the item",
        "http://hl7.org/fhir/R4/json.html",
        ctx_key="field",
    ),
)

# Invalid R4 that R4B accepts; each is rejected by fhir_server.validation.walk.
R4B_LENIENCIES: Mapping[str, str] = {
    "lax-primitive-kinds": 'pydantic lax mode takes "true"/1 as boolean, "5"/5.0/true as '
    'integer, "1.5" as decimal; R4 JSON requires the JSON kind (json.html#primitive)',
    "null-and-empty": "null values, {} and [] are accepted; R4 JSON forbids them (json.html)",
    "fhir-comments": "fhir_comments is accepted everywhere; it is not an R4 element",
    "nested-resource-type": "contained/entry resources without resourceType are validated as "
    "bare Resource, R4B-only types (e.g. Citation) are accepted, unknown ones raise KeyError",
    "id-length": "id is not limited to 64 characters (R4 regex [A-Za-z0-9\\-\\.]{1,64})",
    "uri-whitespace": "uri/url/canonical pattern \\S* is searched, not matched: never fails",
    "markdown-base64-xhtml": "empty markdown, malformed base64Binary and empty xhtml accepted",
    "uuid-form": "uuid without the urn:uuid: prefix or in upper case is accepted",
    "primitive-array-alignment": "value and _value arrays of different lengths are accepted",
}
