"""Modality Worklist SCP (ModalityWorklistInformationFind, PS3.4 K): the thin DIMSE side.

The C-FIND handler in find.py dispatches worklist requests here (pynetdicom has one EVT_C_FIND
handler per AE): the request identifier goes through the loop bridge to the FHIR mapping in
``fhir_server.imaging.worklist`` and each matching item comes back restricted to the requested
keys, ready to be yielded as a pending (0xFF00) response.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from fhir_server.core.context import RequestContext
from fhir_server.dicom.scu import Bridge
from fhir_server.imaging.worklist import answer, scheduled_items
from fhir_server.interactions.service import FhirService

TIMEOUT = 60.0


def worklist_answers(
    service: FhirService, bridge: Bridge, ctx: RequestContext, identifier: Dataset
) -> list[Dataset]:
    """The C-FIND answers to a worklist request (each restricted to the requested keys)."""
    items = bridge.call(scheduled_items(service, ctx, identifier), timeout=TIMEOUT)
    return [answer(item, identifier) for item in items]
