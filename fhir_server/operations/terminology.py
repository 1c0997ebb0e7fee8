"""The terminology operations (http://hl7.org/fhir/R4/terminology-service.html):
``CodeSystem/$lookup``, ``CodeSystem/$validate-code``, ``ValueSet/$validate-code``,
``ValueSet/$expand`` and ``ConceptMap/$translate``, at type and instance level, answering as
their R4 OperationDefinitions say (Parameters; the expanded ValueSet for ``$expand``).

Parameters the definitions declare but this server does not use (``date``,
``displayLanguage``, ``context``…) are accepted and ignored; a value set, code system or map is
found by url in the registry (R4 core, the project's terminology, stored resources), or is the
stored resource of an instance-level call.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.errors import InvalidRequest
from fhir_server.operations.inputs import Inputs, bad
from fhir_server.operations.table import INSTANCE, TYPE, Invocation, OperationDef
from fhir_server.terminology import (
    Coding,
    ExpandOptions,
    TerminologyService,
    TranslateRequest,
    expanded_value_set,
)
from fhir_server.terminology.errors import UnknownValueSet

_CORE = "http://hl7.org/fhir/OperationDefinition/"
_BOTH = frozenset((TYPE, INSTANCE))
_COMMON = ("code", "system", "version", "display", "coding", "codeableConcept", "date")


def terminology_operations(terminology: TerminologyService, clock: Clock) -> list[OperationDef]:
    """The table rows of the terminology operations over one terminology service."""
    ops = _TerminologyOperations(terminology, clock)
    return [
        OperationDef(
            "lookup", _CORE + "CodeSystem-lookup", _BOTH, ("CodeSystem",), ops.lookup,
            frozenset(("code", "system", "version", "coding", "date", "displayLanguage",
                       "property")),
        ),
        OperationDef(
            "validate-code", _CORE + "CodeSystem-validate-code", _BOTH, ("CodeSystem",),
            ops.validate_code_system,
            frozenset((*_COMMON, "url", "codeSystem", "displayLanguage", "abstract")),
        ),
        OperationDef(
            "validate-code", _CORE + "ValueSet-validate-code", _BOTH, ("ValueSet",),
            ops.validate_value_set,
            frozenset((*_COMMON, "url", "context", "valueSet", "valueSetVersion",
                       "systemVersion", "displayLanguage", "abstract")),
        ),
        OperationDef(
            "expand", _CORE + "ValueSet-expand", _BOTH, ("ValueSet",), ops.expand,
            frozenset(("url", "valueSet", "valueSetVersion", "context", "contextDirection",
                       "filter", "date", "offset", "count", "includeDesignations",
                       "designation", "includeDefinition", "activeOnly", "excludeNested",
                       "excludeNotForUI", "excludePostCoordinated", "displayLanguage",
                       "exclude-system", "system-version", "check-system-version",
                       "force-system-version")),
            resource_input="valueSet",
        ),
        OperationDef(
            "translate", _CORE + "ConceptMap-translate", _BOTH, ("ConceptMap",), ops.translate,
            frozenset(("url", "conceptMap", "conceptMapVersion", "code", "system", "version",
                       "source", "coding", "codeableConcept", "target", "targetsystem",
                       "dependency", "reverse")),
        ),
    ]  # fmt: skip


class _TerminologyOperations:
    def __init__(self, terminology: TerminologyService, clock: Clock) -> None:
        self.terminology = terminology
        self.clock = clock

    async def lookup(self, call: Invocation) -> dict[str, Any]:
        inputs = call.inputs
        coding = inputs.complex("coding", "valueCoding")
        code = inputs.string("code") or (coding or {}).get("code")
        if not code:
            raise bad("code", "is required (or a 'coding')")
        if call.resource is not None:
            return self.terminology.lookup(call.resource, code, properties=_properties(inputs))
        system = inputs.string("system") or (coding or {}).get("system")
        if not system:
            raise bad("system", "is required at type level (or a 'coding' with a system)")
        version = inputs.string("version") or (coding or {}).get("version")
        return self.terminology.lookup(system, code, version, _properties(inputs))

    async def validate_code_system(self, call: Invocation) -> dict[str, Any]:
        inputs = call.inputs
        target: str | dict[str, Any] | None = call.resource or inputs.resource("codeSystem")
        if target is None:
            url = inputs.string("url") or inputs.string("system")
            if url is None:
                raise bad("url", "is required at type level (or a 'codeSystem' resource)")
            version = inputs.string("version")
            target = f"{url}|{version}" if version else url
        return self.terminology.validate_code(
            code_system=target, codings=_codings(inputs, "system"),
            abstract=inputs.boolean("abstract", default=True),
        )  # fmt: skip

    async def validate_value_set(self, call: Invocation) -> dict[str, Any]:
        inputs = call.inputs
        return self.terminology.validate_code(
            value_set=_value_set(call, inputs), codings=_codings(inputs, "system"),
            abstract=inputs.boolean("abstract", default=True),
        )  # fmt: skip

    async def expand(self, call: Invocation) -> dict[str, Any]:
        inputs = call.inputs
        target = _value_set(call, inputs)
        resource = target if isinstance(target, dict) else self.terminology.value_set(target)
        if resource is None:
            assert isinstance(target, str)
            raise UnknownValueSet(target, ("url",))
        expansion = self.terminology.expand(target)
        options = ExpandOptions(
            filter=inputs.string("filter"),
            count=inputs.integer("count"),
            offset=inputs.integer("offset") or 0,
            active_only=inputs.boolean("activeOnly"),
            include_designations=inputs.boolean("includeDesignations"),
        )
        return expanded_value_set(resource, expansion, options, to_instant(self.clock()))

    async def translate(self, call: Invocation) -> dict[str, Any]:
        inputs = call.inputs
        url = inputs.string("url")
        version = inputs.string("conceptMapVersion")
        request = TranslateRequest(
            codings=_codings(inputs, "system"),
            url=f"{url}|{version}" if url and version else url,
            source=inputs.string("source"),
            target=inputs.string("target"),
            target_system=inputs.string("targetsystem"),
            reverse=inputs.boolean("reverse"),
            concept_map=call.resource or inputs.resource("conceptMap"),
        )
        return self.terminology.translate(request)


def _value_set(call: Invocation, inputs: Inputs) -> str | dict[str, Any]:
    """The value set of a call: the stored one (instance), a ``valueSet`` resource, or ``url``
    (with ``valueSetVersion``)."""
    if call.resource is not None:
        return call.resource
    given = inputs.resource("valueSet")
    if given is not None:
        return given
    url = inputs.string("url")
    if url is None:
        raise bad("url", "is required at type level (or a 'valueSet' resource)")
    version = inputs.string("valueSetVersion")
    return f"{url}|{version}" if version and "|" not in url else url


def _codings(inputs: Inputs, system_name: str) -> list[Coding]:
    """The codes to check: ``code`` (+ ``system``, ``display``), a ``coding``, or every coding
    of a ``codeableConcept``: one (and only one) of them is required."""
    given = [n for n in ("code", "coding", "codeableConcept") if n in inputs.names()]
    if len(given) > 1:
        raise bad(given[1], f"give only one of code, coding and codeableConcept (not {given[0]})")
    out: list[Coding] = []
    code = inputs.string("code")
    if code is not None:
        out.append(
            Coding(inputs.string(system_name), code, inputs.string("display"),
                   inputs.string("version"))
        )  # fmt: skip
    coding = inputs.complex("coding", "valueCoding")
    if coding is not None:
        out.append(_coding(coding, "coding"))
    concept = inputs.complex("codeableConcept", "valueCodeableConcept")
    if concept is not None:
        out += [_coding(c, "codeableConcept") for c in concept.get("coding", ())]
    if not out:
        raise bad("code", "is required (or a 'coding' or a 'codeableConcept')")
    return out


def _coding(raw: Any, name: str) -> Coding:
    if not isinstance(raw, dict) or not isinstance(raw.get("code"), str):
        raise InvalidRequest(f"Parameter '{name}': a coding has no code", expression=[name])
    return Coding(raw.get("system"), raw["code"], raw.get("display"), raw.get("version"))


def _properties(inputs: Inputs) -> list[str]:
    return inputs.strings("property")
