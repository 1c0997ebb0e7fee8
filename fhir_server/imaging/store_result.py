"""What the imaging ingest (service.py) tells a door about one instance, and who sent it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_server.imaging.attributes import first
from fhir_server.imaging.instances import Prepared


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent an instance: the calling AE (None over DICOMweb), the Organization it stands
    for (``Organization/<id>``, from the AE allow-list or the token), and the channel."""

    ae_title: str | None
    organization: str | None
    channel: str  # "c-store" | "stow-rs" | "c-move" | "c-get"


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What became of one instance; ``status`` is a DIMSE status (PS3.4 B.2.3) usable as a
    STOW-RS Failure Reason, ``comment`` an Error Comment (64 ASCII characters at most)."""

    status: int
    comment: str | None
    sop_class: str | None
    sop_instance: str | None
    study_uid: str | None
    series_uid: str | None
    duplicate: bool = False
    #: The gate's review flag (stored, flagged on the ImagingStudy), None when not flagged.
    review: str | None = None
    #: Patient ID (0010,0020) as sent, for the door's audit (None when refused or absent).
    patient_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 0x0000 or self.status & 0xF000 == 0xB000


def stored_result(prepared: Prepared, existing: dict[str, Any] | None) -> StoreResult:
    """Success, for a new instance or for a duplicate (``existing``: the first one's record)."""
    review = prepared.verdict.comment() if prepared.verdict.review else None
    patient_id = first(prepared.attributes, "PatientID")
    if existing is not None:
        return StoreResult(
            0x0000, None, prepared.sop_class, prepared.sop_instance,
            str(existing.get("study")), str(existing.get("series")), duplicate=True,
            review=review, patient_id=patient_id,
        )  # fmt: skip
    return StoreResult(
        0x0000, None, prepared.sop_class, prepared.sop_instance, prepared.study_uid,
        prepared.series_uid, review=review, patient_id=patient_id,
    )  # fmt: skip
