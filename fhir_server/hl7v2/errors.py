"""The error every HL7 v2 step raises or returns: what is wrong, where, and how to answer it.

A :class:`V2Error` names the place (segment, its occurrence, field, component) and a code from
HL7 table 0357 (message error condition codes). The ACK builder turns it into an ERR segment;
``reject`` chooses AR (the message is not acceptable at all: wrong type, version, encoding, no
MSH) over AE (the content is wrong and the sender should fix and resend).
"""

from __future__ import annotations

from dataclasses import dataclass

# HL7 table 0357 (v2.5+), the codes this server uses.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY_IDENTIFIER = "204"
APPLICATION_RECORD_LOCKED = "206"
APPLICATION_INTERNAL_ERROR = "207"


@dataclass
class V2Error(Exception):
    """One problem in one message. ``sequence`` is the segment occurrence (1-based)."""

    segment: str
    sequence: int
    field: int | None
    component: int | None
    code: str
    severity: str = "E"
    message: str = ""
    reject: bool = False

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)

    @property
    def location(self) -> str:
        """``PID-3``, ``OBR[2]-4.1``: the place in plain v2 notation."""
        where = self.segment if self.sequence <= 1 else f"{self.segment}[{self.sequence}]"
        if self.field is not None:
            where += f"-{self.field}"
            if self.component is not None:
                where += f".{self.component}"
        return where

    def __str__(self) -> str:
        return f"{self.location}: {self.message} (HL7 error {self.code})"
