"""HL7 v2 DT/DTM/TS values → FHIR date and dateTime.

DTM is ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``; TS (before v2.6) is ``DTM^precision``
(only the first component counts). The precision is kept: ``2025`` → ``2025``, ``202503`` →
``2025-03``, ``20250314`` → ``2025-03-14``. A value with a time becomes a FHIR dateTime with
seconds and an offset; when the sender gives no offset the time is read in the configured zone
(``--hl7-timezone``, default UTC), because FHIR requires a zone on every time.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

_DTM = re.compile(
    r"^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(\.\d{1,4})?)?)?)?)?)?"
    r"([+-]\d{4})?$"
)


def dtm_to_fhir(value: str, zone: tzinfo = UTC) -> str:
    """A FHIR date or dateTime for a DTM value; ValueError naming the problem if it is not one."""
    m = _DTM.match(value.strip())
    if m is None:
        raise ValueError(
            f"{value!r} is not an HL7 date/time (YYYY[MM[DD[HHMM[SS[.SSSS]]]]][+ZZZZ])"
        )
    year, month, day, hour, minute, second, fraction, offset = m.groups()
    try:
        if hour is None:
            date(int(year), int(month or 1), int(day or 1))
            return "-".join(p for p in (year, month, day) if p)
        zone_of = _offset(offset) if offset else zone
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0),
        )  # fmt: skip
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a valid date/time: {exc}") from None
    local = moment.replace(tzinfo=zone_of)
    text = local.isoformat()
    if fraction:
        text = text[:19] + fraction + text[19:]
    return text


def dtm_to_date(value: str) -> str:
    """A FHIR date (the date part of a DT/DTM value, its precision kept); ValueError if invalid."""
    head = value.strip()[:8]
    if not head.isdigit() or len(head) not in (4, 6, 8):
        raise ValueError(f"{value!r} is not an HL7 date (YYYY[MM[DD]])")
    return dtm_to_fhir(head)


def _offset(text: str) -> tzinfo:
    hours, minutes = int(text[1:3]), int(text[3:5])
    if hours > 14 or minutes > 59:
        raise ValueError(f"time zone offset {text!r} out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


def fhir_to_dtm(value: str) -> str:
    """FHIR date/dateTime/instant → DTM: ``2025-03-14T09:30:12+02:00`` → ``20250314093012+0200``."""
    text = value.strip()
    if "T" not in text:
        return text.replace("-", "")
    day, _, time = text.partition("T")
    offset = ""
    if time.endswith("Z"):
        time, offset = time[:-1], "+0000"
    elif len(time) > 6 and time[-6] in "+-":
        time, offset = time[:-6], time[-6] + time[-5:].replace(":", "")
    clock, _, fraction = time.partition(".")
    out = day.replace("-", "") + clock.replace(":", "")
    if fraction:
        out += "." + fraction[:4]
    return out + offset
