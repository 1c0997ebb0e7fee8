"""Is a Part-10 byte string whole? A raw walk over its data elements (PS3.5 §7, PS3.10 §7.1).

pydicom reads lazily and forgives: a file cut inside its pixel data, or before it, reads without
an error (``dcmread`` simply returns fewer elements, a short value is returned short). An archive
must not accept such a file as a success, so before anything is stored the byte string is walked
element by element: every defined length must fit in what remains, every undefined-length
sequence or encapsulated pixel data must reach its delimiter, and the walk must end exactly at
the end of the bytes. No value is decoded; the walk costs microseconds per element.

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
UNDEFINED = 0xFFFFFFFF
ITEM = (0xFFFE, 0xE000)
ITEM_END = (0xFFFE, 0xE00D)
SEQUENCE_END = (0xFFFE, 0xE0DD)
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
MAX_DEPTH = 64
PIXEL_DATA = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})


class Incomplete(ValueError):
    """The bytes are not a whole Part-10 file; the message says where it breaks."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the data set starts and how it is encoded."""

    transfer_syntax: str
    dataset_offset: int
    #: The top level holds Pixel Data, Float or Double Float Pixel Data (7FE0,0010/0008/0009).
    pixel_data: bool = False


def check(data: bytes) -> Layout:
    """The layout of a whole Part-10 file, else :class:`Incomplete` naming the broken place."""
    if len(data) < PREAMBLE + 4 or data[PREAMBLE : PREAMBLE + 4] != MAGIC:
        raise Incomplete("not a DICOM Part-10 file: no 128-byte preamble and 'DICM' prefix")
    offset = PREAMBLE + 4
    transfer_syntax = ""
    meta_end = 0
    while offset < len(data):  # file meta: group 0002, always explicit VR little endian
        if len(data) - offset < 8:
            raise Incomplete(f"file meta information cut at byte {offset}")
        group, element = struct.unpack_from("<HH", data, offset)
        if group != 0x0002:
            break
        offset, length = _explicit_header(data, offset, "<")
        if offset + length > len(data):
            raise Incomplete(f"file meta element ({group:04X},{element:04X}) cut at byte {offset}")
        if element == 0x0000 and length == 4:  # only to see a cut; group 0002 ends the meta
            meta_end = offset + 4 + struct.unpack_from("<I", data, offset)[0]
        if element == 0x0010:
            transfer_syntax = (
                data[offset : offset + length].rstrip(b"\0 ").decode("ascii", "replace")
            )
        offset += length
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
    seen: list[int] = []
    _walk(body, offset, len(body), explicit, order, 0, seen)
    return Layout(transfer_syntax, dataset_offset, any(t in PIXEL_DATA for t in seen))


def _explicit_header(data: bytes, offset: int, order: str) -> tuple[int, int]:
    vr = data[offset + 4 : offset + 6]
    if vr in LONG_VRS:
        if len(data) - offset < 12:
            raise Incomplete(f"element header cut at byte {offset}")
        return offset + 12, struct.unpack_from(order + "I", data, offset + 8)[0]
    return offset + 8, struct.unpack_from(order + "H", data, offset + 6)[0]


def _walk(
    data: bytes,
    offset: int,
    end: int,
    explicit: bool,
    order: str,
    depth: int,
    seen: list[int] | None = None,
) -> int:
    """Walk elements from ``offset`` up to ``end`` or an item/sequence delimiter (which the
    caller checks); returns the offset reached. ``seen`` collects the top level's tags that
    are in group 7FE0."""
    if depth > MAX_DEPTH:
        raise Incomplete("sequences nested too deep")
    while offset < end:
        if end - offset < 8:
            raise Incomplete(f"element header cut at byte {offset}")
        group, element = struct.unpack_from(order + "HH", data, offset)
        tag = (group, element)
        if tag in (ITEM_END, SEQUENCE_END):
            return offset  # the caller checks the delimiter
        if group == 0xFFFE:
            raise Incomplete(f"unexpected delimiter ({group:04X},{element:04X}) at byte {offset}")
        if explicit:
            value, length = _explicit_header(data, offset, order)
        else:
            value, length = offset + 8, struct.unpack_from(order + "I", data, offset + 4)[0]
        where = f"({group:04X},{element:04X}) at byte {offset}"
        if seen is not None and group == 0x7FE0:
            seen.append(group << 16 | element)
        if length == UNDEFINED:
            offset = _undefined(data, value, end, explicit, order, depth, where)
            continue
        if value + length > end:
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
    while True:
        if end - offset < 8:
            raise Incomplete(f"sequence {where} has no delimiter: the data end at byte {offset}")
        tag = struct.unpack_from(order + "HH", data, offset)
        length = struct.unpack_from(order + "I", data, offset + 4)[0]
        if tag == SEQUENCE_END:
            return offset + 8
        if tag != ITEM:
            raise Incomplete(f"sequence {where}: expected an item at byte {offset}")
        offset += 8
        if length == UNDEFINED:
            offset = _walk(data, offset, end, explicit, order, depth + 1)
            if end - offset < 8 or struct.unpack_from(order + "HH", data, offset) != ITEM_END:
                raise Incomplete(f"item of sequence {where} has no delimiter")
            offset += 8
        elif offset + length > end:
            raise Incomplete(f"item of {where} needs {length} bytes, {end - offset} remain")
        else:
            offset += length
