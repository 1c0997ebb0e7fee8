"""FHIR JSON in and out, keeping decimals exactly as sent.

FHIR forbids changing a decimal's precision (``1.50`` must stay ``1.50``), but every JSON library
turns numbers with a fraction or exponent into binary floats. Documents without such numbers are
parsed by orjson directly; the others are parsed by the standard library with ``parse_float`` set
to :class:`FhirDecimal`, a :class:`decimal.Decimal` that remembers its original text. Output is
always produced by orjson, which writes a FhirDecimal back as its original text.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

from fhir_server.core.errors import InvalidRequest

# A JSON number with a fraction or an exponent always has a digit followed by '.', 'e' or 'E';
# orjson also turns integers beyond 64 bits into floats, and those have 19 digits or more.
# No match means the document holds no such number and orjson alone is exact.
_MAYBE_INEXACT = re.compile(rb"[0-9][.eE]|[0-9]{19}")
_INT64 = range(-(2**63), 2**63)
_BOM = b"\xef\xbb\xbf"


class FhirDecimal(Decimal):
    """A decimal that keeps the exact text it was written with."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> FhirDecimal:
        value = Decimal.__new__(cls, text)
        value.text = text
        return value

    def __repr__(self) -> str:
        return f"FhirDecimal({self.text!r})"

    def __deepcopy__(self, memo: object) -> FhirDecimal:
        return self

    def __copy__(self) -> FhirDecimal:
        return self


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _default(value: object) -> object:
    if isinstance(value, FhirDecimal):
        return orjson.Fragment(value.text)
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f") if value == value.to_integral() else str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _parse_int(text: str) -> int | FhirDecimal:
    value = int(text)
    return value if value in _INT64 else FhirDecimal(text)


def _exact(value: Any) -> bool:
    """True when orjson's result holds no float and no integer beyond 64 bits: the pattern also
    matches digits followed by '.' inside strings (``urn:oid:1.2.3``, dates, versions), and the
    standard library's parse is several times slower."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float) or (isinstance(item, int) and item not in _INT64):
            return False
    return True


def loads(raw: bytes | str) -> Any:
    """Parse JSON text; numbers with a fraction or exponent, and integers beyond 64 bits, become
    :class:`FhirDecimal`. A leading UTF-8 byte order mark is ignored (RFC 8259 §8.1)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.startswith(_BOM):
        data = data[3:]
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None
    if _MAYBE_INEXACT.search(data) is None or _exact(value):
        return value
    try:
        return json.loads(
            data, parse_float=FhirDecimal, parse_int=_parse_int, parse_constant=_reject_constant
        )
    except ValueError as exc:  # pragma: no cover - orjson accepted it already
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None


def loads_object(raw: bytes | str, what: str = "body") -> dict[str, Any]:
    """Parse a JSON document that must be an object (a resource, a Parameters...)."""
    if not raw or not raw.strip():
        raise InvalidRequest(f"The {what} is empty; a JSON object was expected")
    value = loads(raw)
    if not isinstance(value, dict):
        raise InvalidRequest(f"The {what} must be a JSON object, not {type(value).__name__}")
    return value


def dumps(value: object, *, pretty: bool = False) -> bytes:
    """Serialise with orjson; FhirDecimal values keep their original text."""
    option = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(value, default=_default, option=option)
