"""A small, fast ER7 (pipe-and-hat) reader and writer of our own.

:func:`parse` splits on the delimiters MSH-1/MSH-2 declare and keeps every segment in order,
Z-segments included; fields are split further only when asked for. Values come back unescaped
(:func:`unescape`); text written into a message goes through :func:`escape`.

Path syntax of :meth:`Message.get` (all positions 1-based, HL7 style)::

    SEG[occurrence]-field[repetition].component.subcomponent

``PID-3`` is the first repetition of PID-3 as sent (components still joined by ``^``);
``PID-3[2].4.1`` the first subcomponent of the 4th component of the 2nd repetition; ``OBR[2]-4.1``
the 1st component of OBR-4 in the second OBR. Missing parts give ``""``. For MSH, MSH-1 is the
field separator and MSH-2 the encoding characters, as in the standard.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fhir_server.hl7v2.errors import (
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    V2Error,
)

_PATH = re.compile(
    r"^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?-(\d+)(?:\[(\d+)\])?(?:\.(\d+))?(?:\.(\d+))?$"
)
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def characters(self) -> str:
        """MSH-2 as written."""
        return self.component + self.repetition + self.escape + self.subcomponent


DEFAULT_ENCODING = Encoding()


def escape(text: str, encoding: Encoding = DEFAULT_ENCODING, *, line_breaks: bool = True) -> str:
    """``text`` made safe for one ER7 value.

    The five delimiters become ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``.

    Line breaks (``\\r\\n``, ``\\n``, ``\\r``) become ``\\.br\\`` (the formatted-text break, valid
    in FT and TX); with ``line_breaks=False`` they become spaces. A carriage return is never left
    raw: it would end the segment.
    """
    e = encoding.escape
    out = text.replace(e, f"{e}E{e}")
    out = out.replace(encoding.field, f"{e}F{e}")
    out = out.replace(encoding.component, f"{e}S{e}")
    out = out.replace(encoding.subcomponent, f"{e}T{e}")
    out = out.replace(encoding.repetition, f"{e}R{e}")
    if "\r" in out or "\n" in out:
        brk = f"{e}.br{e}" if line_breaks else " "
        out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", brk)
    return out


def unescape(value: str, encoding: Encoding = DEFAULT_ENCODING) -> str:
    """The text of an ER7 value: escape sequences resolved.

    ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` give the delimiters, ``\\Xhh..\\`` the bytes (UTF-8, else
    Latin-1), ``\\.br\\`` and ``\\.sp\\`` a line break; highlighting (``\\H\\ \\N\\``) and other
    formatting commands are dropped; an unterminated escape is kept literally.
    """
    e = encoding.escape
    if e not in value:
        return value
    out: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        j = value.find(e, i)
        if j < 0:
            out.append(value[i:])
            break
        out.append(value[i:j])
        k = value.find(e, j + 1)
        if k < 0:
            out.append(value[j:])
            break
        out.append(_resolve(value[j + 1 : k], encoding))
        i = k + 1
    return "".join(out)


def _resolve(seq: str, encoding: Encoding) -> str:
    simple = {
        "F": encoding.field,
        "S": encoding.component,
        "T": encoding.subcomponent,
        "R": encoding.repetition,
        "E": encoding.escape,
    }
    if seq in simple:
        return simple[seq]
    if seq[:1] == "X" and len(seq) > 1:
        try:
            data = bytes.fromhex(seq[1:])
        except ValueError:
            return encoding.escape + seq + encoding.escape
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    if seq == ".br" or seq.startswith(".sp"):
        return "\n"
    if seq in ("H", "N") or seq.startswith("."):
        return ""
    return encoding.escape + seq + encoding.escape


class Segment:
    """One segment: ``fields[n]`` is field n as sent (escaped); ``fields[0]`` is the name."""

    __slots__ = ("encoding", "fields", "name")

    def __init__(self, name: str, fields: list[str], encoding: Encoding) -> None:
        self.name = name
        self.fields = fields
        self.encoding = encoding

    def field(self, n: int) -> str:
        """Field ``n`` as sent, all repetitions, still escaped."""
        return self.fields[n] if n < len(self.fields) else ""

    def repetitions(self, n: int) -> list[str]:
        """The repetitions of field ``n`` as sent (escaped); ``[]`` when empty."""
        raw = self.field(n)
        if not raw:
            return []
        if self.name == "MSH" and n <= 2:
            return [raw]
        return raw.split(self.encoding.repetition)

    def get(self, n: int, repetition: int = 1, component: int = 0, subcomponent: int = 0) -> str:
        """Unescaped value; component/subcomponent 0 = the whole repetition/component."""
        reps = self.repetitions(n)
        if repetition > len(reps):
            return ""
        return component_of(reps[repetition - 1], self.encoding, component, subcomponent)

    def __repr__(self) -> str:
        return f"Segment({self.encoding.field.join(self.fields)!r})"


def component_of(value: str, encoding: Encoding, component: int = 0, subcomponent: int = 0) -> str:
    """Component (and subcomponent) of one escaped repetition, unescaped; 0 = all of it."""
    if component:
        parts = value.split(encoding.component)
        if component > len(parts):
            return ""
        value = parts[component - 1]
        if subcomponent:
            subs = value.split(encoding.subcomponent)
            value = subs[subcomponent - 1] if subcomponent <= len(subs) else ""
    return unescape(value, encoding)


def components(value: str, encoding: Encoding) -> list[str]:
    """The components of one escaped repetition, unescaped (subcomponents stay joined by ``&``)."""
    return [unescape(part, encoding) for part in value.split(encoding.component)]


class Message:
    """A parsed message: every segment in order, nothing dropped."""

    __slots__ = ("_by_name", "encoding", "raw", "segments")

    def __init__(self, raw: str, segments: list[Segment], encoding: Encoding) -> None:
        self.raw = raw
        self.segments = segments
        self.encoding = encoding
        by_name: dict[str, list[Segment]] = {}
        for segment in segments:
            by_name.setdefault(segment.name, []).append(segment)
        self._by_name = by_name

    def segment(self, name: str, n: int = 0) -> Segment | None:
        """The ``n``-th (0-based) segment called ``name``, or None."""
        found = self._by_name.get(name)
        return found[n] if found is not None and n < len(found) else None

    def all(self, name: str) -> list[Segment]:
        return self._by_name.get(name, [])

    def get(self, path: str) -> str:
        """The unescaped value at ``path`` (see the module docstring); ``""`` when absent."""
        m = _PATH.match(path)
        if m is None:
            raise ValueError(f"not an HL7 v2 path: {path!r} (e.g. PID-3[2].4.1)")
        name, occurrence, fld, rep, comp, sub = m.groups()
        segment = self.segment(name, int(occurrence or 1) - 1)
        if segment is None:
            return ""
        return segment.get(int(fld), int(rep or 1), int(comp or 0), int(sub or 0))

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def msh_control_id(self) -> str:
        return self.msh.get(10)

    @property
    def sending_application(self) -> str:
        """MSH-3 as sent (all components joined by the component separator)."""
        return self.msh.field(3)

    @property
    def sending_facility(self) -> str:
        """MSH-4 as sent."""
        return self.msh.field(4)

    @property
    def message_type(self) -> str:
        """``ORM^O01``: MSH-9.1 and MSH-9.2 (the message structure MSH-9.3 is left out)."""
        code = self.msh.get(9, 1, 1)
        event = self.msh.get(9, 1, 2)
        return f"{code}^{event}" if event else code

    @property
    def version(self) -> str:
        """MSH-12.1, e.g. ``2.5.1``."""
        return self.msh.get(12, 1, 1)

    @property
    def accept_ack_type(self) -> str:
        return self.msh.get(15)

    @property
    def application_ack_type(self) -> str:
        return self.msh.get(16)


def parse(raw: str) -> Message:
    """Parse ER7 text (segments end in ``\\r``, ``\\n`` or ``\\r\\n``); raises :class:`V2Error`."""
    text = raw.strip("\x0b\x1c\r\n")
    if not text.startswith("MSH"):
        raise V2Error(
            "MSH", 1, None, None, SEGMENT_SEQUENCE_ERROR,
            message="the message does not start with an MSH segment", reject=True,
        )  # fmt: skip
    encoding = _encoding(text)
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    sep = encoding.field
    segments: list[Segment] = []
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        parts = line.split(sep)
        name = parts[0]
        if not _SEGMENT_NAME.match(name):
            raise V2Error(
                name[:3] or "?", number, None, None, SEGMENT_SEQUENCE_ERROR,
                message=f"segment {number} has no valid segment name ({line[:20]!r})",
                reject=True,
            )  # fmt: skip
        if name == "MSH":
            parts = ["MSH", sep, *parts[1:]]
        segments.append(Segment(name, parts, encoding))
    if segments[0].name != "MSH":
        raise V2Error("MSH", 1, None, None, SEGMENT_SEQUENCE_ERROR, message="no MSH", reject=True)
    return Message(raw, segments, encoding)


def _encoding(text: str) -> Encoding:
    if len(text) < 8:
        raise V2Error(
            "MSH", 1, 2, None, REQUIRED_FIELD_MISSING,
            message="MSH is too short to hold the encoding characters", reject=True,
        )  # fmt: skip
    field_sep = text[3]
    end = text.find(field_sep, 4)
    chars = text[4:end] if end >= 0 else ""
    if (
        field_sep.isalnum()
        or field_sep in "\r\n "
        or len(chars) < 4
        or len(set(field_sep + chars[:4])) != 5
    ):
        raise V2Error(
            "MSH", 1, 2, None, DATA_TYPE_ERROR,
            message=f"wrong encoding characters {text[3:8]!r}: expected MSH|^~\\& (field, "
            "component, repetition, escape, subcomponent separators, all different)",
            reject=True,
        )  # fmt: skip
    if any(c.isalnum() or c in "\r\n " for c in chars[:4]):
        raise V2Error(
            "MSH", 1, 2, None, DATA_TYPE_ERROR,
            message=f"wrong encoding characters {chars!r}: "
            "letters, digits and spaces are not delimiters",
            reject=True,
        )  # fmt: skip
    return Encoding(field_sep, chars[0], chars[1], chars[2], chars[3])


def serialize(segments: list[list[str]], encoding: Encoding = DEFAULT_ENCODING) -> str:
    """Segments given as already-escaped field lists (``["PID", "1", "", "123^^^A"]``) → ER7 text.

    For MSH pass the fields from MSH-3 on after ``"MSH"``; MSH-1/MSH-2 are written from
    ``encoding``. Segments end with ``\\r``.
    """
    out: list[str] = []
    for fields in segments:
        if fields[0] == "MSH":
            out.append(encoding.field.join(["MSH", encoding.characters, *fields[1:]]))
        else:
            out.append(encoding.field.join(fields))
    return "\r".join(out) + "\r"
