"""Storage Commitment SCP (push model) of the DIMSE node with a pynetdicom requester (a
third-party DICOM implementation): instances held (instance record + blob) are committed,
unknown UIDs and a wrong SOP class fail with their reasons, the report comes on the same
association or on a new one to the requester's AE, and a Communication records the receipt
confirmation (RO-19)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import pytest_asyncio
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import generate_uid
from pynetdicom import AE, build_role, evt

from fhir_server.bootstrap import Application
from fhir_server.core.context import RequestContext
from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed"),
]

COMMITMENT = "1.2.840.10008.1.20.1"
COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"
MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


class Node:
    def __init__(self, app: Application, port: int, peer_port: int, sent: list[Dataset]) -> None:
        self.app, self.port, self.peer_port, self.sent = app, port, peer_port, sent


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    """Our node after storescu sent it two CT instances of one study (Part-10 blobs and
    instance records written by the ingest, the study's ImagingStudy flushed)."""
    port, peer_port = free_port(), free_port()
    tmp = tmp_path_factory.mktemp("commitment")
    peer = f"MODALITY=Organization/beneficiary@127.0.0.1:{peer_port}"
    async with running_application(tmp / "data", dicom_port=port, dicom_peers=(peer,)) as app:
        ctx = RequestContext()
        organization = {"resourceType": "Organization", "id": "beneficiary", "name": "Spital"}
        await app.service.update(ctx, "Organization", "beneficiary", organization)
        sent: list[Dataset] = []
        paths: list[str] = []
        for number, part10 in enumerate(ct_study("RO-COMMIT-1", "20261130", 2)):
            path = tmp / f"c{number}.dcm"
            path.write_bytes(part10)
            paths.append(str(path))
            sent.append(dcmread(DicomBytesIO(part10), stop_before_pixels=True))
        argv = ["storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1", str(port)]
        done = await asyncio.to_thread(
            subprocess.run, [*argv, *paths], capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert app.imaging is not None
        await app.imaging.flush()
        yield Node(app, port, peer_port, sent)


def request_commitment(
    node: Node, references: list[tuple[str, str]], *, release_first: bool
) -> tuple[int, Any]:
    """A pynetdicom requester: N-ACTION, then wait for the N-EVENT-REPORT (on this association,
    or, with ``release_first``, on its own listening AE); (event type, event information)."""
    reports: list[tuple[int, Any]] = []
    arrived = threading.Event()

    def on_report(event: Any) -> tuple[int, None]:
        reports.append((event.event_type, event.event_information))
        arrived.set()
        return 0x0000, None

    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(COMMITMENT)
    ae.add_supported_context(COMMITMENT, scu_role=True, scp_role=True)
    handlers: list[Any] = [(evt.EVT_N_EVENT_REPORT, on_report)]
    listener = ae.start_server(("127.0.0.1", node.peer_port), block=False, evt_handlers=handlers)
    assert listener is not None
    try:
        role = build_role(COMMITMENT, scu_role=True, scp_role=True)
        assoc = ae.associate(
            "127.0.0.1", node.port, ae_title="FHIRSERVER", ext_neg=[role], evt_handlers=handlers
        )
        assert assoc.is_established
        info = Dataset()
        info.TransactionUID = generate_uid()
        info.ReferencedSOPSequence = [_ref(c, i) for c, i in references]
        status, _ = assoc.send_n_action(info, 1, COMMITMENT, COMMITMENT_INSTANCE)
        assert status.Status == 0x0000
        if release_first:
            assoc.release()
        assert arrived.wait(30), "no N-EVENT-REPORT"
        if assoc.is_established:
            assoc.release()
    finally:
        listener.shutdown()
    return reports[0]


def _ref(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item


def _uids(sequence: Any) -> list[str]:
    return sorted(str(item.ReferencedSOPInstanceUID) for item in sequence)


@pytest.mark.parametrize("release_first", [False, True], ids=["same-association", "new"])
async def test_ro19_all_committed(node: Node, release_first: bool) -> None:
    refs = [(str(ds.SOPClassUID), str(ds.SOPInstanceUID)) for ds in node.sent]
    event_type, report = await asyncio.to_thread(
        request_commitment, node, refs, release_first=release_first
    )
    assert event_type == 1
    assert _uids(report.ReferencedSOPSequence) == sorted(i for _, i in refs)
    assert "FailedSOPSequence" not in report


async def test_ro19_unknown_instance_and_class_conflict_fail(node: Node) -> None:
    ct = node.sent[0]
    unknown = generate_uid()
    refs = [
        (str(ct.SOPClassUID), str(ct.SOPInstanceUID)),
        (str(ct.SOPClassUID), unknown),
        (MR_STORAGE, str(node.sent[1].SOPInstanceUID)),
    ]
    event_type, report = await asyncio.to_thread(request_commitment, node, refs, release_first=True)
    assert event_type == 2
    assert _uids(report.ReferencedSOPSequence) == [str(ct.SOPInstanceUID)]
    reasons = {str(i.ReferencedSOPInstanceUID): i.FailureReason for i in report.FailedSOPSequence}
    assert reasons == {unknown: 0x0112, str(node.sent[1].SOPInstanceUID): 0x0119}
    transaction = str(report.TransactionUID)
    bundle = await node.app.service.search_type(
        RequestContext(), "Communication", [("identifier", f"urn:dicom:uid|urn:oid:{transaction}")]
    )
    found = orjson.loads(orjson.dumps(bundle))["entry"]
    assert len(found) == 1
    communication = found[0]["resource"]
    assert communication["status"] == "completed"
    assert communication["recipient"] == [{"reference": "Organization/beneficiary"}]
    assert communication["about"][0]["reference"].startswith("ImagingStudy/")
    assert "1 instance(s) committed, 2 failed" in communication["payload"][0]["contentString"]


async def test_n_action_without_references_fails_with_a_comment(node: Node) -> None:
    def call() -> Any:
        ae = AE(ae_title="MODALITY")
        ae.add_requested_context(COMMITMENT)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="FHIRSERVER")
        info = Dataset()
        info.TransactionUID = generate_uid()
        status, _ = assoc.send_n_action(info, 1, COMMITMENT, COMMITMENT_INSTANCE)
        assoc.release()
        return status

    status = await asyncio.to_thread(call)
    assert status.Status == 0x0120
    assert "Referenced SOP Sequence" in status.ErrorComment
