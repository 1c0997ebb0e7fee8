"""Shared reference data of the synthetic stream (see :mod:`bench.datagen`): Organizations
(platforms, beneficiary/inviting hospitals, provider/invited hospitals and their radiology
departments), Practitioners and the PractitionerRoles linking them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench import datagen_vocab as v
from bench.datagen_common import (
    EPOCH_START,
    Ids,
    Resource,
    concept,
    day,
    narrative,
    ref,
    snomed,
)

STAFF_PER_HOSPITAL = 8
MAX_HOSPITALS = 240
_YEAR = 31_557_600
_WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


@dataclass(frozen=True, slots=True)
class Staff:
    """One PractitionerRole and what a case needs to cite it."""

    role_id: str
    practitioner_id: str
    display: str
    specialty: tuple[str, str]


@dataclass(slots=True)
class Institution:
    org_id: str
    name: str
    country: str  # "ro" | "cn"
    kind: str  # "beneficiary" | "provider" | "platform"
    code: str
    workplace: str = ""  # the Organization its radiologists work in (its radiology department)
    clinicians: list[Staff] = field(default_factory=list)
    radiologists: list[Staff] = field(default_factory=list)

    @property
    def mrn_system(self) -> str:
        return f"{v.LOCAL}/sid/mrn/{self.code.lower()}"


@dataclass(slots=True)
class Directory:
    platforms: dict[str, Institution] = field(default_factory=dict)
    beneficiaries: list[Institution] = field(default_factory=list)
    providers: dict[str, list[Institution]] = field(default_factory=dict)


def hospital_count(size: int) -> int:
    return max(4, min(MAX_HOSPITALS, size // 1200))


def person_name(rng: random.Random, country: str, female: bool) -> tuple[Resource, str]:
    """An official HumanName and its display text."""
    if country == "cn":
        return _chinese_name(rng, female)
    families = v.FAMILY_RO if country == "ro" else v.FAMILY_OTHER
    givens: tuple[str, ...]
    if country == "ro":
        givens = v.GIVEN_RO_F if female else v.GIVEN_RO_M
    else:
        givens = v.GIVEN_OTHER_F if female else v.GIVEN_OTHER_M
    family = rng.choice(families)
    given = [rng.choice(givens)]
    if rng.random() < 0.3:
        given.append(rng.choice(givens))
    return {"use": "official", "family": family, "given": given}, f"{' '.join(given)} {family}"


def _chinese_name(rng: random.Random, female: bool) -> tuple[Resource, str]:
    """Pinyin in family/given, the characters in ``text``."""
    family, family_zh = rng.choice(v.FAMILY_CN)
    given, given_zh = rng.choice(v.GIVEN_CN_F if female else v.GIVEN_CN_M)
    text = f"{family_zh}{given_zh}"
    name = {"use": "official", "text": text, "family": family, "given": [given]}
    return name, f"{text} ({family} {given})"


def phone(rng: random.Random, country: str) -> str:
    if country == "cn":
        return f"+86 13{rng.randrange(10)} {rng.randrange(10000):04d} {rng.randrange(10000):04d}"
    return f"+40 7{rng.randrange(10, 90)} {rng.randrange(1000):03d} {rng.randrange(1000):03d}"


def address(rng: random.Random, country: str, use: str) -> Resource:
    place = rng.choice(v.PLACES_CN if country == "cn" else v.PLACES_RO)
    street = rng.choice(v.STREETS_CN if country == "cn" else v.STREETS_RO)
    postal = f"{place.postal_prefix}{rng.randrange(10000):04d}"
    return {
        "use": use,
        "line": [f"{street} {rng.randrange(1, 240)}"],
        "city": place.city,
        "district": place.district,
        "postalCode": postal,
        "country": country.upper(),
    }


class ReferenceBuilder:
    """Builds the directory and its resources in dependency order."""

    def __init__(self, rng: random.Random, ids: Ids) -> None:
        self.rng = rng
        self.ids = ids
        self.directory = Directory()
        self._names: set[str] = set()

    def build(self, size: int) -> list[Resource]:
        out = [self._platform("ro"), self._platform("cn")]
        hospitals: list[Institution] = []
        for i in range(hospital_count(size)):
            country = ("ro", "cn")[i % 2]
            kind = "provider" if (i // 2) % 3 == 0 else "beneficiary"
            hospital, resources = self._hospital(country, kind, i + 1)
            hospitals.append(hospital)
            out.extend(resources)
        for hospital in hospitals:
            out.extend(self._staff(hospital))
        return out

    def _organization(
        self, inst: Institution, types: Sequence[Resource], part_of: str | None
    ) -> Resource:
        rng = self.rng
        org: Resource = {"resourceType": "Organization", "id": inst.org_id}
        if rng.random() < 0.5:
            org["text"] = narrative([inst.name, f"Identifier {inst.code}"])
        org["identifier"] = [{"use": "official", "system": v.ORG_ID, "value": inst.code}]
        org["active"] = True
        org["type"] = list(types)
        org["name"] = inst.name
        domain = inst.code.lower()
        org["telecom"] = [
            {"system": "phone", "value": phone(rng, inst.country), "use": "work"},
            {"system": "email", "value": f"contact@{domain}.example.org", "use": "work"},
        ]
        org["address"] = [address(rng, inst.country, "work")]
        if part_of is not None:
            org["partOf"] = ref("Organization", part_of)
        return org

    def _platform(self, country: str) -> Resource:
        name = (
            "Platforma Națională de Telemedicină"
            if country == "ro"
            else "National Telemedicine Service Platform"
        )
        inst = Institution(self.ids.new("Organization"), name, country, "platform", f"{country}-P")
        self.directory.platforms[country] = inst
        types = [
            concept(v.ORG_TYPE, "other", "Other"),
            concept(v.ORG_ROLE, "platform", "Telemedicine platform"),
        ]
        return self._organization(inst, types, None)

    def _hospital(self, country: str, kind: str, number: int) -> tuple[Institution, list[Resource]]:
        rng = self.rng
        if country == "ro":
            place = rng.choice(v.PLACES_RO)
            name = f"{rng.choice(v.HOSPITAL_RO)} {place.city}"
        else:
            place = rng.choice(v.PLACES_CN)
            name = f"{place.city} {rng.choice(v.HOSPITAL_CN)}"
        while name in self._names:
            name = f"{name} {number}"
        self._names.add(name)
        code = f"{country.upper()}-H{number:03d}"
        inst = Institution(self.ids.new("Organization"), name, country, kind, code)
        role = ("provider", "Provider (invited institution)")
        if kind == "beneficiary":
            role = ("beneficiary", "Beneficiary (inviting institution)")
            self.directory.beneficiaries.append(inst)
        else:
            self.directory.providers.setdefault(country, []).append(inst)
        types = [concept(v.ORG_TYPE, "prov", "Healthcare Provider"), concept(v.ORG_ROLE, *role)]
        out = [self._organization(inst, types, None)]
        if kind == "provider":
            dept_name = "Radiologie și Imagistică Medicală" if country == "ro" else "Radiology"
            dept = Institution(
                self.ids.new("Organization"),
                f"{name} — {dept_name}",
                country,
                "dept",
                code + "-RAD",
            )
            dept_type = [concept(v.ORG_TYPE, "dept", "Hospital Department")]
            out.append(self._organization(dept, dept_type, inst.org_id))
            inst.workplace = dept.org_id
        return inst, out

    def _staff(self, inst: Institution) -> list[Resource]:
        plan: list[tuple[str, str] | None]
        if inst.kind == "provider":
            plan = [v.RADIOLOGY] * 4 + [v.NUCLEAR_MEDICINE] + [None] * 3
        else:
            plan = [None] * 6 + [v.RADIOLOGY, ("394814009", "General practice")]
        workplace = inst.workplace or inst.org_id
        out: list[Resource] = []
        for specialty in plan:
            chosen = specialty or self.rng.choice(v.CLINICAL_SPECIALTIES)
            radiology = chosen in (v.RADIOLOGY, v.NUCLEAR_MEDICINE)
            org_id = workplace if radiology else inst.org_id
            practitioner, display = self._practitioner(inst.country, chosen)
            role_id = self.ids.new("PractitionerRole")
            staff = Staff(role_id, practitioner["id"], display, chosen)
            (inst.radiologists if radiology else inst.clinicians).append(staff)
            out.append(practitioner)
            out.append(self._role(staff, org_id, inst.country))
        return out

    def _practitioner(self, country: str, specialty: tuple[str, str]) -> tuple[Resource, str]:
        rng = self.rng
        pid = self.ids.new("Practitioner")
        female = rng.random() < 0.5
        name, display = person_name(rng, country, female)
        name["prefix"] = ["Dr."]
        born = EPOCH_START - rng.randrange(28 * _YEAR, 66 * _YEAR)
        graduated = born + rng.randrange(24 * _YEAR, 28 * _YEAR)
        specialist = graduated + rng.randrange(3 * _YEAR, 7 * _YEAR)
        zone = 8 if country == "cn" else 2
        lang, lang_display = v.LANGUAGES[country]
        practitioner: Resource = {
            "resourceType": "Practitioner",
            "id": pid,
            "identifier": [
                {"use": "official", "system": v.LICENCE, "value": f"{country.upper()}{pid[3:]}"}
            ],
            "active": True,
            "name": [name],
            "telecom": [
                {"system": "email", "value": f"{pid}@staff.example.org", "use": "work"},
                {"system": "phone", "value": phone(rng, country), "use": "work"},
            ],
            "gender": "female" if female else "male",
            "birthDate": day(born, zone),
            "qualification": [
                {
                    "code": concept(v.V2_0360, "MD", "Doctor of Medicine"),
                    "period": {"start": day(graduated, zone)},
                },
                {
                    "identifier": [{"system": v.LICENCE, "value": f"SP-{pid[3:]}"}],
                    "code": snomed(specialty),
                    "period": {"start": day(specialist, zone)},
                },
            ],
            "communication": [concept(v.LANGUAGE, lang, lang_display)],
        }
        return practitioner, f"Dr. {display}"

    def _role(self, staff: Staff, org_id: str, country: str) -> Resource:
        start = EPOCH_START - self.rng.randrange(15 * _YEAR)
        return {
            "resourceType": "PractitionerRole",
            "id": staff.role_id,
            "active": True,
            "period": {"start": day(start, 8 if country == "cn" else 2)},
            "practitioner": ref("Practitioner", staff.practitioner_id, staff.display),
            "organization": ref("Organization", org_id),
            "code": [concept(v.PRACTITIONER_ROLE, "doctor", "Doctor")],
            "specialty": [snomed(staff.specialty)],
            "telecom": [{"system": "email", "value": f"{staff.role_id}@staff.example.org"}],
            "availableTime": [
                {
                    "daysOfWeek": _WEEKDAYS,
                    "availableStartTime": "08:00:00",
                    "availableEndTime": "16:00:00",
                }
            ],
        }
