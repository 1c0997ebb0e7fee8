"""One synthetic case (see :mod:`bench.datagen`): a Patient and, per request, the Consent(s), the
ServiceRequest, the ImagingStudy, the Observations, the DiagnosticReport and the Task(s), in
dependency order (every reference points to a resource yielded before it).
"""

from __future__ import annotations

import base64
import random

from bench import datagen_vocab as v
from bench.datagen_clinical import ClinicalBuilder, Episode
from bench.datagen_common import (
    EPOCH_END,
    EPOCH_START,
    Ids,
    Resource,
    coding,
    concept,
    narrative,
    ref,
    snomed,
    stamp,
    zone_of,
)
from bench.datagen_patient import build_patient
from bench.datagen_reference import (
    Directory,
    Institution,
    Staff,
)

_DAY = 86_400
# Task.status outcomes with their weights, and what they mean for the request.
_OUTCOMES = ("completed", "in-progress", "accepted", "received", "requested", "rejected",
             "cancelled", "failed")  # fmt: skip
_OUTCOME_WEIGHTS = (80, 6, 3, 2, 3, 3, 2, 1)
_REQUEST_STATUS = {"completed": "completed", "rejected": "revoked", "cancelled": "revoked",
                   "failed": "revoked"}  # fmt: skip
_BUSINESS = {
    "completed": ("receipt-confirmed", "Report received by the beneficiary"),
    "in-progress": ("reporting", "Reading in progress"),
    "accepted": ("accepted", "Accepted by the invited institution"),
    "received": ("awaiting-acceptance", "Awaiting acceptance"),
    "requested": ("published", "Published, awaiting an invited institution"),
    "rejected": ("refused", "Refused with reasons"),
    "cancelled": ("withdrawn", "Withdrawn by the inviting institution"),
    "failed": ("undeliverable", "Report could not be delivered"),
}
_REFUSALS = (
    "Images incomplete: series missing",
    "Patient identification missing on the images",
    "Requested specialty not available",
    "Study date missing",
)  # fmt: skip
_PRIORITIES = ("routine", "urgent", "asap", "stat")
_PRIORITY_WEIGHTS = (80, 12, 5, 3)
_PLANS = (
    "continue the current treatment and review in three months",
    "adjust the medication as described and repeat the laboratory tests in four weeks",
    "refer for an in-person visit at the invited institution",
    "further imaging is recommended before a decision",
)  # fmt: skip


class CaseBuilder:
    def __init__(self, rng: random.Random, ids: Ids, directory: Directory) -> None:
        self.rng = rng
        self.ids = ids
        self.directory = directory
        self.clinical = ClinicalBuilder(rng, ids)

    def case(self) -> tuple[str, str, list[Resource]]:
        """(kind, patient id, resources) of one new case."""
        rng = self.rng
        beneficiary = rng.choice(self.directory.beneficiaries)
        country = beneficiary.country
        roll = rng.random()
        radiology_share = 0.7 if country == "ro" else 0.35
        kind = "teleradiology" if roll < radiology_share else "consultation"
        if kind == "consultation" and rng.random() < 0.35:
            kind = "diagnosis"
        t0 = rng.randrange(EPOCH_START + 30 * _DAY, EPOCH_END - 60 * _DAY)
        patient = build_patient(rng, self.ids, beneficiary, t0)
        out = [patient]
        episodes = 2 if rng.random() < 0.15 else 1
        for number in range(episodes):
            t = t0 if number == 0 else min(t0 + rng.randrange(20, 400) * _DAY, EPOCH_END - _DAY)
            out.extend(self.episode(kind, beneficiary, patient["id"], t))
        return kind, patient["id"], out

    def episode(self, kind: str, home: Institution, patient_id: str, t: int) -> list[Resource]:
        """One request: Consent(s), ServiceRequest, record, study, findings, report, Task(s)."""
        rng = self.rng
        ep, provider = self._episode(kind, home, patient_id, t)
        imaging = ep.modality is not None
        outcome = rng.choices(_OUTCOMES, _OUTCOME_WEIGHTS)[0]
        consents = [self.consent(ep, "service")]
        if imaging and rng.random() < 0.3:
            consents.append(self.consent(ep, "image-transfer"))
        out = [*consents, self.service_request(ep, outcome, consents)]
        summary = self.clinical.record_summary(
            ep, rng.randint(1, 4) if imaging else rng.randint(3, 9)
        )
        out.extend(summary)
        if imaging:
            out.append(self.clinical.imaging_study(ep))
        report = None
        read_at = ep.t + rng.randrange(2 * 3600, 3 * _DAY)
        if outcome == "completed" or (outcome == "in-progress" and rng.random() < 0.4):
            finding = ("", "", "")
            results = summary[-2:]
            if imaging:
                results, finding = self.clinical.findings(ep, read_at)
                out.extend(results)
            report = self.report(ep, outcome, read_at, results, finding)
            out.append(report)
        modified = read_at + rng.randrange(600, 2 * _DAY)
        task = self.task(ep, outcome, provider, report, modified)
        out.append(task)
        if not imaging and outcome == "completed" and rng.random() < 0.1:
            out.extend(self.subtask(ep, task, s) for s in rng.sample(provider.clinicians, 2))
        return out

    def _episode(
        self, kind: str, home: Institution, patient_id: str, t: int
    ) -> tuple[Episode, Institution]:
        """Who takes part: the invited institution, the reader, the requesting physician."""
        rng = self.rng
        country = home.country
        provider = rng.choice(self.directory.providers[country])
        imaging = kind == "teleradiology" or (kind == "diagnosis" and rng.random() < 0.5)
        reader = rng.choice(provider.radiologists if imaging else provider.clinicians)
        requester = rng.choice(home.clinicians)
        ep = Episode(kind, country, zone_of(country, t), t, patient_id, home.org_id,
                     provider.org_id, requester, reader)  # fmt: skip
        if imaging:
            ep.modality = rng.choices(v.MODALITIES, v.MODALITY_WEIGHTS)[0]
            ep.body_site = rng.choice(ep.modality.body_sites)
        return ep, provider

    def consent(self, ep: Episode, purpose: str) -> Resource:
        rng = self.rng
        cid = self.ids.new("Consent")
        signed = ep.t - rng.randrange(600, 3 * _DAY)
        service = ep.service
        category = [concept(v.LOINC, "59284-0", "Patient Consent")]
        if purpose == "image-transfer":
            category.append(concept(v.SERVICE, "image-transfer", "Transfer of images"))
            action = concept("http://terminology.hl7.org/CodeSystem/consentaction", "disclose",
                             "Disclose")  # fmt: skip
        else:
            category.append(concept(v.SERVICE, service, v.SERVICES[service]))
            action = concept("http://terminology.hl7.org/CodeSystem/consentaction", "use", "Use")
        consent: Resource = {"resourceType": "Consent", "id": cid}
        if rng.random() < 0.3:
            consent["text"] = narrative([f"Written consent to {v.SERVICES[service].lower()}"])
        consent["status"] = "active" if rng.random() < 0.97 else "inactive"
        consent["scope"] = concept(v.CONSENT_SCOPE, "treatment", "Treatment")
        consent["category"] = category
        consent["patient"] = ref("Patient", ep.patient_id)
        consent["dateTime"] = stamp(signed, ep.zone)
        consent["performer"] = [ref("Patient", ep.patient_id)]
        consent["organization"] = [ref("Organization", ep.beneficiary_id)]
        title = "Consimțământ informat" if ep.country == "ro" else "知情同意书"
        consent["sourceAttachment"] = {
            "contentType": "application/pdf",
            "language": v.LANGUAGES[ep.country][0],
            "url": f"https://docs.example.org/{ep.beneficiary_id}/consent/{cid}.pdf",
            "title": title,
            "creation": stamp(signed, ep.zone),
        }
        consent["policyRule"] = concept(v.V3_ACT_CODE, "OPTIN", "opt-in")
        consent["provision"] = {
            "type": "permit",
            "period": {"start": stamp(signed, ep.zone), "end": stamp(signed + 365 * _DAY, ep.zone)},
            "actor": [
                {
                    "role": concept(v.V3_PARTICIPATION, "PRCP", "primary information recipient"),
                    "reference": ref("Organization", ep.provider_id),
                }
            ],
            "action": [action],
            "purpose": [coding(v.V3_ACT_REASON, "TREAT", "treatment")],
        }
        return consent

    def service_request(self, ep: Episode, outcome: str, consents: list[Resource]) -> Resource:
        rng = self.rng
        ep.request_id = self.ids.new("ServiceRequest")
        imaging = ep.modality is not None
        service = ep.service
        reasons = v.IMAGING_REASONS if imaging else v.CONSULT_REASONS
        reason = rng.choice(reasons)
        sr: Resource = {"resourceType": "ServiceRequest", "id": ep.request_id}
        sr["identifier"] = [
            {
                "type": concept(v.V2_0203, "PLAC", "Placer Identifier"),
                "system": f"{v.LOCAL}/sid/order/{ep.beneficiary_id}",
                "value": f"ORD-{ep.request_id[3:]}",
            }
        ]
        sr["status"] = _REQUEST_STATUS.get(outcome, "active")
        sr["intent"] = "order"
        category = [concept(v.SERVICE, service, v.SERVICES[service])]
        category.append(
            snomed(("363679005", "Imaging") if imaging else ("11429006", "Consultation"))
        )
        sr["category"] = category
        sr["priority"] = rng.choices(_PRIORITIES, _PRIORITY_WEIGHTS)[0]
        if ep.modality is not None and ep.body_site is not None:
            text = f"{ep.modality.code} {ep.body_site[1]}"
            sr["code"] = concept(v.SNOMED, *ep.modality.procedure, text=text)
            purpose = rng.choices(v.PURPOSES, v.PURPOSE_WEIGHTS)[0]
            sr["orderDetail"] = [concept(v.PURPOSE, purpose[0], purpose[1])]
        else:
            sr["code"] = snomed(("11429006", "Consultation"))
        sr["subject"] = ref("Patient", ep.patient_id)
        if imaging:
            sr["occurrenceDateTime"] = stamp(ep.t + 3600, ep.zone)
        else:
            start = ep.t + rng.randrange(1, 5) * _DAY
            sr["occurrencePeriod"] = {
                "start": stamp(start, ep.zone),
                "end": stamp(start + 3600, ep.zone),
            }
        sr["authoredOn"] = stamp(ep.t, ep.zone)
        sr["requester"] = ref("PractitionerRole", ep.requester.role_id, ep.requester.display)
        sr["performerType"] = snomed(ep.reader.specialty)
        sr["performer"] = [ref("Organization", ep.provider_id)]
        sr["reasonCode"] = [snomed(reason)]
        if ep.body_site is not None:
            sr["bodySite"] = [snomed(ep.body_site)]
        sr["supportingInfo"] = [ref("Consent", c["id"]) for c in consents]
        question = f"Clinical question: {reason[1].lower()}, please assess."
        sr["note"] = [{"text": question}]
        return sr

    def report(
        self, ep: Episode, outcome: str, t: int, results: list[Resource], finding: tuple[str, ...]
    ) -> Resource:
        rng = self.rng
        did = self.ids.new("DiagnosticReport")
        if outcome != "completed":
            status = "preliminary"
        else:
            roll = rng.random()
            status = "final" if roll < 0.9 else ("amended" if roll < 0.96 else "corrected")
        imaging = ep.modality is not None
        if imaging:
            conclusion = finding[2]
        else:
            conclusion = f"Opinion of the invited institution: {rng.choice(_PLANS)}."
        dr: Resource = {"resourceType": "DiagnosticReport", "id": did}
        if rng.random() < 0.5:
            dr["text"] = narrative([conclusion, f"Signed by {ep.reader.display}"])
        dr["identifier"] = [{"system": f"{v.LOCAL}/sid/report/{ep.provider_id}", "value": did}]
        dr["basedOn"] = [ref("ServiceRequest", ep.request_id)]
        dr["status"] = status
        if imaging:
            dr["category"] = [concept(v.V2_0074, "RAD", "Radiology")]
            dr["code"] = concept(v.LOINC, "18748-4", "Diagnostic imaging study")
        else:
            dr["category"] = [concept(v.V2_0074, "OTH", "Other")]
            dr["code"] = concept(v.LOINC, "11488-4", "Consult note")
        dr["subject"] = ref("Patient", ep.patient_id)
        dr["effectiveDateTime"] = stamp(ep.t + 3600, ep.zone)
        dr["issued"] = stamp(t, ep.zone)
        dr["performer"] = [ref("Organization", ep.provider_id)]
        dr["resultsInterpreter"] = [ref("PractitionerRole", ep.reader.role_id, ep.reader.display)]
        if results:
            dr["result"] = [ref("Observation", r["id"]) for r in results]
        if imaging:
            dr["imagingStudy"] = [ref("ImagingStudy", ep.study_id)]
        dr["conclusion"] = conclusion
        if imaging:
            dr["conclusionCode"] = [concept(v.SNOMED, finding[0], finding[1])]
        if rng.random() < 0.25:
            dr["presentedForm"] = [
                {
                    "contentType": "text/plain; charset=utf-8",
                    "language": v.LANGUAGES[ep.country][0],
                    "data": base64.b64encode(conclusion.encode()).decode("ascii"),
                    "title": "Report",
                    "creation": stamp(t, ep.zone),
                }
            ]
        return dr

    def task(
        self,
        ep: Episode,
        outcome: str,
        provider: Institution,
        report: Resource | None,
        modified: int,
    ) -> Resource:
        rng = self.rng
        tid = self.ids.new("Task")
        task: Resource = {"resourceType": "Task", "id": tid}
        task["identifier"] = [{"system": f"{v.LOCAL}/sid/task", "value": tid}]
        task["basedOn"] = [ref("ServiceRequest", ep.request_id)]
        task["status"] = outcome
        if outcome in ("rejected", "cancelled", "failed"):
            task["statusReason"] = {"text": rng.choice(_REFUSALS)}
        code, display = _BUSINESS[outcome]
        task["businessStatus"] = concept(v.BUSINESS_STATUS, code, display)
        task["intent"] = "order"
        task["code"] = concept(v.TASK_CODE, "fulfill", "Fulfill the focal request")
        service = ep.service
        task["description"] = v.SERVICES[service]
        task["focus"] = ref("ServiceRequest", ep.request_id)
        task["for"] = ref("Patient", ep.patient_id)
        period = {"start": stamp(ep.t, ep.zone)}
        if outcome in ("completed", "rejected", "cancelled", "failed"):
            period["end"] = stamp(modified, ep.zone)
        task["executionPeriod"] = period
        task["authoredOn"] = stamp(ep.t, ep.zone)
        task["lastModified"] = stamp(modified, ep.zone)
        task["requester"] = ref("PractitionerRole", ep.requester.role_id, ep.requester.display)
        if outcome == "requested" and rng.random() < 0.5:
            task["owner"] = ref("Organization", self.directory.platforms[ep.country].org_id)
        elif outcome in ("requested", "received", "rejected"):
            task["owner"] = ref("Organization", provider.org_id, provider.name)
        else:
            task["owner"] = ref("PractitionerRole", ep.reader.role_id, ep.reader.display)
        if ep.study_id:
            task["input"] = [
                {
                    "type": {"text": "Imaging study"},
                    "valueReference": ref("ImagingStudy", ep.study_id),
                }
            ]
        if report is not None and outcome == "completed":
            task["output"] = [
                {
                    "type": {"text": "Report"},
                    "valueReference": ref("DiagnosticReport", report["id"]),
                }
            ]
        return task

    def subtask(self, ep: Episode, parent: Resource, specialist: Staff) -> Resource:
        """A multidisciplinary part of a consultation (CN-2.2c), owned by one specialist."""
        return {
            "resourceType": "Task",
            "id": self.ids.new("Task"),
            "basedOn": [ref("ServiceRequest", ep.request_id)],
            "partOf": [ref("Task", parent["id"])],
            "status": "completed",
            "intent": "order",
            "code": concept(v.TASK_CODE, "fulfill", "Fulfill the focal request"),
            "description": f"Multidisciplinary opinion: {specialist.specialty[1]}",
            "focus": ref("ServiceRequest", ep.request_id),
            "for": ref("Patient", ep.patient_id),
            "authoredOn": parent["authoredOn"],
            "lastModified": parent["lastModified"],
            "requester": ref("Organization", ep.provider_id),
            "performerType": [snomed(specialist.specialty)],
            "owner": ref("PractitionerRole", specialist.role_id, specialist.display),
        }
