"""Small building blocks of the synthetic data (see :mod:`bench.datagen`): ids, time stamps with
time zones, codings, references and narratives. Everything is a pure function of its arguments or
of the ``random.Random`` it is given.
"""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Sequence
from typing import Any

from bench import datagen_vocab as v

Resource = dict[str, Any]

# Ten years of activity: 2016-01-01T00:00:00Z .. 2025-12-31T00:00:00Z.
EPOCH_START = 1_451_606_400
EPOCH_END = 1_767_139_200
_ZONE_TEXT = {2: "+02:00", 3: "+03:00", 8: "+08:00"}

ID_PREFIX = {
    "Organization": "org",
    "Practitioner": "pr",
    "PractitionerRole": "prr",
    "Patient": "pat",
    "Consent": "cons",
    "ServiceRequest": "sr",
    "Task": "task",
    "ImagingStudy": "img",
    "DiagnosticReport": "dr",
    "Observation": "obs",
}


class Ids:
    """Deterministic ids per type: ``pat-0000001``, ``obs-0000042`` (valid FHIR ids)."""

    def __init__(self) -> None:
        self._next = dict.fromkeys(ID_PREFIX, 0)

    def new(self, kind: str) -> str:
        number = self._next[kind] + 1
        self._next[kind] = number
        return f"{ID_PREFIX[kind]}-{number:07d}"


def zone_of(country: str, t: int) -> int:
    """UTC offset in hours: China +08:00; Romania EET/EEST (+03:00 from April to October)."""
    if country == "cn":
        return 8
    month = _date((t + 7200) // 86_400)[5:7]
    return 3 if "04" <= month <= "10" else 2


@functools.lru_cache(maxsize=65_536)
def _date(days: int) -> str:
    g = time.gmtime(days * 86_400)
    return f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}"


def stamp(t: int, zone: int) -> str:
    """A FHIR dateTime/instant with seconds and the zone: ``2021-03-04T10:22:33+02:00``."""
    days, seconds = divmod(t + zone * 3600, 86_400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_date(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}{_ZONE_TEXT[zone]}"


def day(t: int, zone: int) -> str:
    """The local date (``YYYY-MM-DD``) of ``t``."""
    return _date((t + zone * 3600) // 86_400)


def coding(system: str, code: str, display: str | None = None) -> Resource:
    if display is None:
        return {"system": system, "code": code}
    return {"system": system, "code": code, "display": display}


def concept(system: str, code: str, display: str, text: str | None = None) -> Resource:
    out: Resource = {"coding": [{"system": system, "code": code, "display": display}]}
    if text is not None:
        out["text"] = text
    return out


def snomed(pair: tuple[str, str]) -> Resource:
    return concept(v.SNOMED, pair[0], pair[1])


def ref(kind: str, rid: str, display: str | None = None) -> Resource:
    if display is None:
        return {"reference": f"{kind}/{rid}"}
    return {"reference": f"{kind}/{rid}", "display": display}


def narrative(lines: Sequence[str]) -> Resource:
    """A generated narrative: one ``<p>`` per line, escaped."""
    body = "".join(f"<p>{html.escape(line, quote=False)}</p>" for line in lines)
    return {"status": "generated", "div": f"{v.XHTML}{body}</div>"}


def romanian_cnp(prefix12: str) -> str:
    """Append the check digit of a Romanian CNP (weights 279146358279, mod 11, 10 → 1)."""
    total = sum(int(d) * int(w) for d, w in zip(prefix12, "279146358279", strict=True))
    check = total % 11
    return prefix12 + ("1" if check == 10 else str(check))


def chinese_resident_id(prefix17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character of a resident identity card number."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(int(d) * w for d, w in zip(prefix17, weights, strict=True))
    return prefix17 + "10X98765432"[total % 11]
