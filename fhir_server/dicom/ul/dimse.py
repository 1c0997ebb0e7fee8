"""DIMSE command sets (PS3.7 section 9.3 and annex E): always Implicit VR Little Endian,
group 0000 only, led by Command Group Length (0000,0000).

:func:`decode_command` turns a received command set into ``{element: raw value}`` (the group is
0000, so the element number is the key); :func:`encode_command` builds one from typed values.
"""

from __future__ import annotations

import struct

from fhir_server.dicom.ul.pdu import PduError

# Command elements (PS3.7 E.1-1).
AFFECTED_SOP_CLASS = 0x0002
COMMAND_FIELD = 0x0100
MESSAGE_ID = 0x0110
MESSAGE_ID_RESPONDED = 0x0120
MOVE_DESTINATION = 0x0600
PRIORITY = 0x0700
DATA_SET_TYPE = 0x0800
STATUS = 0x0900
ERROR_COMMENT = 0x0902
AFFECTED_SOP_INSTANCE = 0x1000
MOVE_ORIGINATOR_AE = 0x1030
MOVE_ORIGINATOR_ID = 0x1031

VERIFICATION = "1.2.840.10008.1.1"  # the SOP class of C-ECHO (PS3.4 A)
C_STORE_RQ = 0x0001
C_STORE_RSP = 0x8001
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
NO_DATA_SET = 0x0101

_ELEMENT = struct.Struct("<HHI")
#: The VR of each element we write (PS3.7 E.1-1): US, UL, UI, AE or LO.
_US = {COMMAND_FIELD, MESSAGE_ID, MESSAGE_ID_RESPONDED, PRIORITY, DATA_SET_TYPE, STATUS,
       MOVE_ORIGINATOR_ID}  # fmt: skip
_UI = {AFFECTED_SOP_CLASS, AFFECTED_SOP_INSTANCE}


def decode_command(data: bytes) -> dict[int, bytes]:
    """The elements of a command set, by element number; PduError when it is not a group 0000
    Implicit VR Little Endian data set."""
    out: dict[int, bytes] = {}
    pos = 0
    end = len(data)
    while pos < end:
        if pos + 8 > end:
            raise PduError(f"command set: truncated element header at byte {pos}")
        group, element, length = _ELEMENT.unpack_from(data, pos)
        pos += 8
        if group != 0x0000:
            raise PduError(f"command set: element ({group:04X},{element:04X}) is not group 0000")
        if length == 0xFFFFFFFF or pos + length > end:
            raise PduError(f"command set: element (0000,{element:04X}) has an invalid length")
        out[element] = data[pos : pos + length]
        pos += length
    if COMMAND_FIELD not in out:
        raise PduError("command set has no Command Field (0000,0100)")
    return out


def us(elements: dict[int, bytes], element: int) -> int | None:
    raw = elements.get(element)
    if raw is None or len(raw) < 2:
        return None
    return int(struct.unpack_from("<H", raw)[0])


def text(elements: dict[int, bytes], element: int) -> str:
    return elements.get(element, b"").rstrip(b"\x00 ").decode("ascii", "replace").strip()


def _value(element: int, value: int | str) -> bytes:
    if element in _US:
        return struct.pack("<H", int(value))
    raw = str(value).encode("ascii", "replace")
    if len(raw) % 2:
        raw += b"\x00" if element in _UI else b" "
    return raw


def encode_command(values: dict[int, int | str]) -> bytes:
    """A command set from ``{element: value}``, in element order, with its group length."""
    body = bytearray()
    for element in sorted(values):
        raw = _value(element, values[element])
        body += _ELEMENT.pack(0, element, len(raw)) + raw
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<I", len(body)) + bytes(body)
