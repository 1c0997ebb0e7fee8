"""R4 primitive types: the JSON kind each must have and its lexical rule.

Regular expressions are those of the R4 StructureDefinitions (``<type>.value``, extension
``regex``; http://hl7.org/fhir/R4/datatypes.html#primitive). They use XML Schema's character
classes, where ``\\s`` is only space, tab, CR and LF (https://www.w3.org/TR/xmlschema-2/#charcter-classes),
so they are written here with explicit classes instead of Python's Unicode-wide ``\\s``.
JSON kinds follow http://hl7.org/fhir/R4/json.html#primitive: boolean as JSON true/false,
integer and decimal as JSON numbers, everything else as a JSON string, never empty.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

_WS = " \\t\\r\\n"  # XML Schema \s
_INT32 = 2**31

_DATE = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_MONTH, _DAY = r"-(0[1-9]|1[0-2])", r"-(0[1-9]|[1-2][0-9]|3[0-1])"

_PATTERNS = {
    "string": r"(?s:.)+",
    "markdown": r"(?s:.)+",
    "xhtml": r"(?s:.)+",
    "code": rf"[^{_WS}]+([{_WS}][^{_WS}]+)*",
    "id": r"[A-Za-z0-9\-\.]{1,64}",
    "uri": rf"[^{_WS}]+",
    "url": rf"[^{_WS}]+",
    "canonical": rf"[^{_WS}]+",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    # R4: (\s*([0-9a-zA-Z\+/=]){4}\s*)+ -- same language, written without nested ambiguity
    "base64Binary": rf"[{_WS}]*([0-9a-zA-Z+/=]{{4}}[{_WS}]*)+",
    "date": rf"{_DATE}({_MONTH}({_DAY})?)?",
    "dateTime": rf"{_DATE}({_MONTH}({_DAY}(T{_TIME}{_ZONE})?)?)?",
    "instant": rf"{_DATE}{_MONTH}{_DAY}T{_TIME}{_ZONE}",
    "time": _TIME,
}

_EXPECTED = {
    "boolean": "JSON true or false",
    "integer": "a JSON integer from -2147483648 to 2147483647",
    "unsignedInt": "a JSON integer from 0 to 2147483647",
    "positiveInt": "a JSON integer from 1 to 2147483647",
    "decimal": "a JSON number",
    "string": "a non-empty JSON string",
    "markdown": "a non-empty JSON string",
    "xhtml": "a non-empty JSON string holding an XHTML div",
    "code": "a string without leading, trailing or repeated whitespace",
    "id": "1 to 64 characters from A-Z, a-z, 0-9, '-' and '.'",
    "uri": "a string without whitespace",
    "url": "a string without whitespace",
    "canonical": "a string without whitespace",
    "oid": "urn:oid: followed by a dotted sequence of numbers",
    "uuid": "urn:uuid: followed by a lowercase UUID",
    "base64Binary": "base64-encoded data",
    "date": "YYYY, YYYY-MM or YYYY-MM-DD",
    "dateTime": "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a time zone",
    "instant": "YYYY-MM-DDThh:mm:ss with optional fraction and a time zone",
    "time": "hh:mm:ss",
}


@dataclass(frozen=True, slots=True)
class Primitive:
    """One R4 primitive type: its code, what a valid value looks like, and its check."""

    code: str
    expected: str
    is_valid: Callable[[object], bool]

    def describe(self) -> str:
        return f"expected a FHIR {self.code} ({self.expected})"


def _integer(low: int) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        return type(value) is int and low <= value < _INT32

    return check


def _boolean(value: object) -> bool:
    return type(value) is bool


def _decimal(value: object) -> bool:
    if type(value) is int:
        return True
    if isinstance(value, Decimal):
        return value.is_finite()
    return isinstance(value, float) and math.isfinite(value)


def _calendar_ok(text: str) -> bool:
    """A full date must exist (FHIR: "dates SHALL be valid dates"), e.g. no February 30."""
    if len(text) < 10:
        return True
    try:
        date(int(text[0:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


def _non_empty(value: object) -> bool:
    """string, markdown and xhtml: ``(?s:.)+``, i.e. any non-empty string."""
    return type(value) is str and value != ""


def _text(code: str) -> Callable[[object], bool]:
    if _PATTERNS[code] == r"(?s:.)+":
        return _non_empty
    match = re.compile(_PATTERNS[code]).fullmatch
    dated = code in ("date", "dateTime", "instant")

    def check(value: object) -> bool:
        if not isinstance(value, str) or match(value) is None:
            return False
        return not dated or _calendar_ok(value)

    return check


def _build() -> dict[str, Primitive]:
    checks: dict[str, Callable[[object], bool]] = {
        "boolean": _boolean,
        "integer": _integer(-_INT32),
        "unsignedInt": _integer(0),
        "positiveInt": _integer(1),
        "decimal": _decimal,
    }
    checks.update({code: _text(code) for code in _PATTERNS})
    return {code: Primitive(code, _EXPECTED[code], check) for code, check in checks.items()}


PRIMITIVES: dict[str, Primitive] = _build()


def primitive(code: str) -> Primitive | None:
    """The primitive type of that code, None for complex types."""
    return PRIMITIVES.get(code)
