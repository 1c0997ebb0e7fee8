"""C-FIND SCP: Patient Root and Study Root query (PATIENT, STUDY, SERIES, IMAGE levels) and the
Modality Worklist (PS3.4 C and K).

One EVT_C_FIND handler serves every C-FIND SOP class (pynetdicom binds one handler per
intervention event) and dispatches on the Affected SOP Class. It only translates: the request
identifier becomes DICOM keyword → match value keys for the query service
(``fhir_server.imaging.query.search``, shared with QIDO-RS) or the worklist mapping
(``fhir_server.imaging.worklist``); each result is answered with exactly the requested keys
(and QueryRetrieveLevel) as a pending 0xFF00 response. A cancel request ends the answers with
0xFE00. An identifier that cannot be decoded gets 0xC000, one that does not fit the SOP class
0xA900, each with an Error Comment (0000,0902) saying what was wrong.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from typing import Any, Literal, cast

from pydicom.dataset import Dataset
from pynetdicom import evt

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, InvalidRequest
from fhir_server.dicom.audit import DimseAudit
from fhir_server.dicom.scu import (
    MODALITY_WORKLIST_FIND,
    PATIENT_ROOT_FIND,
    STUDY_ROOT_FIND,
    Bridge,
)
from fhir_server.dicom.worklist import worklist_answers
from fhir_server.imaging.instances import short_comment
from fhir_server.imaging.worklist import answer
from fhir_server.interactions.service import FhirService

Level = Literal["STUDY", "SERIES", "IMAGE"]
Query = Callable[..., Awaitable[list[dict[str, Any]]]]
Status = tuple[int | Dataset, Dataset | None]

PENDING = 0xFF00
CANCEL = 0xFE00
SUCCESS = 0x0000
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000
LEVELS = {
    PATIENT_ROOT_FIND: ("PATIENT", "STUDY", "SERIES", "IMAGE"),
    STUDY_ROOT_FIND: ("STUDY", "SERIES", "IMAGE"),
}
PATIENT_KEYS = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex")
TIMEOUT = 60.0
LEVEL_NAMES: tuple[Level, ...] = ("STUDY", "SERIES", "IMAGE")


def failure(status: int, comment: str) -> Status:
    """A failure response with an Error Comment (LO: 64 ASCII characters, no backslash)."""
    ds = Dataset()
    ds.Status = status
    ds.ErrorComment = short_comment(comment)
    return ds, None


class FindService:
    """The C-FIND SCP as a DimseService (contexts + handlers for DicomNode).

    ``query``: ``fhir_server.imaging.query.search``; ``context``: the RequestContext for a
    calling AE title (the organization from the AE allow-list).
    """

    def __init__(
        self,
        service: FhirService,
        bridge: Bridge,
        query: Query | None,
        context: Callable[[str], RequestContext],
        *,
        worklist: bool = True,
        audit: DimseAudit | None = None,
    ) -> None:
        self.service = service
        self.bridge = bridge
        self.query = query
        self.context = context
        self.worklist = worklist
        self.audit = audit

    def contexts(self) -> list[tuple[str, list[str] | None, bool, bool]]:
        classes = list(LEVELS) if self.query is not None else []
        if self.worklist:
            classes.append(MODALITY_WORKLIST_FIND)
        return [(uid, None, False, True) for uid in classes]

    def handlers(self) -> list[tuple[Any, Callable[..., Any]]]:
        return [(evt.EVT_C_FIND, self.on_find)]

    def on_find(self, event: Any) -> Iterator[Status]:
        """The answers; the query is told to the audit once answered (outcome: 200, or 400 for
        an identifier that does not fit, 500 when it could not be processed)."""
        outcome = 200
        try:
            for status in self._answers(event):
                code = getattr(status[0], "Status", status[0])
                if code == IDENTIFIER_DOES_NOT_MATCH:
                    outcome = 400
                elif code == UNABLE_TO_PROCESS:
                    outcome = 500
                yield status
        finally:
            if self.audit is not None:
                sop_class = str(event.request.AffectedSOPClassUID)
                try:
                    identifier = event.identifier
                except Exception:
                    identifier = Dataset()
                self.audit.queried(event.assoc, sop_class, identifier, outcome)

    def _answers(self, event: Any) -> Iterator[Status]:
        sop_class = str(event.request.AffectedSOPClassUID)
        try:
            identifier: Dataset = event.identifier
            list(identifier)  # decode every element now, not half-way through the answers
        except Exception as exc:
            yield failure(UNABLE_TO_PROCESS, f"identifier cannot be decoded: {exc}")
            return
        ctx = self.context(str(event.assoc.requestor.ae_title).strip())
        try:
            if sop_class == MODALITY_WORKLIST_FIND:
                answers = worklist_answers(self.service, self.bridge, ctx, identifier)
            else:
                answers = self._query(ctx, sop_class, identifier)
        except (FhirError, ValueError) as exc:
            yield failure(IDENTIFIER_DOES_NOT_MATCH, str(exc))
            return
        except (TimeoutError, OSError) as exc:
            yield failure(UNABLE_TO_PROCESS, f"query failed: {exc}")
            return
        for response in answers:
            if event.is_cancelled:
                yield CANCEL, None
                return
            yield PENDING, response
        yield SUCCESS, None

    def _call(self, coroutine: Any) -> Any:
        return self.bridge.call(coroutine, timeout=TIMEOUT)

    def _query(self, ctx: RequestContext, sop_class: str, identifier: Dataset) -> list[Dataset]:
        level = str(identifier.get("QueryRetrieveLevel", "") or "").strip().upper()
        if level not in LEVELS.get(sop_class, ()) or level not in ("PATIENT", *LEVEL_NAMES):
            allowed = "/".join(LEVELS.get(sop_class, ()))
            raise InvalidRequest(f"QueryRetrieveLevel (0008,0052) must be {allowed}")
        keys = match_keys(identifier)
        if level == "PATIENT":
            results = self._search(ctx, "STUDY", keys, None, None)
            return [_answer(item, identifier, level) for item in _patients(results)]
        study = _single_uid(keys, "StudyInstanceUID") if level != "STUDY" else None
        series = _single_uid(keys, "SeriesInstanceUID") if level == "IMAGE" else None
        results = self._search(ctx, cast(Level, level), keys, study, series)
        return [_answer(Dataset.from_json(item), identifier, level) for item in results]

    def _search(
        self,
        ctx: RequestContext,
        level: Level,
        keys: Mapping[str, str],
        study: str | None,
        series: str | None,
    ) -> list[dict[str, Any]]:
        assert self.query is not None
        found: list[dict[str, Any]] = self._call(
            self.query(ctx, level, keys, study_uid=study, series_uid=series)
        )
        return found


def match_keys(identifier: Dataset) -> dict[str, str]:
    """The identifier's non-empty, non-sequence attributes as keyword → match value."""
    keys: dict[str, str] = {}
    for element in identifier:
        keyword = element.keyword
        if keyword in ("", "QueryRetrieveLevel", "SpecificCharacterSet") or element.VR == "SQ":
            continue
        if element.value is None or str(element.value) == "":
            continue
        value = element.value
        keys[keyword] = "\\".join(map(str, value)) if element.VM > 1 else str(value)
    return keys


def _single_uid(keys: dict[str, str], keyword: str) -> str | None:
    value = keys.get(keyword, "")
    if value and "\\" not in value and "*" not in value and "?" not in value:
        return keys.pop(keyword)
    return None


def _answer(item: Dataset, identifier: Dataset, level: str) -> Dataset:
    response = answer(item, identifier)
    response.QueryRetrieveLevel = level
    return response


def _patients(studies: Collection[dict[str, Any]]) -> list[Dataset]:
    """PATIENT level: one answer per (PatientID, issuer) among the matching studies."""
    patients: dict[tuple[str, str], Dataset] = {}
    counts: dict[tuple[str, str], int] = {}
    for study in studies:
        ds = Dataset.from_json(study)
        key = (str(ds.get("PatientID", "")), str(ds.get("IssuerOfPatientID", "")))
        if key not in patients:
            patient = Dataset()
            for keyword in PATIENT_KEYS:
                if keyword in ds:
                    setattr(patient, keyword, ds.get(keyword))
            patients[key] = patient
        counts[key] = counts.get(key, 0) + 1
    for key, patient in patients.items():
        patient.NumberOfPatientRelatedStudies = counts[key]
    return list(patients.values())
