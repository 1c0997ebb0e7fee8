"""The header of a walked Part-10 file read straight from its element bytes (issue 9).

:func:`fhir_server.imaging.part10.check` has found where every top-level element is. The few
attributes the identity checks and the RO-14 gate read (UIDs, Modality, Image Type, Patient ID,
…) are decoded here from those bytes, without a pydicom Dataset, when their value is *plain*:
printable ASCII in the VR the data dictionary gives, with no leading or trailing space in a
value, no empty value among several, a person name without component groups, decimal strings
that are numbers. Then what pydicom would make of the value is known exactly (its strings split
on backslash, stripped as its converters strip them) and the character set does not matter.

Anything else — a value that is not plain — is read through the very Dataset
``dcmread(stop_before_pixels=True)`` gives (:mod:`fhir_server.imaging.header`), built on first
need only; a sequence the gate looks into is read from a Dataset of that element alone (the
functional groups from the whole one). Each top-level element read is remembered
(:attr:`RawHeader.touched`):
pydicom converts an element it reads, and the index JSON of a converted element is pydicom's
(:mod:`fhir_server.imaging.raw_json` keeps that). :meth:`RawHeader.of` gives None for a file
the Dataset-based path must read altogether (see :func:`fhir_server.imaging.header.readable`).
"""

from __future__ import annotations

import re
from operator import itemgetter
from typing import Any

import pydicom
from pydicom._dicom_dict import DicomDictionary
from pydicom.datadict import dictionary_VR, tag_for_keyword

from fhir_server.imaging import header
from fhir_server.imaging.attributes import CHARSETS, SINGLE_VALUED
from fhir_server.imaging.part10 import PIXEL_DATA, UNDEFINED, Element, Layout

#: A value pydicom decodes the same whatever the character set and whatever it strips.
PRINTABLE = re.compile(rb"[\x20-\x7e]*")
#: A decimal string pydicom reads as DSfloat, its text kept (PS3.5 Table 6.2-1).
DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
SPECIFIC_CHARACTER_SET = 0x00080005
#: Shared and Per-frame Functional Groups Sequences (5200,9229) and (5200,9230).
FUNCTIONAL_GROUPS = frozenset({0x52009229, 0x52009230})
#: VRs whose values are plain strings once split (no person-name groups, no numbers).
STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI",
                        "UR", "UT"})  # fmt: skip
_TAG, _LENGTH = itemgetter(0), itemgetter(2)
#: Where one element is (part10.Element): tag, VR as written (b"" in implicit VR), length, offset.
Entry = Element


class Unusual(Exception):
    """The file is read the Dataset way after all: the walk said its header could be built
    from it, :func:`fhir_server.imaging.header.read` found otherwise."""


#: Values read before (:meth:`RawHeader.plain`), by tag, VR as written and bytes, up to
#: ``_PLAIN_MAX`` of them of at most ``_PLAIN_BYTES`` bytes each.
_PLAIN: dict[tuple[int, bytes, bytes], list[str] | None] = {}
_PLAIN_MAX = 4096
_PLAIN_BYTES = 1024
_UNSEEN: Any = object()


class RawHeader:
    """The top-level elements up to the pixel data, by tag, and what has been read of them."""

    __slots__ = ("_dataset", "_parts", "_sequences", "body", "charset", "entries", "layout",
                 "little", "touched", "undefined")  # fmt: skip

    def __init__(self, layout: Layout, entries: dict[int, Entry]) -> None:
        self.layout = layout
        self.body = layout.body
        self.little = not layout.big_endian
        self.entries = entries
        self.touched: set[int] = set()
        self._parts: dict[int, list[str] | None] = {}
        self._sequences: dict[int, Any] = {}
        self._dataset: pydicom.Dataset | None = None
        self.charset = "ascii"
        #: A top-level sequence of undefined length: pydicom reads it while reading the file.
        self.undefined = False

    @classmethod
    def of(cls, layout: Layout) -> RawHeader | None:
        """The raw header, or None when the file is read the Dataset way (deflated, odd
        encodings, unknown VRs, elements out of order, a character set of another kind…)."""
        if not header.readable(layout):
            return None
        entries = _entries(layout)
        if entries is None:
            return None
        found = cls(layout, entries)
        found.undefined = layout.undefined and UNDEFINED in map(_LENGTH, entries.values())
        charset = found._charset()
        if charset is None:
            return None
        found.charset = charset
        return found

    # --- what the checks read -------------------------------------------------------------

    def __contains__(self, keyword: object) -> bool:
        tag = tag_for_keyword(keyword) if isinstance(keyword, str) else keyword
        return tag in self.entries

    def sop_class(self) -> str:
        """The SOP Class UID as the gate reads it ('' when absent)."""
        tag = 0x00080016
        if tag not in self.entries:
            return ""
        parts = self.value_parts(tag)
        if parts is not None and len(parts) == 1:
            return parts[0]
        return str(self.converted(tag)).strip()

    def value_parts(self, tag: int) -> list[str] | None:
        """The element's values as pydicom's strings, read from the bytes; None when absent
        (nothing read) or when the value is not plain (then read it the Dataset way)."""
        entry = self.entries.get(tag)
        if entry is None:
            return None
        self.touched.add(tag)
        return self.plain(entry)

    def converted(self, tag: int) -> Any:
        """The element's value as pydicom converts it (the Dataset is built if need be)."""
        self.touched.add(tag)
        return self.dataset()[tag].value

    def sequence(self, tag: int) -> Any:
        """A sequence's value as pydicom converts it: from a Dataset of that element alone
        (and the Specific Character Set its items inherit) until the whole one is built.
        The functional groups are read from the whole Dataset: the gate reads every element
        of their items, some of which take their VR from the top level (US or SS…)."""
        self.touched.add(tag)
        if tag in self._sequences:
            return self._sequences[tag]
        if self._dataset is None and tag not in FUNCTIONAL_GROUPS:
            picked = (self.entries.get(SPECIFIC_CHARACTER_SET), self.entries[tag])
            alone = header.dataset_of(self.layout, tuple(e for e in picked if e is not None))
            if alone is not None:
                self._sequences[tag] = alone[tag].value  # read once, as a Dataset keeps it
                return self._sequences[tag]
        return self.dataset()[tag].value

    def uid(self, tag: int) -> str | None:
        """A UID as the identity checks read it: stripped of NULs and spaces, None if empty."""
        if tag not in self.entries:
            return None
        parts = self.value_parts(tag)
        if parts is not None and len(parts) == 1 and self.vr(self.entries[tag]) == "UI":
            return parts[0].strip("\0 ") or None
        try:
            value = self.converted(tag)
        except (ValueError, TypeError, KeyError):
            return None
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        text = str(value).strip("\0 ") if value is not None else ""
        return text or None

    def meta_uid(self, tag: int) -> str:
        """A file meta UID as the identity checks read it ('' when absent or empty)."""
        for found, vr, length, offset in reversed(self.layout.meta):
            if found == tag:
                raw = self.body[offset : offset + length].rstrip(b"\0 ")
                if vr == b"UI" and PRINTABLE.fullmatch(raw) and b"\\" not in raw:
                    return raw.decode("ascii").strip()
                meta = header.meta(self.body, self.layout.meta)
                return str(meta.get(tag).value or "").strip() if meta is not None else ""
        return ""

    def dataset(self) -> pydicom.Dataset:
        """The Dataset ``dcmread(stop_before_pixels=True)`` gives, built on first need."""
        if self._dataset is None:
            found = header.read(self.layout)
            if found is None:  # the readable layout was not read from the walk after all
                raise Unusual("header not read from the walk")
            self._dataset = found.dataset
        return self._dataset

    # --- reading values -------------------------------------------------------------------

    def vr(self, entry: Entry) -> str | None:
        """The element's VR: as written, else (implicit VR) the data dictionary's."""
        return header.KNOWN_VRS.get(entry[1]) if entry[1] else _expected(entry[0])

    def plain(self, entry: Entry) -> list[str] | None:
        """The value's parts as pydicom's strings when the value is plain, else None."""
        tag = entry[0]
        if tag in self._parts:
            return self._parts[tag]
        _, written, length, offset = entry
        if length == UNDEFINED or length > _PLAIN_BYTES:
            found = self._plain(entry)
        else:  # the instances of a series repeat most values: read once (never mutated)
            value = (tag, written, self.body[offset : offset + length])
            found = _PLAIN.get(value, _UNSEEN)
            if found is _UNSEEN:
                found = self._plain(entry)
                if len(_PLAIN) >= _PLAIN_MAX:
                    _PLAIN.clear()
                _PLAIN[value] = found
        self._parts[tag] = found
        return found

    def _plain(self, entry: Entry) -> list[str] | None:
        tag, written, length, offset = entry
        vr = _expected(tag)
        if vr is None or length == UNDEFINED or (written and header.KNOWN_VRS.get(written) != vr):
            return None
        raw = self.body[offset : offset + length].rstrip(b"\0 ")
        if not raw.isascii():
            return None
        text = raw.decode("ascii")
        if not text.isprintable():  # printable ASCII: the same whatever the character set
            return None
        if vr in SINGLE_VALUED:
            return [text]
        if text[:1] == " ":
            return None  # pydicom keeps a leading space here, strips it there
        if "\\" not in text:
            parts = [text]
        elif " \\" in text or "\\ " in text or not all(parts := text.split("\\")):
            return None  # spaces around a value, or an empty value among several
        if vr == "DS":
            return parts if length == 0 or all(DECIMAL.fullmatch(p) for p in parts) else None
        if vr == "PN":
            return None if "=" in text else parts
        return parts if vr in STRING_VRS else None

    def _charset(self) -> str | None:
        """The Python codec of the Specific Character Set (as the index JSON decodes text);
        None when pydicom must decode: another character set, or one read the Dataset way."""
        if SPECIFIC_CHARACTER_SET not in self.entries:
            return "ascii"
        parts = self.value_parts(SPECIFIC_CHARACTER_SET)
        if parts is None:
            return None
        names = {part.strip() for part in parts}
        return CHARSETS.get(parts[0].strip()) if len(names) == 1 else None


def _expected(tag: int) -> str | None:
    """The data dictionary's VR of ``tag`` (``dictionary_VR``; the table itself first)."""
    entry = DicomDictionary.get(tag)
    if entry is not None:
        return entry[0]
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def _entries(layout: Layout) -> dict[int, Entry] | None:
    """The top-level elements before the pixel data by tag, in increasing tag order, each with
    a VR pydicom knows and a defined length (an undefined length only for a sequence)."""
    if not layout.plain:
        return None  # out of order, twice, or a VR pydicom does not know
    elements = layout.elements
    cut = len(elements)
    for index in range(len(elements) - 1, -1, -1):  # the pixel data is at the end
        tag = elements[index][0]
        if tag < 0x7FE00008:
            break
        if tag in PIXEL_DATA:
            cut = index
    head = elements[:cut]
    if layout.undefined:
        for tag, vr, length, _ in head:
            if length == UNDEFINED and (header.KNOWN_VRS.get(vr) if vr else _expected(tag)) != "SQ":
                return None
    return dict(zip(map(_TAG, head), head, strict=True))
