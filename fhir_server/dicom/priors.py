"""The priors SCU: C-FIND the remote PACS for a patient's studies, then C-MOVE or C-GET each
(the :class:`fhir_server.imaging.priors.Retriever` of the DICOM door; RO-16, RO-17).

- C-FIND, Study Root, STUDY level: PatientID, StudyDate ``-YYYYMMDD`` (up to the current study)
  and the empty return keys StudyInstanceUID, StudyDate, AccessionNumber, ModalitiesInStudy,
  StudyDescription, NumberOfStudyRelatedInstances, IssuerOfPatientID (the note's §3.3).
- C-MOVE (``--dicom-retrieve move``): the remote opens its own association to our node's
  C-STORE SCP (it must know our AE title and address: Orthanc's DicomModalities); the instances
  come in through the ordinary ingest path, gate included.
- C-GET (``--dicom-retrieve get``): the instances come back on the same association (storage
  contexts proposed with the SCP role); each is handed to ``store`` (the ImagingService through
  the loop bridge, channel "c-move") and answered with its status. No inbound port is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import StoragePresentationContexts, build_role, evt

from fhir_server.dicom.scu import (
    STUDY_ROOT_FIND,
    STUDY_ROOT_GET,
    STUDY_ROOT_MOVE,
    RemoteAe,
    associate,
    client_ae,
)
from fhir_server.imaging.priors import Prior, Retrieved

PENDING = (0xFF00, 0xFF01)
RETURN_KEYS = (
    "StudyInstanceUID",
    "StudyDate",
    "AccessionNumber",
    "ModalitiesInStudy",
    "StudyDescription",
    "NumberOfStudyRelatedInstances",
    "IssuerOfPatientID",
)
#: Storage SOP classes proposed for C-GET (pynetdicom's 120 + the Get model fit the 128 limit).
GET_CONTEXTS = 120
FAILED_TO_STORE = 0xA700


class PriorsScu:
    """``store``: Part-10 bytes of a C-GET sub-operation → its C-STORE status."""

    def __init__(
        self,
        ae_title: str,
        remote: RemoteAe,
        retrieve: str = "move",
        store: Callable[[bytes], int] | None = None,
    ) -> None:
        if retrieve == "get" and store is None:
            raise ValueError("C-GET needs a store for the instances it receives")
        self.ae_title = ae_title
        self.remote = remote
        self.method = retrieve
        self.store = store

    def find(self, patient_id: str, before: str | None) -> list[Prior]:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.PatientID = patient_id
        for keyword in RETURN_KEYS:
            setattr(query, keyword, "")
        if before:
            query.StudyDate = f"-{before}"
        ae = client_ae(self.ae_title)
        ae.add_requested_context(STUDY_ROOT_FIND)
        assoc = associate(ae, self.remote)
        found: list[Prior] = []
        try:
            for status, identifier in assoc.send_c_find(query, STUDY_ROOT_FIND):
                code = getattr(status, "Status", None)
                if code in PENDING and identifier is not None:
                    found.append(_prior(identifier))
                elif code is None:
                    raise ConnectionError(f"C-FIND to {self.remote}: no response")
                elif code not in PENDING and code != 0x0000:
                    raise ConnectionError(f"C-FIND to {self.remote} failed: 0x{code:04X}")
        finally:
            assoc.release()
        return found

    def retrieve(self, study_uid: str) -> Retrieved:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        if self.method == "get":
            return self._get(query)
        ae = client_ae(self.ae_title)
        ae.add_requested_context(STUDY_ROOT_MOVE)
        assoc = associate(ae, self.remote)
        try:
            responses = list(assoc.send_c_move(query, self.ae_title, STUDY_ROOT_MOVE))
        finally:
            assoc.release()
        return _outcome(responses)

    def _get(self, query: Dataset) -> Retrieved:
        ae = client_ae(self.ae_title)
        ae.add_requested_context(STUDY_ROOT_GET)
        classes = [str(c.abstract_syntax) for c in StoragePresentationContexts[:GET_CONTEXTS]]
        for sop_class in classes:
            ae.add_requested_context(sop_class)
        roles = [build_role(sop_class, scp_role=True) for sop_class in classes]
        handlers = [(evt.EVT_C_STORE, self._on_store)]
        assoc = associate(ae, self.remote, ext_neg=roles, handlers=handlers)
        try:
            responses = list(assoc.send_c_get(query, STUDY_ROOT_GET))
        finally:
            assoc.release()
        return _outcome(responses)

    def _on_store(self, event: Any) -> int:
        assert self.store is not None
        try:
            return self.store(bytes(event.encoded_dataset()))
        except Exception:
            return FAILED_TO_STORE


def _prior(identifier: Dataset) -> Prior:
    count = identifier.get("NumberOfStudyRelatedInstances", None)
    modalities = identifier.get("ModalitiesInStudy", "")
    return Prior(
        study_uid=str(identifier.get("StudyInstanceUID", "")),
        study_date=str(identifier.get("StudyDate", "") or ""),
        accession=str(identifier.get("AccessionNumber", "") or ""),
        modalities="\\".join(modalities) if isinstance(modalities, list) else str(modalities),
        description=str(identifier.get("StudyDescription", "") or ""),
        instances=int(count) if count not in (None, "") else None,
        issuer=str(identifier.get("IssuerOfPatientID", "") or ""),
    )


def _outcome(responses: list[tuple[Dataset, Dataset | None]]) -> Retrieved:
    """The final response's status and sub-operation counts."""
    if not responses or getattr(responses[-1][0], "Status", None) is None:
        return Retrieved(0xC000, comment="no response from the remote")
    status = responses[-1][0]
    return Retrieved(
        status=int(status.Status),
        completed=int(status.get("NumberOfCompletedSuboperations", 0) or 0),
        failed=int(status.get("NumberOfFailedSuboperations", 0) or 0),
        warning=int(status.get("NumberOfWarningSuboperations", 0) or 0),
        comment=str(status.get("ErrorComment", "") or ""),
    )
