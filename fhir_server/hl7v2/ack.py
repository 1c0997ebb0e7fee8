"""HL7 v2 acknowledgements (ACK) for inbound messages, built from the inbound MSH and errors.

Original mode (MSH-15 and MSH-16 empty): one ACK with MSA-1 ``AA`` (accepted: stored durably),
``AE`` (stored, but its content has errors: not mapped) or ``AR`` (rejected: the message is not
acceptable at all, e.g. no MSH, unknown sender, unsupported type or version; the sender may
resend). Enhanced mode (MSH-15 or MSH-16 valued): the accept ACK ``CA``/``CE``/``CR`` on the
same connection, sent or not as MSH-15 asks (table 0155: AL always, NE never, ER on error
only, SU on success only; empty = AL). This server sends no separate application ACK for
MSH-16: the outcome of mapping is in the message log (admin API), and a CA already means the
message is committed to safe storage.

MSA-2 is the inbound MSH-10; MSH-3/4 and MSH-5/6 are swapped; MSH-9 is ``ACK^<event>^ACK``;
MSH-10 is the ACK's own id (the message log id). Each error becomes an ERR segment shaped by
the inbound version: before 2.5, ERR-1 (ELD: ``segment^sequence^field^code&text&HL70357``);
from 2.5 on, ERR-2 location (ERL), ERR-3 code (table 0357), ERR-4 severity, ERR-7 diagnostic
text and ERR-8 user message. MSA-3 carries the first error's text in every version (mllp_send
and most engines show it). Text is escaped with the message's own delimiters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fhir_server.core.clock import Clock

STANDARD_ENCODING = "^~\\&"
#: Table 0357 texts for the codes we send.
CODE_TEXT = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


class AckError(Protocol):
    """What an ACK needs of an error: H2's ``V2Error`` (errors.py) and :class:`HeaderError`."""

    @property
    def segment(self) -> str: ...
    @property
    def sequence(self) -> int: ...
    @property
    def field(self) -> int | None: ...
    @property
    def component(self) -> int | None: ...
    @property
    def code(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def reject(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class HeaderError:
    """A problem found by the listener itself before the message can be parsed: framing,
    charset, MSH, sender, size. Always a reject (AR/CR)."""

    segment: str
    field: int | None
    code: str
    message: str
    sequence: int = 1
    component: int | None = None
    severity: str = "E"
    reject: bool = True


@dataclass(frozen=True, slots=True)
class Header:
    """The inbound MSH fields an ACK (and the message log) needs; empty strings when absent."""

    field_separator: str = "|"
    encoding: str = STANDARD_ENCODING  # MSH-2
    sending_application: str = ""  # MSH-3 (whole field)
    sending_facility: str = ""  # MSH-4
    receiving_application: str = ""  # MSH-5
    receiving_facility: str = ""  # MSH-6
    message_type: str = ""  # MSH-9 (whole field)
    control_id: str = ""  # MSH-10
    processing_id: str = ""  # MSH-11
    version: str = ""  # MSH-12 (first component)
    accept_ack_type: str = ""  # MSH-15
    application_ack_type: str = ""  # MSH-16
    charset: str = ""  # MSH-18 (first repetition)

    @property
    def enhanced(self) -> bool:
        return bool(self.accept_ack_type or self.application_ack_type)

    def component(self, value: str, n: int = 1) -> str:
        parts = value.split(self.encoding[0]) if self.encoding else [value]
        return parts[n - 1] if len(parts) >= n else ""

    @property
    def type_code(self) -> str:
        """MSH-9 as "ORM^O01" (message code ^ trigger event)."""
        code, event = self.component(self.message_type, 1), self.component(self.message_type, 2)
        return f"{code}^{event}" if event else code


def ack_code(header: Header, errors: Sequence[AckError]) -> str:
    """AA/AE/AR (original mode) or CA/CE/CR (enhanced mode)."""
    if any(e.reject and e.severity == "E" for e in errors):
        code = "R"
    elif any(e.severity == "E" for e in errors):
        code = "E"
    else:
        code = "A"
    return ("C" if header.enhanced else "A") + code


def ack_wanted(header: Header, code: str) -> bool:
    """Whether MSH-15 asks for this accept ACK (original mode: always)."""
    if not header.enhanced:
        return True
    condition = header.accept_ack_type.upper() or "AL"
    if condition == "NE":
        return False
    if condition == "ER":
        return code != "CA"
    if condition == "SU":
        return code == "CA"
    return True


def build_ack(
    header: Header, errors: Sequence[AckError], *, ack_id: str, clock: Clock, code: str = ""
) -> str:
    """The ACK text (segments separated by CR, no framing)."""
    fs = header.field_separator
    enc = header.encoding
    code = code or ack_code(header, errors)
    event = header.component(header.message_type, 2)
    msh9 = f"ACK{enc[0]}{event}{enc[0]}ACK" if event else "ACK"
    msh = fs.join(
        [
            "MSH",
            enc,
            header.receiving_application,
            header.receiving_facility,
            header.sending_application,
            header.sending_facility,
            clock().strftime("%Y%m%d%H%M%S"),
            "",
            msh9,
            ack_id,
            header.processing_id or "P",
            header.version or "2.5.1",
        ]
    )
    text = escape(errors[0].message, fs, enc) if errors else ""
    msa = fs.join(["MSA", code, escape(header.control_id, fs, enc), text]).rstrip(fs)
    segments = [msh, msa] + [_err(header, e) for e in errors]
    return "\r".join(segments) + "\r"


def _err(header: Header, error: AckError) -> str:
    fs, enc = header.field_separator, header.encoding
    comp, sub = enc[0], enc[3] if len(enc) > 3 else "&"
    code_text = CODE_TEXT.get(error.code, "")
    text = escape(error.message, fs, enc)
    position = [error.segment, str(error.sequence), _n(error.field), _n(error.component)]
    if _before_2_5(header.version):
        coded = sub.join([error.code, escape(code_text, fs, enc), "HL70357"])
        eld = comp.join([error.segment, str(error.sequence), _n(error.field), coded])
        return fs.join(["ERR", eld])
    erl = comp.join([*position[:3], "", position[3]]).rstrip(comp)
    hl7_code = comp.join([error.code, escape(code_text, fs, enc), "HL70357"])
    return fs.join(["ERR", "", erl, hl7_code, error.severity, "", "", text, text])


def _n(value: int | None) -> str:
    return "" if value is None else str(value)


def _before_2_5(version: str) -> bool:
    parts = version.split(".")
    try:
        numbers = tuple(int(p) for p in parts[:2])
    except ValueError:
        return False
    return numbers < (2, 5)


def escape(text: str, fs: str = "|", encoding: str = STANDARD_ENCODING) -> str:
    """``text`` with the delimiters escaped (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\) and line breaks as
    spaces (an ACK's text fields are single-line)."""
    enc = (encoding + STANDARD_ENCODING[len(encoding) :])[:4]
    comp, rep, esc, sub = enc[0], enc[1], enc[2], enc[3]
    table = {esc: f"{esc}E{esc}", fs: f"{esc}F{esc}", comp: f"{esc}S{esc}",
             sub: f"{esc}T{esc}", rep: f"{esc}R{esc}", "\r": " ", "\n": " "}  # fmt: skip
    return "".join(table.get(ch, ch) for ch in text)
