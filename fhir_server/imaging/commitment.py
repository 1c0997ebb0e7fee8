"""Storage Commitment (PS3.4 J, push model): which referenced instances we hold, and the
receipt confirmation it amounts to on the FHIR side (RO-19).

An instance is committed when its ``dicom-instance`` record exists, names the same SOP Class as
the request, and its blob (the Part-10 bytes as received, fsync'd before the C-STORE success)
is in the blob store. Otherwise it fails with PS3.4 J.3.2.1.1.1's reasons: 0x0112 (no such
object instance) or 0x0119 (class-instance conflict).

Why a **Communication** records the confirmation: RO-19 asks that delivery is confirmed
electronically and tracked until acknowledged. Storage commitment is the DICOM-native "we hold
these images, you may delete your copy" message from the receiving provider to the sending
beneficiary, i.e. a message sent to a party about studies, which is what R4 Communication is
(``recipient`` the sending Organization, ``about`` the ImagingStudy resources, ``sent``, the
counts in ``payload``, the Transaction UID as ``identifier``). It is written through the write
pipeline, so it is searchable (``Communication?about=ImagingStudy/x``), audited, and its
subscriptions fire; an AuditEvent would only be readable by administrators, and a Task would
model work still to do rather than a delivered acknowledgement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError
from fhir_server.imaging.kinds import INSTANCE, blob_key
from fhir_server.interactions.service import FhirService
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore

NO_SUCH_OBJECT_INSTANCE = 0x0112
CLASS_INSTANCE_CONFLICT = 0x0119
PROCESSING_FAILURE = 0x0110
UID_SYSTEM = "urn:dicom:uid"


@dataclass(frozen=True, slots=True)
class Reference:
    """One referenced SOP instance: (SOP Class UID, SOP Instance UID)."""

    sop_class: str
    sop_instance: str


@dataclass(frozen=True, slots=True)
class Failure:
    reference: Reference
    reason: int


@dataclass(frozen=True, slots=True)
class CommitmentResult:
    transaction_uid: str
    committed: tuple[Reference, ...]
    failed: tuple[Failure, ...]
    studies: tuple[str, ...] = field(default=())

    @property
    def event_type(self) -> int:
        """N-EVENT-REPORT Event Type ID: 1 all committed, 2 some failed."""
        return 2 if self.failed else 1


async def check(
    records: RecordStore,
    blobs: BlobStore,
    transaction_uid: str,
    references: Sequence[Reference],
) -> CommitmentResult:
    """Check each reference against the instance records and the blobs."""
    committed: list[Reference] = []
    failed: list[Failure] = []
    studies: dict[str, None] = {}
    for reference in references:
        record = await records.get(INSTANCE, reference.sop_instance)
        if record is None or await blobs.info(blob_key(record)) is None:
            failed.append(Failure(reference, NO_SUCH_OBJECT_INSTANCE))
        elif record.get("sop_class") != reference.sop_class:
            failed.append(Failure(reference, CLASS_INSTANCE_CONFLICT))
        else:
            committed.append(reference)
            studies[str(record["study"])] = None
    return CommitmentResult(transaction_uid, tuple(committed), tuple(failed), tuple(studies))


async def confirm(
    service: FhirService,
    ctx: RequestContext,
    result: CommitmentResult,
    requester_ae: str | None,
    organization: str | None,
    sent: str,
) -> str:
    """Record the receipt confirmation as a Communication (see the module docstring); its
    reference."""
    about = [{"reference": ref} for ref in await _studies(service, ctx, result.studies)]
    text = (
        f"DICOM storage commitment {result.transaction_uid}: {len(result.committed)} "
        f"instance(s) committed, {len(result.failed)} failed"
    )
    if result.failed:
        text += " (" + ", ".join(_failure_text(f) for f in result.failed[:20]) + ")"
    body: dict[str, Any] = {
        "resourceType": "Communication",
        "identifier": [{"system": UID_SYSTEM, "value": f"urn:oid:{result.transaction_uid}"}],
        "status": "completed",
        "sent": sent,
        "payload": [{"contentString": text}],
    }
    if about:
        body["about"] = about
    if organization:
        body["recipient"] = [{"reference": organization}]
    if requester_ae:
        body["note"] = [{"text": f"Requested by DICOM AE {requester_ae}"}]
    try:
        written = await service.create(ctx, "Communication", body)
    except FhirError:
        if "recipient" not in body:
            raise
        # the sending Organization is not on this server: keep the receipt, name it in a note
        body["note"] = [*body.get("note", []), {"text": f"Recipient {organization}"}]
        del body["recipient"]
        written = await service.create(ctx, "Communication", body)
    return f"Communication/{written.version.id}"


def references_of(pairs: Iterable[tuple[str, str]]) -> list[Reference]:
    return [Reference(sop_class, sop_instance) for sop_class, sop_instance in pairs]


async def _studies(service: FhirService, ctx: RequestContext, uids: Sequence[str]) -> list[str]:
    found: list[str] = []
    for uid in uids:
        params = [("identifier", f"{UID_SYSTEM}|urn:oid:{uid}"), ("_elements", "id")]
        bundle = await service.search_type(ctx, "ImagingStudy", params)
        entries = orjson.loads(orjson.dumps(bundle)).get("entry", [])
        found += [f"ImagingStudy/{e['resource']['id']}" for e in entries]
    return found


def _failure_text(failure: Failure) -> str:
    reason = {NO_SUCH_OBJECT_INSTANCE: "no such object instance"}.get(
        failure.reason, "class-instance conflict"
    )
    return f"{failure.reference.sop_instance}: {reason}"
