"""Terminology bindings and reference targets, as the profile walk checks them.

Bindings (http://hl7.org/fhir/R4/terminologies.html#strength): a ``required`` binding is an error
when the code is not in the value set; an ``extensible`` one a warning (the code may be an
extension of the value set, which only a human can judge); ``preferred`` and ``example`` are not
checked. A CodeableConcept meets the binding when one of its codings does; with a required binding
and no coding at all it fails. When the terminology service cannot tell (a value set over SNOMED CT,
LOINC, or not known here), nothing is reported: the server checks what it can check locally.

Reference targets: in a profile, ``targetProfile`` narrows what a Reference may point at; a
literal reference (``Patient/1``, an absolute URL, ``#contained``) must be to one of those types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fhir_server.conformance import canonical_key
from fhir_server.validation.profile_model import Binding, CompiledDefinition, ElementRule

if TYPE_CHECKING:
    from fhir_server.validation.profile_check import Terminology

_CHECKED = frozenset({"required", "extensible"})
_CODE_TYPES = frozenset({"code", "string", "uri", "canonical", "url", "id"})


def check_binding(
    value: Any, binding: Binding, type_code: str | None, terminology: Terminology
) -> tuple[str, str] | None:
    """(severity, detail) when the value breaks the binding, else None."""
    if binding.strength not in _CHECKED:
        return None
    url = binding.value_set
    name = canonical_key(url)[0]
    severity = "error" if binding.strength == "required" else "warning"
    if isinstance(value, str) and (type_code is None or type_code in _CODE_TYPES):
        if terminology.contains(url, None, value) is False:
            return severity, f"the code is not in the value set {name} ({binding.strength} binding)"
        return None
    if not isinstance(value, dict):
        return None
    if type_code == "CodeableConcept" or "coding" in value:
        return _codeable_concept(value, url, name, binding.strength, severity, terminology)
    if type_code in ("Coding", "Quantity") or "code" in value:
        code = value.get("code")
        if not isinstance(code, str):
            return None
        if terminology.contains(url, value.get("system"), code) is False:
            return severity, (
                f"the code (system {value.get('system') or 'none'}) is not in the value set "
                f"{name} ({binding.strength} binding)"
            )
    return None


def _codeable_concept(
    value: dict[str, Any],
    url: str,
    name: str,
    strength: str,
    severity: str,
    terminology: Terminology,
) -> tuple[str, str] | None:
    codings = [c for c in value.get("coding", []) if isinstance(c, dict)]
    coded = [c for c in codings if isinstance(c.get("code"), str)]
    if not coded:
        if strength == "required":
            return severity, f"no code given, and a code from the value set {name} is required"
        return None
    answers = [terminology.contains(url, c.get("system"), c["code"]) for c in coded]
    if any(a is True for a in answers) or all(a is None for a in answers):
        return None
    return severity, f"none of the codings is in the value set {name} ({strength} binding)"


def reference_target_problem(
    value: dict[str, Any],
    rule: ElementRule,
    resource: dict[str, Any],
    definitions: Callable[[str], CompiledDefinition | None],
) -> str | None:
    """Why the literal reference may not point where it does under this profile, or None."""
    reference = value.get("reference")
    if not isinstance(reference, str) or not reference:
        return None
    targets = [p for t in rule.types if t.code == "Reference" for p in t.target_profiles]
    if not targets:
        return None
    allowed: set[str] = set()
    for profile in targets:
        compiled = definitions(profile)
        allowed.add(compiled.type if compiled is not None else profile.rsplit("/", 1)[-1])
    if "Resource" in allowed:
        return None
    kind = _target_type(reference, resource)
    if kind is None or kind in allowed:
        return None
    names = ", ".join(sorted(allowed))
    return f"refers to a {kind}, but {rule.id} allows only {names}"


def _target_type(reference: str, resource: dict[str, Any]) -> str | None:
    if reference.startswith("#"):
        for contained in resource.get("contained", []):
            if isinstance(contained, dict) and contained.get("id") == reference[1:]:
                kind = contained.get("resourceType")
                return kind if isinstance(kind, str) else None
        return None
    if reference.startswith("urn:"):
        return None
    parts = reference.split("?", 1)[0].rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return parts[-2]
    return None
