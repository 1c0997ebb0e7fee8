"""Reading the attributes the RO-14 gate looks at: values, sequences, functional groups.

Helpers for :mod:`fhir_server.imaging.gate_checks`: normalised string values, the places where
derivation and source-image information may sit (top level, Derivation Image, Shared and
Per-frame Functional Groups; PS3.3 C.7.6.16, C.8.16), and the SOP class / defined-term tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from fhir_server.imaging.raw_header import FUNCTIONAL_GROUPS, RawHeader

#: A header as the gate reads it: a Dataset, or the raw elements of a walked file.
Header = pydicom.Dataset | RawHeader

SC_ROOT = "1.2.840.10008.5.1.4.1.1."
#: Where derivations may sit besides the header: functional groups, Derivation Image (0008,9124).
PLACES = FUNCTIONAL_GROUPS | {0x00089124}


@cache  # the same table every time: built once, on first use
def capture_classes() -> dict[str, str]:
    return {
        SC_ROOT + "7": "Secondary Capture Image Storage",
        SC_ROOT + "7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
        SC_ROOT + "7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
        SC_ROOT + "7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
        SC_ROOT + "7.4": "Multi-frame True Color Secondary Capture Image Storage",
        SC_ROOT + "77.1.4": "VL Photographic Image Storage",
        SC_ROOT + "77.1.4.1": "Video Photographic Image Storage",
    }


@cache  # the same table every time: built once, on first use
def document_classes() -> dict[str, str]:
    return {
        SC_ROOT + "104.1": "Encapsulated PDF Storage",
        SC_ROOT + "104.2": "Encapsulated CDA Storage",
        SC_ROOT + "104.3": "Encapsulated STL Storage",
        SC_ROOT + "104.4": "Encapsulated OBJ Storage",
        SC_ROOT + "104.5": "Encapsulated MTL Storage",
    }


@cache  # the same table every time: built once, on first use
def conversion_types() -> dict[str, str]:
    return {
        "DV": "digitized video",
        "DI": "digital interface (captured from another device)",
        "DF": "digitized film",
        "WSD": "workstation (screen capture)",
        "SD": "scanned document",
        "SI": "scanned image",
        "DRW": "drawing",
        "SYN": "synthetic image",
    }


def _raw(header: Any, keyword: str) -> Any:
    """The value of an element by keyword, None when absent (tag lookup: no __getattr__ cost)."""
    tag = tag_for_keyword(keyword)
    if tag is None or tag not in header:
        return None
    if isinstance(header, RawHeader):
        return header.converted(tag)
    return header[tag].value


def values(header: Any, keyword: str) -> list[str]:
    """The element's values as stripped upper-case strings; [] when absent or empty."""
    if isinstance(header, RawHeader):
        tag = tag_for_keyword(keyword)
        if tag is None or tag not in header.entries:
            return []
        parts = header.value_parts(tag)
        if parts is not None:
            return [text for part in parts if (text := part.strip().upper())]
    value = _raw(header, keyword)
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [text for v in value if (text := str(v).strip().upper())]
    text = str(value).strip().upper()
    return [text] if text else []


def items(header: Any, keyword: str) -> list[Any]:
    if isinstance(header, RawHeader):
        tag = tag_for_keyword(keyword)
        if tag is None or tag not in header.entries:
            return []
        value = header.sequence(tag)
    else:
        value = _raw(header, keyword)
    return list(value) if isinstance(value, Sequence) else []


def frame_groups(header: Header) -> Iterator[Any]:
    """The header, then every item of every functional-group macro (shared, then per frame)."""
    if isinstance(header, RawHeader) and not _holds(header, FUNCTIONAL_GROUPS):
        return iter((header,))  # no functional groups: the header alone, without a generator
    return _frame_groups(header)


def _holds(header: RawHeader, tags: frozenset[int]) -> bool:
    entries = header.entries
    return any(tag in entries for tag in tags)


def _frame_groups(header: Header) -> Iterator[Any]:
    yield header
    for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        for frame in items(header, group):
            for element in frame:
                if element.VR == "SQ":
                    yield from element.value


def derivations(header: Header) -> Iterator[Any]:
    """Every place a Derivation Code / Description / Source Image may sit."""
    if isinstance(header, RawHeader) and not _holds(header, PLACES):
        return iter((header,))  # the header alone, without a generator
    return _derivations(header)


def _derivations(header: Header) -> Iterator[Any]:
    for scope in frame_groups(header):
        yield scope
        yield from items(scope, "DerivationImageSequence")


def codes(items: list[Any]) -> set[str]:
    return {str(item.get("CodeValue", "")).strip() for item in items}


def is_image(header: Header) -> bool:
    """Objects with a General Image module (RT Dose/Image and other RT objects are not read)."""
    if sop_class(header).startswith(SC_ROOT + "481."):
        return False
    return "Rows" in header or "NumberOfFrames" in header


def sop_class(header: Header) -> str:
    if isinstance(header, RawHeader):
        return header.sop_class()
    return str(header.get("SOPClassUID", "")).strip()
