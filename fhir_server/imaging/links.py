"""The FHIR resources an ImagingStudy points at: its subject, the order it fulfils, its Endpoint.

All reads and writes go through :class:`FhirService` (the one write pipeline). The subject is the
Patient whose identifier is the Patient ID (0010,0020) in the namespace of its issuer: Issuer of
Patient ID Qualifiers (0010,0024) Universal Entity ID of type ISO → ``urn:oid:``, an Issuer of
Patient ID (0010,0021) that is an OID or a URI as is, another issuer text → the local namespace
URN shared with the HL7 v2 door's assigning authorities (so PID-3 ``123^^^CITYHOSP`` and a DICOM
Patient ID 123 issued by CITYHOSP are the same patient); with no issuer, the Patient ID is local
to the sender (its AE title or Organization): two institutions' ``123`` are never merged. A
search that finds several Patients leaves a logical reference (identifier) rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, PreconditionFailed
from fhir_server.imaging.attributes import first
from fhir_server.interactions.service import FhirService

Json = dict[str, Any]
#: Identifiers whose assigning authority has no known URI (same namespace as the HL7 v2 door).
LOCAL_SYSTEM = "urn:fhir-server:hl7v2"
OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
ENDPOINT_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
GENDERS = {"M": "male", "F": "female", "O": "other"}


def local_system(namespace: str) -> str:
    return f"{LOCAL_SYSTEM}:{quote(namespace, safe='.-_')}"


def patient_system(
    attributes: Mapping[str, Any], ae_title: str | None, organization: str | None
) -> str:
    """The Identifier.system of the instance's Patient ID (see the module docstring)."""
    issuer = first(attributes, "IssuerOfPatientID")
    if issuer and OID.fullmatch(issuer):
        return f"urn:oid:{issuer}"
    if issuer and ":" in issuer and " " not in issuer:
        return issuer
    if issuer:
        return local_system(issuer)
    if organization:
        return local_system(f"dicom.{organization.replace('/', '.')}")
    return local_system(f"dicom.{ae_title or 'stow-rs'}")


def human_name(pn: str) -> Json:
    """A PN's alphabetic group (family^given^middle^prefix^suffix) → HumanName."""
    parts = [p.strip() for p in pn.split("^")] + [""] * 5
    name: Json = {}
    if parts[0]:
        name["family"] = parts[0]
    given = [p for p in (parts[1], parts[2]) if p]
    if given:
        name["given"] = given
    if parts[3]:
        name["prefix"] = [parts[3]]
    if parts[4]:
        name["suffix"] = [parts[4]]
    return name or {"text": pn}


def _birth_date(da: str | None) -> str | None:
    if da and len(da) == 8 and da.isdigit():
        return f"{da[:4]}-{da[4:6]}-{da[6:]}"
    return None


def _entries(bundle: Mapping[str, Any]) -> list[Json]:
    """The match resources of a search Bundle (entries hold stored bytes as Fragments)."""
    decoded = orjson.loads(orjson.dumps(bundle))
    return [
        e["resource"]
        for e in decoded.get("entry", ())
        if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
    ]


class Links:
    """Resolves (creating when absent) the resources an ImagingStudy references."""

    def __init__(self, service: FhirService, base_url: str) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self._endpoint: Json | None = None

    async def search(self, ctx: RequestContext, type: str, **params: str) -> list[Json]:
        bundle = await self.service.search_type(ctx, type, tuple(params.items()))
        return _entries(bundle)

    async def subject(
        self,
        ctx: RequestContext,
        attributes: Mapping[str, Any],
        ae_title: str | None,
        organization: str | None,
    ) -> Json:
        """A reference to the instance's Patient, created on first sight."""
        patient_id = first(attributes, "PatientID")
        name = first(attributes, "PatientName")
        display = name.replace("^", " ").strip() if name else None
        if not patient_id:
            return {"display": display or "Unidentified patient (no Patient ID in DICOM)"}
        identifier = {"system": patient_system(attributes, ae_title, organization),
                      "value": patient_id}  # fmt: skip
        query = f"{identifier['system']}|{patient_id}"
        body: Json = {"resourceType": "Patient", "identifier": [identifier]}
        if name:
            body["name"] = [human_name(name)]
        sex = first(attributes, "PatientSex")
        if sex in GENDERS:
            body["gender"] = GENDERS[sex]
        elif sex:
            body["gender"] = "unknown"
        birth = _birth_date(first(attributes, "PatientBirthDate"))
        if birth:
            body["birthDate"] = birth
        try:
            # the one Patient found, or the one created (If-None-Exist looks for it first)
            written = await self.service.create(
                ctx, "Patient", body, if_none_exist=f"identifier={quote(query, safe='|:/.')}"
            )
        except PreconditionFailed:  # several Patients have the identifier: do not guess
            reference: Json = {"identifier": identifier, "type": "Patient"}
            return {**reference, "display": display} if display else reference
        return {"reference": f"Patient/{written.version.id}"}

    async def based_on(
        self, ctx: RequestContext, attributes: Mapping[str, Any], subject: Json
    ) -> list[Json]:
        """The ServiceRequest whose accession number (identifier typed ACSN) is the study's
        Accession Number (0008,0050); with several, the one of the same subject; none when
        still ambiguous (a wrong link would show one patient's images on another's order)."""
        accession = first(attributes, "AccessionNumber")
        if not accession:
            return []
        found = [
            r for r in await self.search(ctx, "ServiceRequest", identifier=accession)
            if any(
                i.get("value") == accession
                and any(c.get("code") == "ACSN" for c in i.get("type", {}).get("coding", ()))
                for i in r.get("identifier", ())
            )
        ]  # fmt: skip
        if len(found) > 1 and "reference" in subject:
            found = [r for r in found if r.get("subject", {}).get("reference") ==
                     subject["reference"]]  # fmt: skip
        if len(found) != 1:
            return []
        return [{"reference": f"ServiceRequest/{found[0]['id']}"}]

    async def endpoint(self, ctx: RequestContext) -> Json | None:
        """The WADO-RS Endpoint of this server (created once)."""
        if not self.base_url:
            return None
        if self._endpoint is not None:
            return self._endpoint
        address = f"{self.base_url}/dicomweb"
        body: Json = {
            "resourceType": "Endpoint",
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": address}],
            "status": "active",
            "connectionType": {"system": ENDPOINT_TYPE, "code": "dicom-wado-rs"},
            "name": "DICOMweb WADO-RS of this server",
            "payloadType": [{"text": "DICOM"}],
            "payloadMimeType": ["application/dicom", "application/dicom+json"],
            "address": address,
        }
        query = f"identifier={quote('urn:ietf:rfc:3986|' + address, safe='')}"
        try:
            written = await self.service.create(ctx, "Endpoint", body, if_none_exist=query)
        except FhirError:
            return None  # several Endpoints claim the address: leave it to an administrator
        self._endpoint = {"reference": f"Endpoint/{written.version.id}"}
        return self._endpoint
