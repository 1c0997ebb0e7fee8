"""The header of a walked Part-10 file as a pydicom Dataset, without parsing the bytes again.

:func:`fhir_server.imaging.part10.check` has already found where every file meta and top-level
element is. :func:`read` turns those places into pydicom raw elements — the very tuples
``pydicom.dcmread(..., stop_before_pixels=True)`` builds — so the Dataset is the one dcmread would
give: values are converted lazily on access, sequences of defined length included, and an
undefined-length sequence is read with pydicom's own ``read_sequence`` at the place dcmread would
read it. Only what pydicom reads in its own way falls back to ``dcmread`` (``read`` returns None):
a deflated data set, a data set whose VR encoding differs from its transfer syntax's, an unknown
VR, a command set (group 0000) after the file meta, an undefined-length element that is not a
sequence before the pixel data, or a stray delimiter at the top level.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from types import MappingProxyType

from pydicom import config
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, empty_value_for_VR
from pydicom.dataset import Dataset
from pydicom.filereader import read_sequence
from pydicom.tag import BaseTag
from pydicom.uid import PrivateTransferSyntaxes
from pydicom.valuerep import VR
from pydicom.values import convert_string

from fhir_server.imaging.part10 import (
    DEFLATED,
    EXPLICIT_BE,
    IMPLICIT_LE,
    MAGIC,
    PIXEL_DATA,
    PREAMBLE,
    UNDEFINED,
    Element,
    Layout,
)

#: The VRs pydicom knows, as written in explicit VR (pydicom.filereader.ENCODED_VR), and as str.
KNOWN_VRS = MappingProxyType({vr.encode("ascii"): str(vr) for vr in VR})
SPECIFIC_CHARACTER_SET = 0x00080005
Elements = dict[BaseTag, RawDataElement | DataElement]


@dataclass(frozen=True, slots=True)
class Header:
    """The data set up to its pixel data, and the file meta information."""

    dataset: Dataset
    meta: Dataset


def readable(layout: Layout) -> bool:
    """Whether :func:`read` may build the header from the walk: not deflated nor private, the
    data set's and the file meta's VR encoding as their transfer syntaxes say, VRs pydicom
    knows in the file meta (the data set's elements are checked as they are built)."""
    syntax = layout.transfer_syntax
    if syntax in DEFLATED or syntax in PrivateTransferSyntaxes or layout.delimited:
        return False
    implicit = syntax == IMPLICIT_LE
    body, elements = layout.body, layout.elements
    if layout.explicit == implicit or not elements or elements[0][0] >> 16 == 0:
        return False
    if _looks_implicit(body, layout.dataset_offset) != implicit:
        return False
    if not layout.meta or _looks_implicit(body, PREAMBLE + len(MAGIC)):
        return False
    return all(vr in KNOWN_VRS for _, vr, _, _ in layout.meta)


def read(layout: Layout) -> Header | None:
    """The header as ``dcmread(stop_before_pixels=True)`` reads it; None where pydicom would
    read the file in a way of its own (see the module docstring): use dcmread then."""
    if not readable(layout):
        return None
    implicit = layout.transfer_syntax == IMPLICIT_LE
    little = layout.transfer_syntax != EXPLICIT_BE
    found = _dataset(layout.body, layout.elements, implicit, little)
    file_meta = meta(layout.body, layout.meta)
    if file_meta is None or found is None:
        return None
    # as read_partial does at its end (which converts the Specific Character Set)
    found.set_original_encoding(implicit, little, found._character_set)
    return Header(found, file_meta)


def dataset_of(layout: Layout, elements: tuple[Element, ...]) -> Dataset | None:
    """A Dataset of some of the walked top-level elements, built as :func:`read` builds the
    whole one (None: one of them is not read from the walk)."""
    implicit = layout.transfer_syntax == IMPLICIT_LE
    little = layout.transfer_syntax != EXPLICIT_BE
    return _dataset(layout.body, elements, implicit, little)


def _looks_implicit(body: bytes, offset: int) -> bool:
    """pydicom's test on a data set's first element (filereader._is_implicit_vr)."""
    first, second = body[offset + 4], body[offset + 5]
    return not (0x40 < first < 0x5B and 0x40 < second < 0x5B)


def meta(body: bytes, elements: tuple[Element, ...]) -> Dataset | None:
    """The file meta information as dcmread reads it (None: a VR pydicom does not know)."""
    raw: Elements = {}
    for tag, vr, length, offset in elements:
        name = KNOWN_VRS.get(vr)
        if name is None:
            return None
        value = body[offset : offset + length] if length else _empty(name)
        raw[BaseTag(tag)] = RawDataElement(BaseTag(tag), name, length, value, offset, False, True)
    dataset = Dataset(raw)
    dataset.set_original_encoding(False, True, default_encoding)
    return dataset


def _dataset(
    body: bytes, elements: tuple[Element, ...], implicit: bool, little: bool
) -> Dataset | None:
    """The top-level elements before the pixel data, as dcmread's generator yields them."""
    raw: Elements = {}
    encoding: str | list[str] = default_encoding
    make = RawDataElement._make  # the tuple as the generator builds it, without keyword defaults
    names = KNOWN_VRS
    for tag, vr, length, offset in elements:
        if tag in PIXEL_DATA:
            break
        name: str | None = None
        if not implicit:
            name = names.get(vr)
            if name is None:
                return None
        key = BaseTag(tag)
        if length == UNDEFINED:
            sequence = _undefined_sequence(body, tag, name, offset, implicit, little, encoding)
            if sequence is None:
                return None
            raw[key] = sequence
            continue
        value = body[offset : offset + length] if length else _empty(name)
        if tag == SPECIFIC_CHARACTER_SET:
            encoding = convert_encodings(convert_string(value or b"", little))
        raw[key] = make((key, name, length, value, offset, implicit, little, True, False))
    return Dataset(raw)


def _empty(name: str | None) -> bytes | None:
    """The raw value of an empty element, as dcmread gives it (b"" or None)."""
    value = empty_value_for_VR(name, raw=True)
    return value if isinstance(value, bytes) else None


def _undefined_sequence(
    body: bytes,
    tag: int,
    name: str | None,
    offset: int,
    implicit: bool,
    little: bool,
    encoding: str | list[str],
) -> DataElement | None:
    """An undefined-length sequence read as dcmread reads it (None: not a sequence)."""
    if name == VR.UN and config.settings.infer_sq_for_un_vr:
        name = VR.SQ
    if name is None or (name == VR.UN and config.replace_un_with_known_vr):
        try:
            name = dictionary_VR(tag)
        except KeyError:
            return None
    if name != VR.SQ:
        return None
    stream = BytesIO(body)
    stream.seek(offset)
    sequence = read_sequence(stream, implicit, little, UNDEFINED, encoding)
    return DataElement(BaseTag(tag), VR.SQ, sequence, offset, is_undefined_length=True)
