"""Is a Part-10 byte string whole? A raw walk over its data elements (PS3.5 §7, PS3.10 §7.1).

pydicom reads lazily and forgives: a file cut inside its pixel data, or before it, reads without
an error (``dcmread`` simply returns fewer elements, a short value is returned short). An archive
must not accept such a file as a success, so before anything is stored the byte string is walked
element by element: every defined length must fit in what remains, every undefined-length
sequence or encapsulated pixel data must reach its delimiter, and the walk must end exactly at
the end of the bytes. No value is decoded; the walk costs microseconds per element.

The walk also notes where each file meta and top-level element is (:class:`Layout`), so that the
header can be built from those places without reading the bytes a second time
(:mod:`fhir_server.imaging.header`).

Deflated transfer syntaxes are inflated first (a broken deflate stream is an error too).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PREAMBLE = 128
MAGIC = b"DICM"
#: VRs whose explicit-VR length field is 4 bytes after 2 reserved bytes (PS3.5 Table 7.1-1).
LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN",
                      b"UR", b"UT", b"UV"})  # fmt: skip
#: The VRs pydicom knows (pydicom.valuerep.VR), as written in explicit VR.
KNOWN_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS",
                       b"LO", b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL",
                       b"US"}) | LONG_VRS  # fmt: skip
UNDEFINED = 0xFFFFFFFF
ITEM = (0xFFFE, 0xE000)
ITEM_END = (0xFFFE, 0xE00D)
SEQUENCE_END = (0xFFFE, 0xE0DD)
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
MAX_DEPTH = 64
PIXEL_DATA = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_TAG = {"<": struct.Struct("<HH").unpack_from, ">": struct.Struct(">HH").unpack_from}
_U16 = {"<": struct.Struct("<H").unpack_from, ">": struct.Struct(">H").unpack_from}
_U32 = {"<": struct.Struct("<I").unpack_from, ">": struct.Struct(">I").unpack_from}
#: An element header: group, element, VR and its 2-byte length (explicit VR); group, element,
#: b"" and the 4-byte length (implicit VR).
_EXPLICIT = {o: struct.Struct(o + "HH2sH").unpack_from for o in "<>"}
_IMPLICIT = {o: struct.Struct(o + "HH0sI").unpack_from for o in "<>"}

#: Where one element is: (tag, VR as written — b"" in implicit VR —, value length, value offset).
Element = tuple[int, bytes, int, int]


class Incomplete(ValueError):
    """The bytes are not a whole Part-10 file; the message says where it breaks."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the data set starts and how it is encoded."""

    transfer_syntax: str
    dataset_offset: int
    #: The top level holds Pixel Data, Float or Double Float Pixel Data (7FE0,0010/0008/0009).
    pixel_data: bool = False
    #: The bytes the element offsets refer to: the file itself, or inflated when deflated.
    body: bytes = b""
    #: The data set was walked as explicit VR (it may be implicit under an explicit syntax).
    explicit: bool = True
    big_endian: bool = False
    #: The file meta elements (group 0002) and the data set's top-level elements, in order.
    meta: tuple[Element, ...] = ()
    elements: tuple[Element, ...] = ()
    #: The top level ended at a stray delimiter before the end of the bytes.
    delimited: bool = False
    #: The top-level tags increase strictly and every VR written is one pydicom knows.
    plain: bool = False
    #: A top-level element has an undefined length (a sequence or encapsulated pixel data).
    undefined: bool = False


def claimed_instance(data: bytes) -> str | None:
    """The Media Storage SOP Instance UID (0002,0003) the file meta information of ``data``
    claims, read without checking anything else (None when it cannot be found): a hint for
    work that may start before :func:`check`, never a substitute for it."""
    return _claimed(data, 0x0003)


def claimed_deflated(data: bytes) -> bool:
    """Whether the Transfer Syntax UID (0002,0010) ``data`` claims, read as
    :func:`claimed_instance` reads its UID, is a deflated one (:func:`check` inflates it)."""
    return _claimed(data, 0x0010) in DEFLATED


def _claimed(data: bytes, element: int) -> str | None:
    if data[PREAMBLE : PREAMBLE + 4] != MAGIC:
        return None
    offset = PREAMBLE + 4
    while offset + 8 <= len(data):
        group, found = struct.unpack_from("<HH", data, offset)
        if group != 0x0002:
            return None
        try:
            value, length = _explicit_header(data, offset, "<")
        except struct.error:
            return None
        if found == element:
            uid = data[value : value + length].rstrip(b"\0 ")
            return uid.decode("ascii") if uid.isascii() and uid else None
        offset = value + length
    return None


def check(data: bytes) -> Layout:
    """The layout of a whole Part-10 file, else :class:`Incomplete` naming the broken place."""
    if len(data) < PREAMBLE + 4 or data[PREAMBLE : PREAMBLE + 4] != MAGIC:
        raise Incomplete("not a DICOM Part-10 file: no 128-byte preamble and 'DICM' prefix")
    offset = PREAMBLE + 4
    transfer_syntax = ""
    meta_end = 0
    meta: list[Element] = []
    while offset < len(data):  # file meta: group 0002, always explicit VR little endian
        if len(data) - offset < 8:
            raise Incomplete(f"file meta information cut at byte {offset}")
        group, element = struct.unpack_from("<HH", data, offset)
        if group != 0x0002:
            break
        vr = data[offset + 4 : offset + 6]
        value, length = _explicit_header(data, offset, "<")
        if value + length > len(data):
            raise Incomplete(f"file meta element ({group:04X},{element:04X}) cut at byte {value}")
        if element == 0x0000 and length == 4:  # only to see a cut; group 0002 ends the meta
            meta_end = value + 4 + struct.unpack_from("<I", data, value)[0]
        if element == 0x0010:
            transfer_syntax = data[value : value + length].rstrip(b"\0 ").decode("ascii", "replace")
        meta.append((0x00020000 | element, vr, length, value))
        offset = value + length
    if offset < meta_end or offset >= len(data):
        raise Incomplete(
            f"the data end in or right after the file meta information (byte {offset})"
        )
    if not transfer_syntax:
        raise Incomplete("file meta information has no Transfer Syntax UID (0002,0010)")
    dataset_offset = offset
    body = data
    if transfer_syntax in DEFLATED:
        try:
            body = data[:offset] + zlib.decompress(data[offset:], -zlib.MAX_WBITS)
        except zlib.error as exc:
            raise Incomplete(f"deflated data set cannot be inflated: {exc}") from None
    # As pydicom does, a data set written in implicit VR under an explicit transfer syntax is
    # read as implicit: the first element's VR field tells.
    explicit = transfer_syntax != IMPLICIT_LE and body[offset + 4 : offset + 6].isalpha()
    order = ">" if transfer_syntax == EXPLICIT_BE else "<"
    top: list[Element] = []
    reached, plain, undefined = _walk_top(body, offset, explicit, order, top)
    return Layout(
        transfer_syntax, dataset_offset, _has_pixel_data(top), body, explicit,
        order == ">", tuple(meta), tuple(top), reached != len(body), plain, undefined,
    )  # fmt: skip


def _has_pixel_data(top: list[Element]) -> bool:
    """Pixel data at the top level (looked for from the end, where it is)."""
    return any(element[0] in PIXEL_DATA for element in reversed(top))


def _explicit_header(data: bytes, offset: int, order: str) -> tuple[int, int]:
    vr = data[offset + 4 : offset + 6]
    if vr in LONG_VRS:
        if len(data) - offset < 12:
            raise Incomplete(f"element header cut at byte {offset}")
        return offset + 12, _U32[order](data, offset + 8)[0]
    return offset + 8, _U16[order](data, offset + 6)[0]


def _walk_top(
    data: bytes, offset: int, explicit: bool, order: str, top: list[Element]
) -> tuple[int, bool, bool]:
    """:func:`_walk` over the top level, collecting where each element is in ``top``; returns
    the offset reached, whether the level is plain (tags strictly increasing, VRs known) and
    whether an element has an undefined length."""
    head = (_EXPLICIT if explicit else _IMPLICIT)[order]
    u32 = _U32[order]
    end = len(data)
    append = top.append
    known = KNOWN_VRS if explicit else frozenset({b""})
    long_vrs = LONG_VRS
    plain, undefined, last = True, False, -1
    try:  # a header cut short: unpack_from finds fewer than 8 (12) bytes left
        while offset < end:
            group, element, vr, length = head(data, offset)
            if group == 0xFFFE:
                if element == 0xE00D or element == 0xE0DD:
                    return offset, plain, undefined  # a stray delimiter: the caller tells
                where = f"({group:04X},{element:04X}) at byte {offset}"
                raise Incomplete(f"unexpected delimiter {where}")
            if vr in long_vrs:
                value, length = offset + 12, u32(data, offset + 8)[0]
            else:
                value = offset + 8
            tag = group << 16 | element
            if tag <= last or vr not in known:
                plain = False
            last = tag
            append((tag, vr, length, value))
            if value + length > end:  # an undefined length too (0xFFFFFFFF)
                where = f"({group:04X},{element:04X}) at byte {offset}"
                if length != UNDEFINED:
                    raise Incomplete(f"element {where} needs {length} bytes, {end - value} remain")
                undefined = True
                offset = _undefined(data, value, end, explicit, order, 0, where)
                continue
            offset = value + length
    except struct.error:
        raise Incomplete(f"element header cut at byte {offset}") from None
    if offset != end:
        raise Incomplete(f"element runs past its container at byte {offset}")
    return offset, plain, undefined


def _walk(data: bytes, offset: int, end: int, explicit: bool, order: str, depth: int) -> int:
    """Walk elements from ``offset`` up to ``end`` or an item/sequence delimiter (which the
    caller checks); returns the offset reached."""
    if depth > MAX_DEPTH:
        raise Incomplete("sequences nested too deep")
    # one unpack per element header: tag, VR (b"" in implicit VR) and the 2- or 4-byte length
    head = (_EXPLICIT if explicit else _IMPLICIT)[order]
    u32 = _U32[order]
    size = len(data)
    while offset < end:
        if end - offset < 8:
            raise Incomplete(f"element header cut at byte {offset}")
        group, element, vr, length = head(data, offset)
        if group == 0xFFFE:
            if element == 0xE00D or element == 0xE0DD:
                return offset  # the caller checks the delimiter
            raise Incomplete(f"unexpected delimiter ({group:04X},{element:04X}) at byte {offset}")
        if vr in LONG_VRS:
            if size - offset < 12:
                raise Incomplete(f"element header cut at byte {offset}")
            value, length = offset + 12, u32(data, offset + 8)[0]
        else:
            value = offset + 8
        if length == UNDEFINED:
            where = f"({group:04X},{element:04X}) at byte {offset}"
            offset = _undefined(data, value, end, explicit, order, depth, where)
            continue
        if value + length > end:
            where = f"({group:04X},{element:04X}) at byte {offset}"
            raise Incomplete(f"element {where} needs {length} bytes, {end - value} remain")
        offset = value + length
    if offset != end:
        raise Incomplete(f"element runs past its container at byte {offset}")
    return offset


def _undefined(
    data: bytes, offset: int, end: int, explicit: bool, order: str, depth: int, where: str
) -> int:
    """Items of an undefined-length sequence or encapsulated pixel data, up to and past the
    sequence delimiter."""
    unpack_tag, u32 = _TAG[order], _U32[order]
    while True:
        if end - offset < 8:
            raise Incomplete(f"sequence {where} has no delimiter: the data end at byte {offset}")
        tag = unpack_tag(data, offset)
        length = u32(data, offset + 4)[0]
        if tag == SEQUENCE_END:
            return offset + 8
        if tag != ITEM:
            raise Incomplete(f"sequence {where}: expected an item at byte {offset}")
        offset += 8
        if length == UNDEFINED:
            offset = _walk(data, offset, end, explicit, order, depth + 1)
            if end - offset < 8 or unpack_tag(data, offset) != ITEM_END:
                raise Incomplete(f"item of sequence {where} has no delimiter")
            offset += 8
        elif offset + length > end:
            raise Incomplete(f"item of {where} needs {length} bytes, {end - offset} remain")
        else:
            offset += length
