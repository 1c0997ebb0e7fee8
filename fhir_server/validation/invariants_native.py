"""Pure-Python versions of the R4 invariants that run everywhere or that fhirpathpy cannot run.

Each function takes the JSON value of one element instance (a :class:`Primitive` for a primitive
element) and says whether the invariant holds. They exist for two reasons:

- fhirpathpy 2.2.4 lacks the function: ``hasValue()`` (ele-1, on every element of every
  resource) and ``htmlChecks()`` (txt-1, txt-2 on every narrative);
- the invariant runs on a hot path, where fhirpathpy costs 50-150 µs per evaluation against about
  1 µs here: ext-1 (every extension) and dom-2..dom-6 (every resource).

Each native is checked against fhirpathpy on the R4 examples where fhirpathpy can evaluate the
original expression (tests/unit/validation/test_invariants_examples.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

XHTML = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# txt-1, from its XPath in the R4 Narrative StructureDefinition (the expression is htmlChecks()):
# "the basic html formatting elements and attributes described in chapters 7-11 (except section 4
# of chapter 9) and 15 of the HTML 4.0 standard, <a> elements (either name or href), images and
# internally contained style attributes". So no script, form, iframe, object, head, body, base,
# link, nor any event (on*) attribute. http://hl7.org/fhir/R4/narrative.html
TXT1_ELEMENTS = _names(
    "a abbr acronym b big blockquote br caption cite code col colgroup dd dfn div dl dt em "
    "h1 h2 h3 h4 h5 h6 hr i img li ol p pre q samp small span strong sub sup table tbody td "
    "tfoot th thead tr tt ul var"
)
TXT1_ATTRIBUTES = _names(
    "abbr accesskey align alt axis bgcolor border cellhalign cellpadding cellspacing "
    "cellvalign char charoff charset cite class colspan compact coords dir frame headers "
    "height href hreflang hspace id lang longdesc name nowrap rel rev rowspan rules scope "
    "shape span src start style summary tabindex title type valign value vspace width"
)
# xml:lang is the XHTML spelling of lang (the reference validator allows it too); namespace
# declarations are not attributes in XPath, so the XPath above never saw them.
TXT1_XML_ATTRIBUTES = frozenset({f"{{{XML_NS}}}lang"})


@dataclass(frozen=True, slots=True)
class Primitive:
    """One primitive element instance: its JSON ``value`` (None when absent) and ``element``, the
    ``_name`` sibling object holding its ``id`` and ``extension`` (None when absent).

    For ``"birthDate": "1970", "_birthDate": {"extension": [...]}`` the caller passes
    ``Primitive("1970", {"extension": [...]})``; a bare JSON value ``v`` is read as
    ``Primitive(v, None)``.
    """

    value: Any
    element: dict[str, Any] | None = None


def as_primitive(node: Any) -> Primitive:
    return node if isinstance(node, Primitive) else Primitive(node, None)


def ele_1(node: Any) -> bool:
    """``hasValue() or (children().count() > id.count())``: a value, or a child other than id."""
    if isinstance(node, dict):
        return any(key != "id" for key in node)
    primitive = as_primitive(node)
    if primitive.value is not None:
        return True
    return primitive.element is not None and any(key != "id" for key in primitive.element)


def ext_1(node: Any) -> bool:
    """``extension.exists() != value.exists()``: a value or extensions, not both."""
    if not isinstance(node, dict):
        return False
    has_value = any(key.startswith(("value", "_value")) for key in node)
    return bool(node.get("extension")) != has_value


def _contained(node: Any) -> list[dict[str, Any]]:
    contained = node.get("contained") if isinstance(node, dict) else None
    return [c for c in contained if isinstance(c, dict)] if isinstance(contained, list) else []


def dom_2(node: Any) -> bool:
    """``contained.contained.empty()``: contained resources do not contain resources."""
    return not any(c.get("contained") for c in _contained(node))


def dom_4(node: Any) -> bool:
    """``contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()``."""
    metas = [c.get("meta") for c in _contained(node)]
    return not any(
        isinstance(m, dict) and any(k in m for k in ("versionId", "lastUpdated", "_versionId"))
        for m in metas
    )


def dom_5(node: Any) -> bool:
    """``contained.meta.security.empty()``."""
    return not any(
        isinstance(c.get("meta"), dict) and c["meta"].get("security") for c in _contained(node)
    )


def dom_6(node: Any) -> bool:
    """``text.`div`.exists()``: a DomainResource has a narrative (a best practice, a warning)."""
    text = node.get("text") if isinstance(node, dict) else None
    return isinstance(text, dict) and ("div" in text or "_div" in text)


def _strings(value: Any, key: str | None = None) -> Iterator[tuple[str | None, str]]:
    """Every JSON string below ``value`` with the property name it sits under."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)


def dom_3(node: Any) -> bool:
    """Every contained resource is referenced from elsewhere in the resource, or refers to it.

    The expression: ``contained.where((('#'+id in (%resource.descendants().reference |
    %resource.descendants().as(canonical) | ...as(uri) | ...as(url))) or
    descendants().where(reference = '#').exists() or descendants().where(as(canonical) =
    '#').exists() ...).not()).trace('unmatched', id).empty()``. Without type information here,
    any string value equal to ``#id`` counts as a canonical/uri/url pointing at it: a string
    element holding exactly ``#id`` is not a realistic false negative. The ``%resource`` of a
    contained resource's invariants is the container itself, as the caller passes it.
    """
    contained = _contained(node)
    if not contained:
        return True
    pointers = {value for key, value in _strings(node) if value.startswith("#")}
    for resource in contained:
        if f"#{resource.get('id')}" in pointers:
            continue
        if any(value == "#" for _, value in _strings(resource)):
            continue
        return False
    return True


def _xhtml(div: Any) -> ET.Element | None:
    text = as_primitive(div).value
    if not isinstance(text, str) or "<!DOCTYPE" in text or "<!ENTITY" in text:
        return None
    try:
        root = ET.fromstring(text)
    except ET.ParseError:
        return None
    return root if root.tag == f"{{{XHTML}}}div" else None


def _allowed(element: ET.Element) -> bool:
    name = element.tag.removeprefix(f"{{{XHTML}}}")
    if name == element.tag or name not in TXT1_ELEMENTS:
        return False
    return all(a in TXT1_ATTRIBUTES or a in TXT1_XML_ATTRIBUTES for a in element.attrib)


def txt_1(node: Any) -> bool:
    """The narrative div is XHTML (a ``div`` in the XHTML namespace, well-formed, no DTD) whose
    elements and attributes are all on the txt-1 lists."""
    root = _xhtml(node)
    return root is not None and all(_allowed(e) for e in root.iter())


def txt_2(node: Any) -> bool:
    """Some non-whitespace text, or an ``img`` with a ``src`` (txt-2's XPath)."""
    root = _xhtml(node)
    if root is None:
        return False
    if "".join(root.itertext()).strip():
        return True
    return any(e.get("src") for e in root.iter(f"{{{XHTML}}}img"))


def html_checks(node: Any) -> bool:
    """``htmlChecks()`` used inside a larger expression: txt-1 and txt-2 together, as R5 defines
    it (http://hl7.org/fhir/R5/narrative.html)."""
    return txt_1(node) and txt_2(node)


Native = Callable[[Any], bool]

NATIVES: dict[str, Native] = {
    "ele-1": ele_1,
    "ext-1": ext_1,
    "dom-2": dom_2,
    "dom-3": dom_3,
    "dom-4": dom_4,
    "dom-5": dom_5,
    "dom-6": dom_6,
    "txt-1": txt_1,
    "txt-2": txt_2,
}
