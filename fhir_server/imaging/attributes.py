"""A header's simple attributes as DICOM JSON (PS3.18 Annex F), quickly.

pydicom's ``Dataset.to_json_dict`` converts every element through its value classes (about 5 ms
for a CT header here); the index needs only the top-level text and number attributes, so they are
decoded straight from the raw element bytes. Sequences and binary values (OB, OW, UN, pixel data,
…) are left out: they are served from the stored instance itself (WADO-RS metadata reads it).
Character sets other than the default repertoire, Latin-1 and UTF-8 go through pydicom's decoder.
:func:`header_json` reads a pydicom Dataset (a file read the Dataset way);
:mod:`fhir_server.imaging.raw_json` gives the same JSON from the raw elements of a walked file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from typing import Any

import pydicom
from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.valuerep import PersonName

Json = dict[str, Any]
TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI",
                      "UR", "UT"})  # fmt: skip
SINGLE_VALUED = frozenset({"LT", "ST", "UT", "UR"})
BINARY_NUMBERS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d"}
CHARSETS = {"": "ascii", "ISO_IR 6": "ascii", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8",
            "ISO 2022 IR 6": "ascii"}  # fmt: skip
MAX_VALUE_BYTES = 8192
SPECIFIC_CHARACTER_SET = 0x00080005


def tag_key(tag: int) -> str:
    return f"{tag:08X}"


def header_json(ds: pydicom.Dataset) -> Json:
    """The top-level text and number attributes of ``ds`` (group 0002 excluded) as DICOM JSON."""
    charset = _charset(ds)
    out: Json = {}
    # What ds.elements() yields, without its per-tag lookups and Python-level tag comparisons:
    # the elements in tag order, a raw one with a deferred (None) value converted.
    elements = ds._dict
    tags = list(map(int, elements))
    in_order = tags == sorted(tags)  # as read from a file, nearly always
    for key, raw in elements.items() if in_order else sorted(elements.items(), key=_tag_order):
        tag = int(key)
        if tag >> 16 == 0x0002 or tag >> 16 & 1:  # file meta and private groups
            continue
        if isinstance(raw, RawDataElement) and raw.value is None:
            raw = ds[key]
        if isinstance(raw, RawDataElement):
            vr = raw.VR or _vr(tag)
            if vr is None:
                continue
            value = raw.value
            if value is not None and len(value) > MAX_VALUE_BYTES:
                continue
            little = raw.is_little_endian
            item = _raw_json(vr, value or b"", charset, little) if charset else None
            if item is None and (vr in TEXT_VRS or vr in ("PN", "DS", "IS")):
                item = _element_json(ds[tag])
            elif item is None and vr in BINARY_NUMBERS:
                item = _numbers(vr, value or b"", little)
        else:
            item = _element_json(raw)
        if item is not None:
            out[tag_key(tag)] = item
    return out


def _tag_order(item: tuple[int, object]) -> int:
    return int(item[0])


def _charset(ds: pydicom.Dataset) -> str | None:
    """The Python codec for the data set's character set, None when pydicom must decode."""
    element = ds.get(SPECIFIC_CHARACTER_SET)
    if element is None:
        return "ascii"
    value = element.value
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        values = [str(v).strip() for v in value]
        return CHARSETS.get(values[0]) if len(set(values)) == 1 else None
    return CHARSETS.get(value.strip().split("\\")[0] if "\\" not in value.strip() else "?")


def _vr(tag: int) -> str | None:
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _raw_json(vr: str, value: bytes, charset: str, little: bool) -> Json | None:
    if vr in BINARY_NUMBERS:
        return _numbers(vr, value, little)
    if vr not in TEXT_VRS and vr not in ("PN", "DS", "IS"):
        return None
    try:
        text = value.decode("latin-1" if charset == "ascii" else charset)
    except UnicodeDecodeError:
        return None
    text = text.rstrip("\0 ") if vr != "UI" else text.rstrip("\0").strip()
    if not text:
        return {"vr": vr}
    parts = [text] if vr in SINGLE_VALUED else text.split("\\")
    if vr == "PN":
        return {"vr": vr, "Value": [_person(p) for p in parts]}
    if vr in ("DS", "IS"):
        numbers = [_number(p, vr) for p in parts]
        if any(n is None for n in numbers):
            return None  # a malformed number: let pydicom say what it makes of it
        return {"vr": vr, "Value": numbers}
    return {"vr": vr, "Value": [p.strip() if vr not in SINGLE_VALUED else p for p in parts]}


def _person(text: str) -> Json | None:
    """A PN value as DICOM JSON; an empty one (one of several, ``Doe\\\\Roe``) is null
    (PS3.18 F.2.5)."""
    if not text:
        return None
    groups = text.split("=")
    names = ("Alphabetic", "Ideographic", "Phonetic")
    return {name: group.strip() for name, group in zip(names, groups, strict=False) if group}


def _number(text: str, vr: str) -> int | float | None:
    text = text.strip()
    if not text:
        return None
    try:
        if vr == "IS":
            return int(text)
        number = float(text)
        return (
            int(number)
            if number.is_integer() and "." not in text and "e" not in text.lower()
            else number
        )
    except ValueError:
        return None


def _numbers(vr: str, value: bytes, little: bool) -> Json:
    code = BINARY_NUMBERS[vr]
    size = struct.calcsize(code)
    count = len(value) // size
    if count == 0:
        return {"vr": vr}
    numbers = struct.unpack(("<" if little else ">") + code * count, value[: count * size])
    return {"vr": vr, "Value": list(numbers)}


def _element_json(element: DataElement) -> Json | None:
    if element.VR in ("SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN", "AT"):
        return None
    try:
        data: Json = element.to_json_dict(None, MAX_VALUE_BYTES)
    except (ValueError, TypeError):
        return None
    except IndexError:  # pydicom cannot write an empty person name among several (Doe\\Roe)
        if element.VR != "PN":
            raise
        value = element.value
        names = [value] if isinstance(value, str | PersonName) else list(value)
        data = {"vr": "PN", "Value": [_person(str(name)) for name in names]}
    return data if "BulkDataURI" not in data and "InlineBinary" not in data else None


def values(attributes: Mapping[str, Any], keyword: str) -> list[Any]:
    """The values of an attribute of a DICOM JSON object by keyword ([] when absent)."""
    tag = tag_for_keyword(keyword)
    item = attributes.get(tag_key(tag)) if tag is not None else None
    return list(item.get("Value", [])) if isinstance(item, dict) else []


def first(attributes: Mapping[str, Any], keyword: str) -> str | None:
    """The first value as text (a person name's alphabetic group), None when absent or empty."""
    found = values(attributes, keyword)
    if not found or found[0] is None:
        return None
    value = found[0]
    if isinstance(value, dict):
        value = value.get("Alphabetic")
    text = str(value).strip() if value is not None else ""
    return text or None


def pick(attributes: Mapping[str, Any], keywords: Iterable[str]) -> Json:
    """The attributes named by ``keywords`` that are present."""
    out: Json = {}
    for keyword in keywords:
        tag = tag_for_keyword(keyword)
        if tag is not None and tag_key(tag) in attributes:
            out[tag_key(tag)] = attributes[tag_key(tag)]
    return out


def keyword(tag: str) -> str:
    """The keyword of a DICOM JSON tag key ('' when unknown)."""
    return keyword_for_tag(int(tag, 16)) or ""
