"""DICOM Upper Layer PDUs (PS3.8 section 9.3): reading them off a stream, decoding an
A-ASSOCIATE-RQ and encoding the PDUs an acceptor sends (A-ASSOCIATE-AC/RJ, P-DATA-TF,
A-RELEASE-RP, A-ABORT).

Every multi-byte integer of a PDU is big endian (PS3.8 9.3.1). A malformed PDU raises
:class:`PduError` with what was wrong, which the acceptor answers with an A-ABORT.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

ASSOCIATE_RQ = 0x01
ASSOCIATE_AC = 0x02
ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
RELEASE_RQ = 0x05
RELEASE_RP = 0x06
ABORT = 0x07

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
_HEADER = struct.Struct(">BxI")
_ITEM = struct.Struct(">BxH")
_PDV = struct.Struct(">IBB")

# A-ASSOCIATE-AC presentation context results (PS3.8 9.3.3.2).
ACCEPTANCE = 0
USER_REJECTION = 1
ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
TRANSFER_SYNTAXES_NOT_SUPPORTED = 4

# A-ASSOCIATE-RJ (PS3.8 9.3.4): result, source, reason.
REJECTED_PERMANENT = 1
REJECTED_TRANSIENT = 2
SOURCE_SERVICE_USER = 1
SOURCE_ACSE = 2
SOURCE_PRESENTATION = 3
REASON_NO_REASON = 1
REASON_APPLICATION_CONTEXT = 2
REASON_CALLING_AE = 3
REASON_CALLED_AE = 7
REASON_PROTOCOL_VERSION = 2  # with SOURCE_ACSE
REASON_LOCAL_LIMIT = 2  # with SOURCE_PRESENTATION (temporary congestion is 1)

# A-ABORT (PS3.8 9.3.8): source and reason.
ABORT_SERVICE_USER = 0
ABORT_SERVICE_PROVIDER = 2
ABORT_UNRECOGNIZED_PDU = 1
ABORT_UNEXPECTED_PDU = 2
ABORT_UNRECOGNIZED_PARAMETER = 4
ABORT_INVALID_PARAMETER = 6


class PduError(ValueError):
    """A PDU that does not follow PS3.8."""


@dataclass(slots=True)
class PresentationContext:
    """One proposed presentation context (item 0x20)."""

    id: int
    abstract_syntax: str
    transfer_syntaxes: list[str]


@dataclass(slots=True)
class RoleSelection:
    """An SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4)."""

    sop_class: str
    scu: bool
    scp: bool


@dataclass(slots=True)
class AssociateRq:
    """The parts of an A-ASSOCIATE-RQ an acceptor decides on."""

    protocol_version: int
    called_ae: str
    calling_ae: str
    application_context: str
    contexts: list[PresentationContext]
    max_length: int = 0  # 0: no limit (PS3.8 D.1)
    implementation_class: str = ""
    implementation_version: str = ""
    roles: list[RoleSelection] = field(default_factory=list)
    user_identity: bool = False
    extended_negotiation: bool = False


async def read_pdu(reader: asyncio.StreamReader, limit: int) -> tuple[int, bytes]:
    """The next PDU's type and body; PduError when it announces more than ``limit`` bytes,
    IncompleteReadError when the peer closes mid-PDU."""
    header = await reader.readexactly(6)
    kind, length = _HEADER.unpack(header)
    if length > limit:
        raise PduError(f"PDU of type 0x{kind:02X} announces {length} bytes (limit {limit})")
    return kind, await reader.readexactly(length) if length else b""


def _uid(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii", "replace")


def _ae(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip()


def _items(body: bytes, start: int, end: int, where: str) -> Iterator[tuple[int, bytes]]:
    pos = start
    while pos < end:
        if pos + 4 > end:
            raise PduError(f"{where}: truncated item header at byte {pos}")
        kind, length = _ITEM.unpack_from(body, pos)
        pos += 4
        if pos + length > end:
            raise PduError(f"{where}: item 0x{kind:02X} overruns its container at byte {pos}")
        yield kind, body[pos : pos + length]
        pos += length


def decode_associate_rq(body: bytes) -> AssociateRq:
    """Decode an A-ASSOCIATE-RQ body (PS3.8 9.3.2, the PDU header removed)."""
    if len(body) < 68:
        raise PduError(f"A-ASSOCIATE-RQ of {len(body)} bytes is shorter than its fixed part")
    (version,) = struct.unpack_from(">H", body, 0)
    rq = AssociateRq(version, _ae(body[4:20]), _ae(body[20:36]), "", [])
    for kind, value in _items(body, 68, len(body), "A-ASSOCIATE-RQ"):
        if kind == 0x10:
            rq.application_context = _uid(value)
        elif kind == 0x20:
            rq.contexts.append(_presentation_context(value))
        elif kind == 0x50:
            _user_information(value, rq)
    if not rq.application_context:
        raise PduError("A-ASSOCIATE-RQ has no Application Context item (0x10)")
    return rq


def _presentation_context(value: bytes) -> PresentationContext:
    if len(value) < 4:
        raise PduError("Presentation Context item (0x20) is shorter than 4 bytes")
    context = PresentationContext(value[0], "", [])
    for kind, sub in _items(value, 4, len(value), f"Presentation Context {value[0]}"):
        if kind == 0x30:
            context.abstract_syntax = _uid(sub)
        elif kind == 0x40:
            context.transfer_syntaxes.append(_uid(sub))
    return context


def _user_information(value: bytes, rq: AssociateRq) -> None:
    for kind, sub in _items(value, 0, len(value), "User Information"):
        if kind == 0x51 and len(sub) >= 4:
            (rq.max_length,) = struct.unpack_from(">I", sub)
        elif kind == 0x52:
            rq.implementation_class = _uid(sub)
        elif kind == 0x55:
            rq.implementation_version = sub.decode("ascii", "replace").strip()
        elif kind == 0x54 and len(sub) >= 2:
            (length,) = struct.unpack_from(">H", sub)
            uid = _uid(sub[2 : 2 + length])
            flags = sub[2 + length : 4 + length]
            if len(flags) == 2:
                rq.roles.append(RoleSelection(uid, flags[0] == 1, flags[1] == 1))
        elif kind == 0x58:
            rq.user_identity = True
        elif kind in (0x56, 0x57):
            rq.extended_negotiation = True


def _item(kind: int, value: bytes) -> bytes:
    return _ITEM.pack(kind, len(value)) + value


def header(kind: int, body: bytes) -> bytes:
    """The 6-byte header of a PDU with this body."""
    return _HEADER.pack(kind, len(body))


def _pdu(kind: int, body: bytes) -> bytes:
    return _HEADER.pack(kind, len(body)) + body


def _ae_field(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def encode_associate_ac(
    rq: AssociateRq,
    results: list[tuple[int, int, str]],
    max_length: int,
    implementation_class: str,
    implementation_version: str,
) -> bytes:
    """A-ASSOCIATE-AC (PS3.8 9.3.3): ``results`` is (context id, result, transfer syntax) per
    proposed context, in the order proposed."""
    body = bytearray(struct.pack(">HH", 1, 0))
    body += _ae_field(rq.called_ae) + _ae_field(rq.calling_ae) + bytes(32)
    body += _item(0x10, APPLICATION_CONTEXT.encode())
    for context_id, result, syntax in results:
        sub = _item(0x40, syntax.encode()) if syntax else b""
        body += _item(0x21, bytes((context_id, 0, result, 0)) + sub)
    user = _item(0x51, struct.pack(">I", max_length))
    user += _item(0x52, implementation_class.encode())
    user += _item(0x55, implementation_version.encode()[:16])
    body += _item(0x50, user)
    return _pdu(ASSOCIATE_AC, bytes(body))


def encode_associate_rj(result: int, source: int, reason: int) -> bytes:
    return _pdu(ASSOCIATE_RJ, bytes((0, result, source, reason)))


def encode_release_rp() -> bytes:
    return _pdu(RELEASE_RP, bytes(4))


def encode_abort(source: int = ABORT_SERVICE_PROVIDER, reason: int = 0) -> bytes:
    return _pdu(ABORT, bytes((0, 0, source, reason)))


def encode_p_data(context_id: int, data: bytes, *, command: bool, max_length: int) -> bytes:
    """P-DATA-TF PDUs carrying ``data`` as PDV fragments no longer than the peer's maximum
    (``max_length`` 0: unlimited); the last fragment is marked last (PS3.8 E.2)."""
    room = (max_length - 6) if max_length else len(data) or 1
    flag = 0x01 if command else 0x00
    out = bytearray()
    pos = 0
    while True:
        chunk = data[pos : pos + room]
        pos += len(chunk)
        last = pos >= len(data)
        header = _PDV.pack(len(chunk) + 2, context_id, flag | (0x02 if last else 0))
        out += _HEADER.pack(P_DATA_TF, 6 + len(chunk)) + header + chunk
        if last:
            return bytes(out)


def decode_p_data(body: bytes) -> Iterator[tuple[int, int, memoryview]]:
    """The PDVs of a P-DATA-TF body: (context id, message control header, fragment)."""
    view = memoryview(body)
    pos = 0
    end = len(body)
    while pos < end:
        if pos + 6 > end:
            raise PduError(f"P-DATA-TF: truncated PDV header at byte {pos}")
        length, context_id, control = _PDV.unpack_from(body, pos)
        if length < 2 or pos + 4 + length > end:
            raise PduError(f"P-DATA-TF: PDV length {length} at byte {pos} is invalid")
        yield context_id, control, view[pos + 6 : pos + 4 + length]
        pos += 4 + length
