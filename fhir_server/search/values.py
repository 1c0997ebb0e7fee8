"""Normalisation of search values, shared by the indexer (write side) and the parser (read side).

Both sides must turn the same text into the same key, or a search silently misses: that is why
string folding, date ranges and the implicit precision of numbers live in one module.

Decisions where R4 leaves room (http://hl7.org/fhir/R4/search.html):

* strings: compatibility decomposition (NFKD), combining marks dropped, ``casefold``, runs of
  whitespace collapsed to one space, trimmed (search.html#string: "case- and accent-insensitive");
* dates: a time without a zone is read as UTC (R4 says the server's zone; this server's is UTC);
  a leap second ``:60`` is read as ``:59`` at the same precision;
* numbers: the implicit range is half a unit of the last significant digit on each side, also
  with an exponent (``5.40e-3`` is ``[0.005395, 0.005405)``, as in search.html#quantity). The
  table of search.html#number gives ``1e2`` as ``[95 ... 105)`` while calling it "1 significant
  figure"; one significant figure of 100 is ``[50, 150)``, which is what is used here.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation

from fhir_server.core import r4
from fhir_server.search.model import MAX_INSTANT, MIN_INSTANT

_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


# FHIR date / dateTime / instant, plus hh:mm (minute precision) which search values may use.
_DATE_TIME = re.compile(
    r"(?P<year>[0-9]{4})"
    r"(?:-(?P<month>[0-9]{2})"
    r"(?:-(?P<day>[0-9]{2})"
    r"(?:T(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})?"
    r")?)?)?"
)

_HISTORY = re.compile(r"/_history/[^/]*$")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")

_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def normalize_string(text: str) -> str:
    """The form string search compares: accents removed, case folded, whitespace collapsed.

    ``"Émilie  Dürr"`` becomes ``"emilie durr"``. NFKD also splits ligatures and compatibility
    characters (``"ﬁ"`` -> ``"fi"``), so what a user types matches what was stored.
    """
    if text.isascii():  # the common case: NFKD changes nothing, casefold is lower
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().split())


def date_bounds(text: str) -> tuple[int, int]:
    """The inclusive range, in microseconds since the epoch (UTC), a FHIR date/time denotes.

    The range follows the precision written: ``2020`` is the whole year, ``2020-02-03T10:00``
    one minute, ``10:00:00.5`` a tenth of a second. Raises ValueError with a short reason for
    anything that is not a FHIR date, dateTime or instant (or a search's ``hh:mm`` form), and for
    impossible dates such as ``2021-02-30``.
    """
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise ValueError("not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or with a time)")
    year_text, month_text, day_text, hour_text, minute_text, second_text, fraction, zone = (
        match.groups()
    )
    year = int(year_text)
    if year == 0:
        raise ValueError("there is no year zero")
    if month_text is None:
        low = _day_micros(year, 1, 1)
        return low, _day_micros(year + 1, 1, 1) - 1 if year < 9999 else MAX_INSTANT
    month = int(month_text)
    if not 1 <= month <= 12:
        raise ValueError("month out of range")
    if day_text is None:
        low = _day_micros(year, month, 1)
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        high = _day_micros(*following, 1) - 1 if following[0] <= 9999 else MAX_INSTANT
        return low, high
    day_start = _day_micros(year, month, int(day_text))
    if hour_text is None:
        return day_start, day_start + _DAY - 1
    hour, minute = int(hour_text), int(minute_text)
    if hour > 23 or minute > 59:
        raise ValueError("time out of range")
    seconds = hour * 3600 + minute * 60  # small ints until the end: cheaper arithmetic
    width = _MINUTE
    micros = 0
    if second_text is not None:
        second = int(second_text)
        if second > 60:
            raise ValueError("seconds out of range")
        seconds += min(second, 59)
        width = _SECOND
        if fraction is not None:
            digits = fraction[:6]
            width = 10 ** (6 - len(digits))
            micros = int(digits) * width
    if zone is not None and zone != "Z":
        zone_hours, zone_minutes = int(zone[1:3]), int(zone[4:6])
        if zone_hours > 14 or zone_minutes > 59:
            raise ValueError("time-zone offset out of range")
        offset = zone_hours * 3600 + zone_minutes * 60
        seconds -= offset if zone[0] == "+" else -offset
    low = day_start + seconds * _SECOND + micros
    high = low + width - 1
    return max(low, MIN_INSTANT), min(high, MAX_INSTANT)


def _day_micros(year: int, month: int, day: int) -> int:
    """Microseconds from the epoch to 00:00Z of that day; ValueError for impossible dates."""
    try:
        ordinal = date(year, month, day).toordinal()
    except ValueError:
        raise ValueError("no such day in the calendar") from None
    return (ordinal - _EPOCH_ORDINAL) * _DAY


def number_bounds(text: str) -> tuple[float, float, float]:
    """``(value, low, high)``: a decimal and the implicit range ``[low, high)`` of its precision.

    Half a unit of the last digit written on each side (search.html#number): ``100`` gives
    ``(100, 99.5, 100.5)``, ``100.00`` gives ``(100, 99.995, 100.005)``, ``1e2`` (one significant
    figure) gives ``(100, 50, 150)``. Raises ValueError for anything but a decimal number.
    """
    if _DECIMAL.fullmatch(text) is None:
        raise ValueError("not a decimal number")
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        raise ValueError("not a decimal number") from None
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite: the pattern excludes NaN and Infinity
    half = Decimal(5).scaleb(exponent - 1)
    return float(number), float(number - half), float(number + half)


def decimal_value(value: object) -> float | None:
    """A JSON number of a resource (int, float or the parser's exact Decimal) as a float.

    None for anything else (a boolean, a string, a malformed element): indexing skips it rather
    than failing the write of an otherwise valid resource.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        result = float(value)
        return result if result == result else None  # NaN never matches; keep it out
    return None


def is_id(text: str) -> bool:
    """Whether ``text`` is a valid resource id (R4 datatypes.html#id)."""
    return _ID.fullmatch(text) is not None


def split_reference(text: str) -> tuple[str, str] | None:
    """``(type, id)`` of a literal reference that ends in ``Type/id`` (``Type`` an R4 resource
    type, ``id`` a valid id), optionally followed by ``/_history/version``: ``Patient/1``,
    ``http://other.org/fhir/Patient/1/_history/2``. None for anything else (``#contained``,
    ``urn:uuid:...``, a conditional ``Patient?identifier=...``, a canonical without that shape).
    """
    path = _HISTORY.sub("", text) if "/_history/" in text else text
    parts = path.rsplit("/", 2)
    if len(parts) < 2:
        return None
    resource_type, id_ = parts[-2], parts[-1]
    if r4.is_resource_type(resource_type) and _ID.fullmatch(id_):
        return resource_type, id_
    return None
