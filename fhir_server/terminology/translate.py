"""$translate over ConceptMaps (http://hl7.org/fhir/R4/conceptmap-operation-translate.html).

The maps used are the one named by ``url``, else every ConceptMap whose source/target value sets
match ``source``/``target`` when given. Within a map, a ``group`` applies when its source system
is the coding's (its target system, ``reverse``) and, when ``targetsystem`` is given, its other
end is that. A code a group does not list falls to ``group.unmapped``: ``provided`` maps it to
itself, ``fixed`` to ``unmapped.code``, ``other-map`` to what that map says (one level).
``result`` is true when some match has an equivalence other than ``unmatched``/``disjoint``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_server.terminology.errors import UnknownConceptMap
from fhir_server.terminology.source import CanonicalSource
from fhir_server.terminology.validate import Coding

_NOT_MATCHES = frozenset(("unmatched", "disjoint"))


@dataclass(frozen=True, slots=True)
class TranslateRequest:
    codings: Sequence[Coding]
    url: str | None = None
    source: str | None = None
    target: str | None = None
    target_system: str | None = None
    reverse: bool = False
    concept_map: dict[str, Any] | None = None  # the map to use (an instance-level call)


@dataclass(slots=True)
class _Match:
    equivalence: str
    system: str | None
    code: str | None
    display: str | None
    source: str
    comment: str | None = None
    products: list[dict[str, Any]] = field(default_factory=list)

    def to_fhir(self) -> dict[str, Any]:
        concept = {
            k: v
            for k, v in (("system", self.system), ("code", self.code), ("display", self.display))
            if v
        }
        part: list[dict[str, Any]] = [{"name": "equivalence", "valueCode": self.equivalence}]
        if concept:
            part.append({"name": "concept", "valueCoding": concept})
        part += self.products
        part.append({"name": "source", "valueUri": self.source})
        return {"name": "match", "part": part}


def _maps(registry: CanonicalSource, request: TranslateRequest) -> list[dict[str, Any]]:
    if request.concept_map is not None:
        return [request.concept_map]
    if request.url is not None:
        found = registry.resolve("ConceptMap", request.url)
        if found is None:
            raise UnknownConceptMap(request.url, ("url",))
        return [found]
    out = []
    for concept_map in registry.all("ConceptMap"):
        source = concept_map.get("sourceUri") or concept_map.get("sourceCanonical")
        target = concept_map.get("targetUri") or concept_map.get("targetCanonical")
        if request.reverse:
            source, target = target, source
        if request.source is not None and not _same(source, request.source):
            continue
        if request.target is not None and not _same(target, request.target):
            continue
        out.append(concept_map)
    return out


def _same(canonical: object, wanted: str) -> bool:
    return isinstance(canonical, str) and canonical.partition("|")[0] == wanted.partition("|")[0]


def translate(registry: CanonicalSource, request: TranslateRequest) -> dict[str, Any]:
    matches: list[_Match] = []
    for concept_map in _maps(registry, request):
        for coding in request.codings:
            matches.extend(_in_map(registry, concept_map, coding, request, depth=0))
    found = [m for m in matches if m.equivalence not in _NOT_MATCHES]
    if found:
        message = None
    elif matches:
        message = "The concept maps say the code has no equivalent in the target"
    else:
        shown = ", ".join(f"{c.system or ''}|{c.code}" for c in request.codings)
        message = f"No concept map translates {shown}"
    parameter: list[dict[str, Any]] = [{"name": "result", "valueBoolean": bool(found)}]
    if message:
        parameter.append({"name": "message", "valueString": message})
    parameter += [m.to_fhir() for m in matches]
    return {"resourceType": "Parameters", "parameter": parameter}


def _in_map(
    registry: CanonicalSource,
    concept_map: dict[str, Any],
    coding: Coding,
    request: TranslateRequest,
    depth: int,
) -> Iterator[_Match]:
    url = str(concept_map.get("url", ""))
    for group in concept_map.get("group", ()):
        here, there = group.get("source"), group.get("target")
        if request.reverse:
            here, there = there, here
        if coding.system is not None and here != coding.system:
            continue
        if request.target_system is not None and there != request.target_system:
            continue
        listed = list(_listed(group, coding.code, request.reverse, url))
        if listed:
            yield from listed
        elif not request.reverse:
            yield from _unmapped(registry, group, coding, request, url, depth)


def _listed(group: dict[str, Any], code: str, reverse: bool, url: str) -> Iterator[_Match]:
    source, target = group.get("source"), group.get("target")
    for element in group.get("element", ()):
        for mapped in element.get("target", ()):
            equivalence = str(mapped.get("equivalence", "equivalent"))
            products = [
                {"name": "product", "part": [{"name": "concept", "valueCoding": p}]}
                for p in mapped.get("product", ())
                if isinstance(p, dict)
            ]
            if not reverse and element.get("code") == code:
                yield _Match(
                    equivalence, target, mapped.get("code"), mapped.get("display"), url,
                    mapped.get("comment"), products,
                )  # fmt: skip
            elif reverse and mapped.get("code") == code:
                yield _Match(equivalence, source, element.get("code"), element.get("display"), url)
        if not element.get("target") and element.get("code") == code and not reverse:
            yield _Match("unmatched", None, None, None, url)


def _unmapped(
    registry: CanonicalSource,
    group: dict[str, Any],
    coding: Coding,
    request: TranslateRequest,
    url: str,
    depth: int,
) -> Iterator[_Match]:
    unmapped = group.get("unmapped")
    if not isinstance(unmapped, dict):
        return
    mode, target = unmapped.get("mode"), group.get("target")
    if mode == "provided":
        yield _Match("equal", target, coding.code, coding.display, url)
    elif mode == "fixed":
        yield _Match("inexact", target, unmapped.get("code"), unmapped.get("display"), url)
    elif mode == "other-map" and depth == 0 and isinstance(unmapped.get("url"), str):
        other = registry.resolve("ConceptMap", unmapped["url"])
        if other is not None:
            yield from _in_map(registry, other, coding, request, depth + 1)
