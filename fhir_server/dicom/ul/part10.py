"""The File Meta Information (PS3.10 7.1) put in front of a received C-STORE data set, so the
ingest gets Part-10 bytes exactly as a file would hold them; the data set itself is kept as
received (never decoded or re-encoded)."""

from __future__ import annotations

import struct

#: This node's Implementation Class UID (PS3.7 D.3.3.2): a UUID-derived UID (PS3.5 B.2).
IMPLEMENTATION_CLASS = "2.25.203958212693418911234566150891364817431"
IMPLEMENTATION_VERSION = "FHIRSERVER_1"


def _short(tag: int, vr: bytes, value: bytes) -> bytes:
    return struct.pack("<HH", 0x0002, tag) + vr + struct.pack("<H", len(value)) + value


def _uid(value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + b"\x00" if len(raw) % 2 else raw


def _text(value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw + b" " if len(raw) % 2 else raw


def file_meta(sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str) -> bytes:
    """Preamble, ``DICM`` and the group 0002 elements (Explicit VR Little Endian)."""
    elements = b"".join((
        struct.pack("<HH", 0x0002, 0x0001) + b"OB\x00\x00" + struct.pack("<I", 2) + b"\x00\x01",
        _short(0x0002, b"UI", _uid(sop_class)),
        _short(0x0003, b"UI", _uid(sop_instance)),
        _short(0x0010, b"UI", _uid(transfer_syntax)),
        _short(0x0012, b"UI", _uid(IMPLEMENTATION_CLASS)),
        _short(0x0013, b"SH", _text(IMPLEMENTATION_VERSION)),
        _short(0x0016, b"AE", _text(source_ae)) if source_ae else b"",
    ))  # fmt: skip
    group = struct.pack("<HH", 0x0002, 0x0000) + b"UL" + struct.pack("<HI", 4, len(elements))
    return b"\x00" * 128 + b"DICM" + group + elements
