"""Compare an R4 StructureDefinition snapshot with the R4B model fhir.resources ships for it.

Used by the tests to prove that :mod:`fhir_server.validation.r4_gaps` lists exactly the
differences, so the list cannot drift from the models. Works through the neutral APIs only
(``r4`` tables or snapshot elements, and ``models.fields``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fhir_server.core import models
from fhir_server.core.r4 import ElementInfo
from fhir_server.validation.primitives import PRIMITIVES

SYSTEM_STRING = "http://hl7.org/fhirpath/System.String"
PRIMITIVE_CODES = frozenset(PRIMITIVES)

Children = Callable[[str], Mapping[str, ElementInfo]]
Diff = tuple[str, str, str]  # (R4B model, JSON name, what differs)


def _expected(children: Children, path: str) -> dict[str, tuple[str, bool, bool, str | None]]:
    """JSON name -> (R4 type, is array, required, sub-path of backbone content)."""
    out: dict[str, tuple[str, bool, bool, str | None]] = {}
    for info in children(path).values():
        if info.is_choice:
            stem = info.name[:-3]
            for code in info.types:
                out[stem + code[0].upper() + code[1:]] = (code, False, False, None)
            continue
        ref = info.content_reference
        backbone = info.types[0] in ("BackboneElement", "Element") if info.types else False
        sub = ref or (info.path if backbone else None)
        out[info.name] = (info.types[0], info.is_array, info.min > 0, sub)
    return out


def diff_model(children: Children, path: str, model: str, seen: set[tuple[str, str]]) -> list[Diff]:
    """Differences between the R4 element ``path`` and the R4B model, recursively."""
    if (path, model) in seen:
        return []
    seen.add((path, model))
    specs = models.fields(model)
    expected = _expected(children, path)
    out: list[Diff] = []
    for name in sorted(expected.keys() | specs.keys()):
        if name not in specs:
            out.append((model, name, "r4-only"))
        elif name not in expected:
            out.append((model, name, "r4b-only"))
        else:
            out.extend(_compare(children, model, name, expected[name], specs[name], seen))
    return out


def _compare(
    children: Children,
    model: str,
    name: str,
    expected: tuple[str, bool, bool, str | None],
    spec: models.FieldSpec,
    seen: set[tuple[str, str]],
) -> list[Diff]:
    code, is_array, required, sub = expected
    out: list[Diff] = []
    if is_array != spec.is_list:
        out.append((model, name, "array"))
    if spec.choice is None and required != spec.required:
        out.append((model, name, "required"))
    if sub is not None:
        if spec.target is None:
            return [*out, (model, name, "type")]
        return out + diff_model(children, sub, spec.target, seen)
    if code == SYSTEM_STRING:
        if spec.type_code not in ("string", "id", "uri"):  # ids; Extension.url (fhir-type uri)
            out.append((model, name, "type"))
    elif code != spec.type_code:
        out.append((model, name, "type"))
    elif code in PRIMITIVE_CODES and not spec.primitive_extension:
        out.append((model, f"_{name}", "r4-only"))
    return out
