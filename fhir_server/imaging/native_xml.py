"""DICOM JSON (PS3.18 Annex F) as the Native DICOM Model XML (PS3.19 A.1), for the DICOMweb
answers a client asks for as ``application/dicom+xml`` (QIDO-RS results, WADO-RS metadata,
the STOW-RS response: PS3.18 Table 10.4.4-1 and its QIDO and STOW counterparts).

Every attribute of the JSON object becomes a ``DicomAttribute`` (``tag``, ``vr``, ``keyword`` for
a standard one, ``privateCreator`` for a private one, found in the same data set) in ascending
tag order, with its values as ``Value``, ``PersonName`` (each component group split into its
five components), ``Item`` (a sequence's data sets), ``BulkData`` (a BulkDataURI) or
``InlineBinary``, each numbered from 1. Text a document cannot carry (control characters XML 1.0
forbids) is replaced by U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from xml.etree import ElementTree

from pydicom.datadict import keyword_for_tag

NAMESPACE: Final = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
#: A person name's components in the order of its ``^``-separated parts (PS3.5 6.2).
NAME_PARTS: Final = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
GROUPS: Final = ("Alphabetic", "Ideographic", "Phonetic")
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def document(attributes: Mapping[str, Any]) -> bytes:
    """One DICOM JSON object as a NativeDicomModel XML document (UTF-8, with its declaration)."""
    root = ElementTree.Element("NativeDicomModel", {"xmlns": NAMESPACE, "xml:space": "preserve"})
    _attributes(root, attributes)
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


def documents(objects: Iterable[Mapping[str, Any]]) -> list[bytes]:
    return [document(item) for item in objects]


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _FORBIDDEN.sub("\ufffd", str(value))


def _attributes(parent: ElementTree.Element, attributes: Mapping[str, Any]) -> None:
    for tag in sorted(attributes, key=lambda t: int(t, 16)):
        item = attributes[tag]
        if not isinstance(item, Mapping):
            continue
        vr = str(item.get("vr", "UN"))
        fields = {"tag": tag.upper(), "vr": vr}
        number = int(tag, 16)
        group, element = number >> 16, number & 0xFFFF
        if group % 2 == 0:
            keyword = keyword_for_tag(number)
            if keyword:
                fields["keyword"] = keyword
        elif element > 0x00FF:
            creator = attributes.get(f"{group:04X}00{element >> 8:02X}")
            values = creator.get("Value") if isinstance(creator, Mapping) else None
            if values:
                fields["privateCreator"] = _text(values[0])
        node = ElementTree.SubElement(parent, "DicomAttribute", fields)
        _values(node, vr, item)


def _values(node: ElementTree.Element, vr: str, item: Mapping[str, Any]) -> None:
    if "BulkDataURI" in item:
        ElementTree.SubElement(node, "BulkData", {"uri": _text(item["BulkDataURI"])})
        return
    if "InlineBinary" in item:
        ElementTree.SubElement(node, "InlineBinary").text = _text(item["InlineBinary"])
        return
    for n, value in enumerate(item.get("Value") or [], start=1):
        number = {"number": str(n)}
        if vr == "SQ":
            _attributes(ElementTree.SubElement(node, "Item", number), value or {})
        elif vr == "PN":
            _person_name(ElementTree.SubElement(node, "PersonName", number), value)
        else:
            element = ElementTree.SubElement(node, "Value", number)
            if value is not None:
                element.text = _text(value)


def _person_name(node: ElementTree.Element, value: Any) -> None:
    groups = value if isinstance(value, Mapping) else {"Alphabetic": value}
    for group in GROUPS:
        text = groups.get(group)
        if not text:
            continue
        holder = ElementTree.SubElement(node, group)
        for name, part in zip(NAME_PARTS, str(text).split("^"), strict=False):
            if part:
                ElementTree.SubElement(holder, name).text = _text(part)
