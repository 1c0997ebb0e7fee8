"""The Patient of a synthetic case (see :mod:`bench.datagen`): medical record number at the
inviting institution, national identifier (Romanian CNP or Chinese resident identity number, with
valid check digits), name with diacritics or Chinese characters, contact, language.
"""

from __future__ import annotations

import random

from bench import datagen_vocab as v
from bench.datagen_common import (
    Ids,
    Resource,
    chinese_resident_id,
    concept,
    day,
    narrative,
    ref,
    romanian_cnp,
    zone_of,
)
from bench.datagen_reference import Institution, address, person_name, phone

_YEAR = 31_557_600
_MARITAL = (("M", "Married"), ("S", "Never Married"), ("W", "Widowed"), ("D", "Divorced"))
_CN_AREAS = ("110108", "310115", "440106", "510107", "420106", "610113", "330106", "530102")


def build_patient(rng: random.Random, ids: Ids, home: Institution, t0: int) -> Resource:
    """A Patient of ``home``: MRN, national identifier, name, contact, language."""
    pid = ids.new("Patient")
    country = home.country
    female = rng.random() < 0.52
    name, display = person_name(rng, country if rng.random() < 0.95 else "other", female)
    zone = zone_of(country, t0)
    born = t0 - int(rng.triangular(0, 95, 68) * _YEAR) - rng.randrange(_YEAR)
    birth = day(born, zone)
    mrn = f"{home.code}-{pid[4:]}"
    national = _national_id(rng, country, female, birth)
    patient: Resource = {"resourceType": "Patient", "id": pid}
    if rng.random() < 0.6:
        sex = "female" if female else "male"
        patient["text"] = narrative([display, f"{sex}, born {birth}", f"MRN {mrn}"])
    patient["identifier"] = [
        {
            "use": "usual",
            "type": concept(v.V2_0203, "MR", "Medical record number"),
            "system": home.mrn_system,
            "value": mrn,
            "assigner": ref("Organization", home.org_id),
        },
        {
            "use": "official",
            "type": concept(v.V2_0203, "NI", "National unique individual identifier"),
            "system": v.RESIDENT_ID if country == "cn" else v.CNP,
            "value": national,
        },
    ]
    patient["active"] = True
    patient["name"] = [name]
    telecom = [{"system": "phone", "value": phone(rng, country), "use": "mobile"}]
    if rng.random() < 0.4:
        telecom.append({"system": "email", "value": f"{pid}@mail.example.com", "use": "home"})
    patient["telecom"] = telecom
    patient["gender"] = "female" if female else "male"
    patient["birthDate"] = birth
    patient["address"] = [address(rng, country, "home")]
    status = rng.choice(_MARITAL)
    patient["maritalStatus"] = concept(v.V3_MARITAL, status[0], status[1])
    lang, lang_display = v.LANGUAGES[country]
    patient["communication"] = [
        {"language": concept(v.LANGUAGE, lang, lang_display), "preferred": True}
    ]
    if rng.random() < 0.5:
        gp = home.clinicians[-1]
        patient["generalPractitioner"] = [ref("PractitionerRole", gp.role_id, gp.display)]
    patient["managingOrganization"] = ref("Organization", home.org_id, home.name)
    return patient


def _national_id(rng: random.Random, country: str, female: bool, birth: str) -> str:
    """A Romanian CNP or a Chinese resident identity number, check digit included."""
    year, month, dom = birth.split("-")
    if country == "cn":
        seq = rng.randrange(0, 999, 2) + (0 if female else 1)
        return chinese_resident_id(f"{rng.choice(_CN_AREAS)}{year}{month}{dom}{seq:03d}")
    sex = (2 if female else 1) + (4 if int(year) >= 2000 else 0)
    county = rng.randint(1, 46)
    return romanian_cnp(f"{sex}{year[2:]}{month}{dom}{county:02d}{rng.randint(1, 999):03d}")
