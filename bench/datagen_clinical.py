"""Clinical content of a synthetic case (see :mod:`bench.datagen`): the ImagingStudy (series x
instances with DICOM UIDs) and the Observations (vital signs, laboratory, imaging findings).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bench import datagen_vocab as v
from bench.datagen_common import Ids, Resource, concept, ref, snomed, stamp
from bench.datagen_reference import Staff

_SERIES = {
    "CT": ("Axial 5 mm", "Axial 1.25 mm bone", "Coronal MPR", "Sagittal MPR", "Topogram"),
    "MR": ("T1 SE", "T2 FSE", "FLAIR", "DWI b1000", "T1 post-contrast"),
    "CR": ("PA", "Lateral", "AP", "Oblique"),
    "DX": ("PA", "Lateral", "AP", "Oblique"),
    "US": ("B-mode", "Color Doppler", "Spectral Doppler", "Cine loop"),
}
_LATERAL_SITES = {"72696002"}
_LATERALITY = (("7771000", "Left"), ("24028007", "Right"))
_INTERPRETATION = {
    "L": ("L", "Low"),
    "N": ("N", "Normal"),
    "H": ("H", "High"),
}
_CATEGORY_DISPLAY = {
    "vital-signs": "Vital Signs",
    "laboratory": "Laboratory",
    "imaging": "Imaging",
}


@dataclass(slots=True)
class Episode:
    """What every resource of one request needs to cite."""

    kind: str  # "teleradiology" | "consultation" | "diagnosis"
    country: str
    zone: int
    t: int
    patient_id: str
    beneficiary_id: str
    provider_id: str
    requester: Staff
    reader: Staff
    request_id: str = ""
    study_id: str = ""
    modality: v.Modality | None = None
    body_site: tuple[str, str] | None = None

    @property
    def service(self) -> str:
        """The telemedicine service code (local CodeSystem ``SERVICE``)."""
        return "teleradiology" if self.kind == "teleradiology" else f"remote-{self.kind}"


def dicom_uid(rng: random.Random) -> str:
    """A UUID-derived DICOM UID (``2.25.<uuid as integer>``, PS3.5 B.2), at most 44 chars."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (4 << 76)
    bits = (bits & ~(0xC << 60)) | (0x8 << 60)
    return f"2.25.{bits}"


def _quantity(value: float | int, unit: str) -> Resource:
    return {"value": value, "unit": unit, "system": v.UCUM, "code": unit}


def _value(rng: random.Random, test: v.Loinc) -> float | int:
    if rng.random() < 0.7 and test.normal[1] > test.normal[0]:
        low, high = max(test.low, test.normal[0]), min(test.high, test.normal[1])
    else:
        low, high = test.low, test.high
    raw = rng.uniform(low, high)
    return round(raw) if test.decimals == 0 else round(raw, test.decimals)


class ClinicalBuilder:
    def __init__(self, rng: random.Random, ids: Ids) -> None:
        self.rng = rng
        self.ids = ids

    def imaging_study(self, ep: Episode) -> Resource:
        rng = self.rng
        assert ep.modality is not None and ep.body_site is not None
        modality = ep.modality
        study_uid = dicom_uid(rng)
        series: list[Resource] = []
        total = 0
        started = ep.t + rng.randrange(600, 7200)
        for number in range(1, rng.randint(1, 4) + 1):
            count = rng.randint(10, 60)
            total += count
            series.append(self._series(ep, number, count, started))
        ep.study_id = self.ids.new("ImagingStudy")
        site = ep.body_site[1]
        return {
            "resourceType": "ImagingStudy",
            "id": ep.study_id,
            "identifier": [
                {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"},
                {
                    "type": concept(v.V2_0203, "ACSN", "Accession ID"),
                    "system": f"{v.LOCAL}/sid/accession/{ep.beneficiary_id}",
                    "value": f"A{ep.study_id[4:]}",
                },
            ],
            "status": "available",
            "modality": [
                {"system": v.DICOM_DCM, "code": modality.code, "display": modality.display}
            ],
            "subject": ref("Patient", ep.patient_id),
            "started": stamp(started, ep.zone),
            "basedOn": [ref("ServiceRequest", ep.request_id)],
            "referrer": ref("PractitionerRole", ep.requester.role_id, ep.requester.display),
            "numberOfSeries": len(series),
            "numberOfInstances": total,
            "procedureCode": [snomed(modality.procedure)],
            "description": f"{modality.code} {site}",
            "series": series,
        }

    def _series(self, ep: Episode, number: int, count: int, started: int) -> Resource:
        rng = self.rng
        assert ep.modality is not None and ep.body_site is not None
        modality, site = ep.modality, ep.body_site
        sop = {"system": v.URN_IETF, "code": f"urn:oid:{modality.sop_class}"}
        out: Resource = {
            "uid": dicom_uid(rng),
            "number": number,
            "modality": {"system": v.DICOM_DCM, "code": modality.code},
            "description": rng.choice(_SERIES[modality.code]),
            "numberOfInstances": count,
            "bodySite": {"system": v.SNOMED, "code": site[0], "display": site[1]},
        }
        if site[0] in _LATERAL_SITES:
            side = rng.choice(_LATERALITY)
            out["laterality"] = {"system": v.SNOMED, "code": side[0], "display": side[1]}
        out["started"] = stamp(started + number * 90, ep.zone)
        out["instance"] = [
            {"uid": dicom_uid(rng), "sopClass": sop, "number": k} for k in range(1, count + 1)
        ]
        return out

    def _base(
        self, ep: Episode, category: str, code: tuple[str, str], t: int, performer: Staff
    ) -> Resource:
        obs: Resource = {"resourceType": "Observation", "id": self.ids.new("Observation")}
        if ep.request_id and category == "imaging":
            obs["basedOn"] = [ref("ServiceRequest", ep.request_id)]
        roll = self.rng.random()
        obs["status"] = "final" if roll < 0.93 else ("amended" if roll < 0.97 else "preliminary")
        obs["category"] = [concept(v.OBS_CATEGORY, category, _CATEGORY_DISPLAY[category])]
        obs["code"] = concept(v.LOINC, code[0], code[1])
        obs["subject"] = ref("Patient", ep.patient_id)
        obs["effectiveDateTime"] = stamp(t, ep.zone)
        obs["issued"] = stamp(t + self.rng.randrange(60, 14_400), ep.zone)
        obs["performer"] = [ref("PractitionerRole", performer.role_id, performer.display)]
        return obs

    def measurement(self, ep: Episode, test: v.Loinc, t: int, performer: Staff) -> Resource:
        obs = self._base(ep, test.category, (test.code, test.display), t, performer)
        value = _value(self.rng, test)
        obs["valueQuantity"] = _quantity(value, test.unit)
        low, high = test.normal
        if high > low:
            flag = "L" if value < low else ("H" if value > high else "N")
            code, display = _INTERPRETATION[flag]
            obs["interpretation"] = [concept(v.V3_INTERPRETATION, code, display)]
            obs["referenceRange"] = [
                {"low": _quantity(low, test.unit), "high": _quantity(high, test.unit)}
            ]
        if test.category == "imaging" and ep.study_id:
            obs["derivedFrom"] = [ref("ImagingStudy", ep.study_id)]
        return obs

    def blood_pressure(self, ep: Episode, t: int, performer: Staff) -> Resource:
        obs = self._base(ep, "vital-signs", v.BP_PANEL, t, performer)
        obs["component"] = [
            {
                "code": concept(v.LOINC, test.code, test.display),
                "valueQuantity": _quantity(_value(self.rng, test), test.unit),
            }
            for test in (v.BP_SYSTOLIC, v.BP_DIASTOLIC)
        ]
        return obs

    def record_summary(self, ep: Episode, count: int) -> list[Resource]:
        """Vital signs and laboratory results taken at the inviting institution."""
        rng = self.rng
        out: list[Resource] = []
        t = ep.t - rng.randrange(3_600, 5 * 86_400)
        for i in range(count):
            taken = t + i * rng.randrange(60, 1_800)
            if i == 0 and rng.random() < 0.6:
                out.append(self.blood_pressure(ep, taken, ep.requester))
                continue
            pool = v.VITALS if rng.random() < 0.35 else v.LABS
            out.append(self.measurement(ep, rng.choice(pool), taken, ep.requester))
        return out

    def findings(self, ep: Episode, t: int) -> tuple[list[Resource], tuple[str, str, str]]:
        """The radiologist's findings: a coded finding, maybe a narrative and a measurement."""
        rng = self.rng
        finding = v.FINDINGS[0] if rng.random() < 0.35 else rng.choice(v.FINDINGS[1:])
        obs = self._base(ep, "imaging", v.IMAGING_FINDING, t, ep.reader)
        obs["valueCodeableConcept"] = concept(v.SNOMED, finding[0], finding[1], finding[2])
        if ep.body_site is not None:
            obs["bodySite"] = snomed(ep.body_site)
        obs["derivedFrom"] = [ref("ImagingStudy", ep.study_id)]
        out = [obs]
        if rng.random() < 0.4:
            text = self._base(ep, "imaging", v.RADIOLOGY_NARRATIVE, t, ep.reader)
            text["valueString"] = f"{finding[2]} Clinical correlation recommended."
            text["derivedFrom"] = [ref("ImagingStudy", ep.study_id)]
            out.append(text)
        if ep.body_site is not None and ep.body_site[0] == "80891009":
            out.append(self.measurement(ep, v.IMAGING_MEASURES[0], t, ep.reader))
        elif finding[0] == "126713003":
            out.append(self.measurement(ep, rng.choice(v.IMAGING_MEASURES[1:]), t, ep.reader))
        return out, finding
