"""Matching keys against the imaging index's DICOM JSON, as PS3.4 C.2.2.2 says (query.py):

- an empty value is universal matching (a return key only);
- ``*`` and ``?`` are wildcards (C.2.2.2.4);
- a backslash-separated list matches any of its values (UID list matching, C.2.2.2.2, and
  Orthanc's practice for other attributes, e.g. ``ModalitiesInStudy=CT\\MR``);
- DA, TM and DT values ``a-b``, ``-b``, ``a-`` are ranges (C.2.2.2.5);
- matching is case-sensitive except for person names (PN), case-insensitive as Orthanc does;
- when asked (QIDO-RS ``emptyvaluematching=true``, PS3.18 8.3.4.1; PS3.4 C.2.2.2): a key of
  two QUOTATION MARKs (``""``) matches only entities whose attribute is absent or empty, and
  an entity whose attribute is absent or empty also matches any other key of it;
- when asked (QIDO-RS ``multiplevaluematching=true``, PS3.4 C.2.2.2.8), the values of a key of an
  attribute whose VR is AE, AS, AT, CS, LO, PN, SH or UC and whose VM is greater than 1 all
  have to match a value of the entity's (``ModalitiesInStudy=CT\\PT``: studies with both).

A key whose value cannot match as written is refused (``malformed``) rather than matching
nothing: a DA, TM or DT value not in its DICOM form (PS3.5 Table 6.2-1), alone, in a list or as
a range's bound, and a value given for a sequence (sequence matching is not offered).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

RANGE_VRS = frozenset({"DA", "TM", "DT"})
#: The VRs Multiple Value Matching applies to (PS3.4 C.2.2.2.8), for attributes of VM above 1.
MULTIPLE_VALUE_VRS = frozenset({"AE", "AS", "AT", "CS", "LO", "PN", "SH", "UC"})
#: The key value that asks for an empty attribute under Empty Value Matching.
EMPTY_VALUE = '""'
#: The DICOM forms of a date, a time and a date-time (PS3.5 Table 6.2-1; a TM's colons, from
#: ACR-NEMA, are read as C-FIND peers still send them).
FORMS: dict[str, tuple[re.Pattern[str], str]] = {
    "DA": (re.compile(r"\d{8}"), "YYYYMMDD"),
    "TM": (re.compile(r"\d{2}(:?\d{2}(:?\d{2}(\.\d{1,6})?)?)?"), "HHMMSS.FFFFFF"),
    "DT": (
        re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?"),
        "YYYYMMDDHHMMSS.FFFFFF&ZZXX",
    ),
}


@dataclass(frozen=True, slots=True)
class Key:
    """One matching key: the tag key of its attribute, its VR and the match value; ``empty``:
    Empty Value Matching asked for; ``every``: its several values must all match (Multiple
    Value Matching asked for, of an attribute it applies to), else any of them."""

    tag: str
    vr: str
    value: str
    empty: bool = False
    every: bool = False


def _texts(item: Any, vr: str) -> list[str]:
    """An attribute's values as text (each person name group for PN)."""
    if not isinstance(item, dict):
        return []
    out: list[str] = []
    for value in item.get("Value", []):
        if value is None:
            continue
        if vr == "PN" and isinstance(value, dict):
            out.extend(str(v) for v in value.values() if v)
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        else:
            out.append(str(value))
    return out


@lru_cache(maxsize=256)
def _wildcard(pattern: str, fold: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if fold else 0))


def _time(text: str) -> str:
    """TM / the time of a DT, without colons, padded to HHMMSS.FFFFFF for comparison."""
    digits = text.replace(":", "")
    whole, _, fraction = digits.partition(".")
    return (whole + "000000")[:6] + "." + (fraction + "000000")[:6]


def _comparable(text: str, vr: str) -> str:
    if vr == "TM":
        return _time(text)
    if vr == "DT":
        text = re.split(r"[+-]", text, maxsplit=1)[0] if len(text) > 8 else text
        return (text[:8] + "00000000")[:8] + _time(text[8:]) if len(text) > 8 else text[:8]
    return text


def _in_range(value: str, low: str, high: str, vr: str) -> bool:
    value = _comparable(value, vr)
    if vr == "DA":
        value = value[:8]
    if low and value < _comparable(low, vr):
        return False
    if high:
        bound = _comparable(high, vr)
        if vr == "DT" and len(high) <= 8:
            return value[:8] <= bound[:8]
        return value <= bound
    return True


def _one(values: list[str], match: str, vr: str) -> bool:
    fold = vr == "PN"
    if vr in RANGE_VRS and "-" in match and not (vr == "DT" and match.count("-") > 1):
        low, _, high = match.partition("-")
        return any(_in_range(v, low.strip(), high.strip(), vr) for v in values)
    if "*" in match or "?" in match:
        pattern = _wildcard(match, fold)
        return any(pattern.fullmatch(v) for v in values)
    if fold:
        return any(v.casefold() == match.casefold() for v in values)
    if vr == "TM":
        return any(_time(v) == _time(match) for v in values)
    return match in values


def matches(attributes: Mapping[str, Any], key: Key) -> bool:
    """Whether the DICOM JSON ``attributes`` match one key (PS3.4 C.2.2.2)."""
    value = key.value.strip() if key.vr != "PN" else key.value
    if value in ("", "*"):
        return True
    item = attributes.get(key.tag)
    vr = item.get("vr", key.vr) if isinstance(item, dict) else key.vr
    if vr == "SQ":
        return True  # sequence matching is not offered: a return key
    texts = _texts(item, vr)
    if not any(texts):
        return key.empty
    if key.empty and value.strip() == EMPTY_VALUE:
        return False
    parts = value.split("\\")
    if key.every:
        return all(_one(texts, part, vr) for part in parts)
    return any(_one(texts, part, vr) for part in parts)


def malformed(key: Key) -> str | None:
    """What makes a key's value impossible to match as written, or None (module docstring)."""
    value = key.value.strip()
    if value in ("", "*") or (key.empty and value == EMPTY_VALUE):
        return None
    if key.vr == "SQ":
        return "is a sequence: it can be a return key (asked for empty), not matched to a value"
    form = FORMS.get(key.vr)
    if form is None:
        return None
    pattern, shape = form
    for part in value.split("\\"):
        if not _well_formed(part.strip(), key.vr, pattern):
            return (
                f"{part.strip()!r} is not a {key.vr} value: expected {shape}, a list of them "
                "separated by backslashes or a range such as from-to, from- or -to"
            )
    return None


def _well_formed(part: str, vr: str, pattern: re.Pattern[str]) -> bool:
    if pattern.fullmatch(part):
        return True
    if vr not in RANGE_VRS:
        return False
    for at, char in enumerate(part):  # a DT's bounds may carry offsets: any dash may divide
        if char == "-":
            low, high = part[:at].strip(), part[at + 1 :].strip()
            if (low or high) and all(not b or pattern.fullmatch(b) for b in (low, high)):
                return True
    return False
