"""$validate-code rules (http://hl7.org/fhir/R4/valueset-operation-validate-code.html and
codesystem-operation-validate-code.html).

* a CodeableConcept is valid when any of its codings is (messages of the others are kept);
* a wrong ``display`` does not make the code invalid: ``result`` stays true, with a message
  giving the display the code system has;
* an abstract (``notSelectable``) concept is invalid when the caller says abstract concepts are
  not appropriate (``abstract=false``);
* an inactive concept is valid with a message saying so;
* a code without a system matches a value set by code alone when exactly one system has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fhir_server.core.errors import ResourceNotFound
from fhir_server.terminology.codesystems import CodeSystemIndex, Concept
from fhir_server.terminology.expand import Entry, Expansion


@dataclass(frozen=True, slots=True)
class Coding:
    """One code to check (from code+system+display, a Coding or a CodeableConcept coding)."""

    system: str | None
    code: str
    display: str | None = None
    version: str | None = None


class CodeSystems(Protocol):
    def code_system(self, reference: str) -> CodeSystemIndex | None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    valid: bool
    message: str | None = None
    display: str | None = None


def unknown_code(index: CodeSystemIndex, code: str) -> ResourceNotFound:
    return ResourceNotFound(
        f"Code '{code}' is not in CodeSystem '{index.url}'"
        + ("" if index.complete else f" (which holds only part of its codes: {index.content})"),
        expression=["code"],
    )


def in_value_set(
    systems: CodeSystems, expansion: Expansion, codings: Sequence[Coding], abstract: bool
) -> dict[str, Any]:
    by_key = {(e.system, e.code): e for e in expansion.entries}
    name = expansion.url or "the value set"

    def check(coding: Coding) -> Verdict:
        entry = _find(by_key, expansion.entries, coding)
        if entry is None:
            where = f" from system '{coding.system}'" if coding.system else ""
            return Verdict(False, f"The code '{coding.code}'{where} is not in value set '{name}'")
        index = systems.code_system(entry.system)
        concept = index.get(entry.code) if index is not None else None
        return _concept_verdict(coding, concept, entry.display, entry.abstract, abstract)

    return _parameters([check(c) for c in codings])


def in_code_system(
    index: CodeSystemIndex, codings: Sequence[Coding], abstract: bool
) -> dict[str, Any]:
    def check(coding: Coding) -> Verdict:
        if coding.system is not None and coding.system != index.url:
            return Verdict(False, f"The system '{coding.system}' is not CodeSystem '{index.url}'")
        concept = index.get(coding.code)
        if concept is None:
            return Verdict(False, unknown_code(index, coding.code).diagnostics)
        return _concept_verdict(coding, concept, concept.display, concept.abstract, abstract)

    return _parameters([check(c) for c in codings])


def _find(
    by_key: dict[tuple[str, str], Entry], entries: Sequence[Entry], coding: Coding
) -> Entry | None:
    if coding.system is not None:
        return by_key.get((coding.system, coding.code))
    found = [e for e in entries if e.code == coding.code]
    return found[0] if len({e.system for e in found}) == 1 else None


def _concept_verdict(
    coding: Coding,
    concept: Concept | None,
    display: str | None,
    is_abstract: bool,
    abstract_allowed: bool,
) -> Verdict:
    if concept is not None:
        display = concept.display or display
        is_abstract = is_abstract or concept.abstract
    if is_abstract and not abstract_allowed:
        return Verdict(
            False,
            f"The code '{coding.code}' is abstract (not selectable) and abstract codes are not "
            "allowed here",
            display,
        )
    messages: list[str] = []
    if coding.display and not _display_ok(coding.display, display, concept):
        messages.append(
            f"The display '{coding.display}' is not a display of code '{coding.code}'; "
            f"it should be '{display}'"
        )
    if concept is not None and concept.inactive:
        messages.append(f"The code '{coding.code}' is inactive")
    return Verdict(True, "; ".join(messages) or None, display)


def _display_ok(given: str, display: str | None, concept: Concept | None) -> bool:
    known = {display} if display else set()
    if concept is not None:
        known |= {str(d.get("value")) for d in concept.designations if d.get("value")}
    if not known:
        return True  # nothing to compare with
    folded = " ".join(given.split()).lower()
    return any(" ".join(k.split()).lower() == folded for k in known)


def _parameters(verdicts: list[Verdict]) -> dict[str, Any]:
    valid = [v for v in verdicts if v.valid]
    chosen = valid[0] if valid else (verdicts[0] if verdicts else Verdict(False, "No code given"))
    parameter: list[dict[str, Any]] = [{"name": "result", "valueBoolean": bool(valid)}]
    messages = [v.message for v in ([chosen] if valid else verdicts) if v.message]
    if messages:
        parameter.append({"name": "message", "valueString": "; ".join(messages)})
    if chosen.display:
        parameter.append({"name": "display", "valueString": chosen.display})
    return {"resourceType": "Parameters", "parameter": parameter}
