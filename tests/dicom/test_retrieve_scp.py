"""RO-23 / RO-16: the node's C-MOVE and C-GET SCP (Study Root and Patient Root) with dcmtk
``movescu`` (itself the move destination, its storage SCP on ``+P``) and ``getscu``, after
``storescu`` sent a two-series study: the instances arrive as they were sent; SERIES and IMAGE
level; an unknown destination is 0xA801 with an Error Comment; an unknown study is a success with
no sub-operation; a bad identifier is 0xA900 naming the attribute (pynetdicom requester)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import warnings
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pydicom
import pytest
import pytest_asyncio
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless, generate_uid
from pynetdicom import AE, build_role, evt

from fhir_server.bootstrap import Application
from fhir_server.imaging.part10 import check
from tests.conftest import free_port, running_application
from tests.dicom.orthanc import ct_study

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which("movescu") is None, reason="dcmtk is not installed"),
]

STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
PATIENT = "RO-RETR-1"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


class Node:
    def __init__(
        self, app: Application, port: int, dest_port: int, sent: list[bytes], mixed: list[bytes]
    ) -> None:
        self.app, self.port, self.dest_port, self.sent = app, port, dest_port, sent
        self.mixed = mixed
        first = pydicom.dcmread(BytesIO(sent[0]))
        self.study = str(first.StudyInstanceUID)
        self.by_sop = {str(pydicom.dcmread(BytesIO(p)).SOPInstanceUID): p for p in sent}
        self.mixed_study = str(pydicom.dcmread(BytesIO(mixed[0])).StudyInstanceUID)
        self.series: dict[str, list[str]] = {}
        for sop, part10 in self.by_sop.items():
            series = str(pydicom.dcmread(BytesIO(part10)).SeriesInstanceUID)
            self.series.setdefault(series, []).append(sop)


def two_series_study() -> list[bytes]:
    """Three CT instances of one study: two in one series, one in another."""
    first = ct_study(PATIENT, "20261202", 2, patient_name="Popescu^Ion", accession="ACC-R1")
    study = str(pydicom.dcmread(BytesIO(first[0])).StudyInstanceUID)
    out = list(first)
    for part10 in ct_study(PATIENT, "20261202", 1, patient_name="Popescu^Ion"):
        ds = pydicom.dcmread(BytesIO(part10))
        ds.StudyInstanceUID = study
        ds.AccessionNumber = "ACC-R1"
        buffer = DicomBytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def mixed_syntax_study() -> list[bytes]:
    """Three CT instances of one study: Explicit VR Little Endian, Implicit VR Little Endian and
    RLE Lossless (compressed)."""
    explicit, other, third = ct_study("RO-RETR-2", "20261203", 3)
    ds = pydicom.dcmread(BytesIO(other))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = DicomBytesIO()
    ds.save_as(buffer, implicit_vr=True, little_endian=True, enforce_file_format=True)
    rle = pydicom.dcmread(BytesIO(third))
    rle.compress(RLELossless)
    compressed = DicomBytesIO()
    rle.save_as(compressed, enforce_file_format=True)
    return [explicit, buffer.getvalue(), compressed.getvalue()]


def assert_implicit_arrivals(node: Node, arrived: list[bytes], stored: bytes) -> None:
    """The implicit instance arrived as stored; the explicit one re-encoded in Implicit VR
    Little Endian, every value as sent."""
    assert stored[check(stored).dataset_offset :] in arrived
    [other] = [a for a in arrived if a != stored[check(stored).dataset_offset :]]
    # read as Implicit VR Little Endian: garbled if it were encoded otherwise
    got = read_dataset(BytesIO(other), is_implicit_VR=True, is_little_endian=True)
    sent = pydicom.dcmread(BytesIO(node.mixed[0]))
    padding = 0xFFFCFFFC  # Data Set Trailing Padding, which re-encoding may drop (PS3.10 7.2)
    assert [e.tag for e in got] == [e.tag for e in sent if e.tag != padding]
    for element in sent:
        assert element.tag == padding or got[element.tag].value == element.value, element


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    port, dest_port = free_port(), free_port()
    tmp = tmp_path_factory.mktemp("retrieve")
    peers = (f"DEST=Organization/reader@127.0.0.1:{dest_port}", "NOWHERE=Organization/reader")
    async with running_application(tmp / "data", dicom_port=port, dicom_peers=peers) as app:
        sent, mixed = two_series_study(), mixed_syntax_study()
        paths = []
        for number, part10 in enumerate(sent + mixed):
            path = tmp / f"i{number}.dcm"
            path.write_bytes(part10)
            paths.append(str(path))
        done = await dcmtk("storescu", "-aet", "MODALITY", "-aec", "FHIRSERVER", "127.0.0.1",
                           str(port), *paths[:-1])  # fmt: skip
        assert done.returncode == 0, done.stderr
        # the RLE one on an association of its own proposing RLE Lossless (-xr)
        done = await dcmtk("storescu", "-R", "-xr", "-aet", "MODALITY", "-aec", "FHIRSERVER",
                           "127.0.0.1", str(port), paths[-1])  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert app.imaging is not None
        await app.imaging.flush()
        yield Node(app, port, dest_port, sent, mixed)


async def dcmtk(*argv: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, list(argv), capture_output=True, text=True, timeout=60,
        env={"TCP_NODELAY": "1"},
    )  # fmt: skip


async def movescu(node: Node, out: Path, *keys: str, dest: str = "DEST") -> str:
    """movescu -S as its own move destination (storage SCP on the DEST peer's port)."""
    await asyncio.to_thread(out.mkdir, parents=True, exist_ok=True)
    argv = ["movescu", "-v", "-S", "-aet", "MOVER", "-aec", "FHIRSERVER", "-aem", dest,
            "+P", str(node.dest_port), "-od", str(out)]  # fmt: skip
    for key in keys:
        argv += ["-k", key]
    done = await dcmtk(*argv, "127.0.0.1", str(node.port))
    return done.stdout + done.stderr


async def blob(app: Application, key: str) -> bytes:
    async with await app.blobs.stream(key) as stream:
        return await stream.read_all()


def identifier_of(keys: dict[str, Any]) -> Dataset:
    identifier = Dataset()
    with warnings.catch_warnings():  # a malformed UID is what some tests send
        warnings.simplefilter("ignore")
        for keyword, value in keys.items():
            setattr(identifier, keyword, value)
    return identifier


def received(out: Path) -> dict[str, Dataset]:
    found: dict[str, Dataset] = {}
    for path in sorted(out.iterdir()):
        ds = pydicom.dcmread(path)
        found[str(ds.SOPInstanceUID)] = ds
    return found


def without_padding(ds: Dataset) -> Dataset:
    if (0xFFFC, 0xFFFC) in ds:  # dcmtk drops trailing padding, PS3.10 allows it
        del ds[0xFFFC, 0xFFFC]
    return ds


def assert_same(node: Node, got: dict[str, Dataset], sops: list[str]) -> None:
    assert sorted(got) == sorted(sops)
    for sop in sops:
        sent = without_padding(pydicom.dcmread(BytesIO(node.by_sop[sop])))
        arrived = without_padding(got[sop])
        assert arrived == sent
        assert arrived.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID


async def test_ro23_move_study_to_movescu(node: Node, tmp_path: Path) -> None:
    log = await movescu(
        node, tmp_path, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={node.study}"
    )
    assert_same(node, received(tmp_path), list(node.by_sop))
    assert "Success" in log, log


async def test_ro23_move_series_and_image_levels(node: Node, tmp_path: Path) -> None:
    big = max(node.series, key=lambda s: len(node.series[s]))
    await movescu(node, tmp_path / "series", "QueryRetrieveLevel=SERIES",
                  f"StudyInstanceUID={node.study}", f"SeriesInstanceUID={big}")  # fmt: skip
    assert_same(node, received(tmp_path / "series"), node.series[big])
    one = node.series[big][0]
    await movescu(node, tmp_path / "image", "QueryRetrieveLevel=IMAGE",
                  f"StudyInstanceUID={node.study}", f"SeriesInstanceUID={big}",
                  f"SOPInstanceUID={one}")  # fmt: skip
    assert_same(node, received(tmp_path / "image"), [one])


async def test_ro16_patient_root_move_by_patient_id(node: Node, tmp_path: Path) -> None:
    out = tmp_path / "patient"
    await asyncio.to_thread(out.mkdir)
    argv = ["movescu", "-P", "-aet", "MOVER", "-aec", "FHIRSERVER", "-aem", "DEST",
            "+P", str(node.dest_port), "-od", str(out), "-k", "QueryRetrieveLevel=PATIENT",
            "-k", f"PatientID={PATIENT}", "127.0.0.1", str(node.port)]  # fmt: skip
    done = await dcmtk(*argv)
    assert done.returncode == 0, done.stderr
    assert_same(node, received(out), list(node.by_sop))


async def test_ro23_unknown_move_destination_is_a801(node: Node, tmp_path: Path) -> None:
    log = await movescu(node, tmp_path, "QueryRetrieveLevel=STUDY",
                        f"StudyInstanceUID={node.study}", dest="STRANGER")  # fmt: skip
    assert "Refused: MoveDestinationUnknown" in log, log
    assert received(tmp_path) == {}
    for dest in ("STRANGER", "NOWHERE"):  # not a peer; a peer without an address
        status, _ = await c_move(node, dest, level="STUDY", StudyInstanceUID=node.study)
        assert status.Status == 0xA801
        assert dest in status.ErrorComment and "--dicom-peer" in status.ErrorComment


async def test_ro23_move_of_an_unknown_study_is_an_empty_success(
    node: Node, tmp_path: Path
) -> None:
    unknown = generate_uid()
    log = await movescu(node, tmp_path, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={unknown}")
    assert received(tmp_path) == {}
    assert "Success" in log, log
    status, _ = await c_move(node, "DEST", level="STUDY", StudyInstanceUID=unknown)
    assert status.Status == 0x0000
    assert status.NumberOfCompletedSuboperations == 0
    assert status.NumberOfFailedSuboperations == 0


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"level": "SERIES", "StudyInstanceUID": "1.2.3"}, "SeriesInstanceUID (0020,000E)"),
        ({"level": "STUDY"}, "StudyInstanceUID (0020,000D)"),
        ({"level": "FRAME", "StudyInstanceUID": "1.2.3"}, "QueryRetrieveLevel (0008,0052)"),
        ({"level": "STUDY", "StudyInstanceUID": "1.2.*"}, "StudyInstanceUID (0020,000D)"),
        ({"level": "STUDY", "StudyInstanceUID": "1.2", "SOPInstanceUID": "1.3"}, "SOPInstance"),
    ],
    ids=["series-without-series-uid", "no-study-uid", "bad-level", "wildcard", "below-level"],
)
async def test_ro23_bad_identifier_is_a900_naming_the_attribute(
    node: Node, keys: dict[str, str], named: str
) -> None:
    status, _ = await c_move(node, "DEST", **keys)
    assert status.Status == 0xA900
    assert named in status.ErrorComment
    ok, _ = await c_move(node, "DEST", level="STUDY", StudyInstanceUID=generate_uid())
    assert ok.Status == 0x0000  # the node keeps serving


async def test_ro23_getscu_gets_the_study_on_the_same_association(
    node: Node, tmp_path: Path
) -> None:
    argv = ["getscu", "-S", "-aet", "GETTER", "-aec", "FHIRSERVER", "-od", str(tmp_path),
            "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={node.study}",
            "127.0.0.1", str(node.port)]  # fmt: skip
    done = await dcmtk(*argv)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_same(node, received(tmp_path), list(node.by_sop))


def requester(ae_title: str) -> AE:
    """A pynetdicom AE with bounded waits: a missing response fails the test, never hangs it."""
    ae = AE(ae_title=ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    return ae


async def c_move(
    node: Node, dest: str, *, level: str, sop_class: str = STUDY_ROOT_MOVE, **keys: str
) -> tuple[Dataset, Dataset | None]:
    """A pynetdicom C-MOVE requester: the final status and its identifier."""

    def call() -> tuple[Dataset, Dataset | None]:
        ae = requester("MOVER")
        ae.add_requested_context(sop_class)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="FHIRSERVER")
        assert assoc.is_established
        identifier = identifier_of({"QueryRetrieveLevel": level, **keys})
        final: Any = None
        try:
            for status, answer in assoc.send_c_move(identifier, dest, sop_class):
                if status and status.Status != 0xFF00:
                    final = status, answer
        finally:
            assoc.release()
        assert final is not None
        return final  # type: ignore[no-any-return]

    return await asyncio.to_thread(call)


async def test_ro23_sub_operation_fails_when_its_transfer_syntax_is_not_accepted(
    node: Node,
) -> None:
    """The destination (a pynetdicom storage SCP) accepts CT in Implicit VR Little Endian only:
    the implicit instance arrives unchanged, the explicit one re-encoded in Implicit VR, the RLE
    one (no codec here) is a failed sub-operation; the final status is 0xB000 with its UID in the
    Failed SOP Instance UID List (PS3.4 C.4.2.3.1)."""
    arrived: list[bytes] = []

    def on_store(event: Any) -> int:
        arrived.append(bytes(event.encoded_dataset(include_meta=False)))
        return 0x0000

    implicit_only = AE(ae_title="DEST")
    implicit_only.add_supported_context(CT_IMAGE_STORAGE, ImplicitVRLittleEndian)
    server = implicit_only.start_server(
        ("127.0.0.1", node.dest_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)]
    )
    assert server is not None
    try:
        status, identifier = await c_move(
            node, "DEST", level="STUDY", StudyInstanceUID=node.mixed_study
        )
    finally:
        server.shutdown()
    compressed = pydicom.dcmread(BytesIO(node.mixed[2]))
    assert status.Status == 0xB000
    assert (status.NumberOfCompletedSuboperations, status.NumberOfFailedSuboperations) == (2, 1)
    assert identifier is not None
    assert identifier.FailedSOPInstanceUIDList == str(compressed.SOPInstanceUID)
    stored = await blob(node.app, str(pydicom.dcmread(BytesIO(node.mixed[1])).SOPInstanceUID))
    assert_implicit_arrivals(node, arrived, stored)


async def test_ro23_with_auth_on_only_peers_may_retrieve(tmp_path: Path) -> None:
    port, dest_port = free_port(), free_port()
    peers = ("MOVER=Organization/reader", f"DEST=Organization/reader@127.0.0.1:{dest_port}")
    async with running_application(
        tmp_path / "d", dicom_port=port, auth="smart", dicom_peers=peers
    ) as app:
        part10 = ct_study("RO-RETR-3", "20261204", 1)[0]
        path = tmp_path / "i.dcm"
        path.write_bytes(part10)
        done = await dcmtk("storescu", "-aet", "DEST", "-aec", "FHIRSERVER", "127.0.0.1",
                           str(port), str(path))  # fmt: skip
        assert done.returncode == 0, done.stderr
        node = Node(app, port, dest_port, [part10], [part10])
        out = tmp_path / "out"
        study = f"StudyInstanceUID={node.study}"
        stranger = ["movescu", "-S", "-aet", "STRANGER", "-aec", "FHIRSERVER", "-aem", "DEST",
                    "+P", str(dest_port), "-k", "QueryRetrieveLevel=STUDY", "-k", study,
                    "127.0.0.1", str(port)]  # fmt: skip
        refused = await dcmtk(*stranger)
        assert refused.returncode != 0
        assert "rejected" in (refused.stdout + refused.stderr).lower()
        await movescu(node, out, "QueryRetrieveLevel=STUDY", study)
        assert_same(node, received(out), list(node.by_sop))


async def c_get(
    node: Node, syntax: str, **keys: str
) -> tuple[Dataset, Dataset | None, list[bytes]]:
    """A pynetdicom C-GET requester taking CT in ``syntax`` only: the final status, its
    identifier and the data sets received (as encoded, without file meta)."""

    def call() -> tuple[Dataset, Dataset | None, list[bytes]]:
        arrived: list[bytes] = []

        def on_store(event: Any) -> int:
            arrived.append(bytes(event.encoded_dataset(include_meta=False)))
            return 0x0000

        ae = requester("GETTER")
        ae.add_requested_context(STUDY_ROOT_GET)
        ae.add_requested_context(CT_IMAGE_STORAGE, syntax)
        role = build_role(CT_IMAGE_STORAGE, scp_role=True)
        handlers: list[Any] = [(evt.EVT_C_STORE, on_store)]
        assoc = ae.associate(
            "127.0.0.1", node.port, ae_title="FHIRSERVER", ext_neg=[role], evt_handlers=handlers
        )
        assert assoc.is_established
        identifier = identifier_of(keys)
        final: Any = None
        try:
            for status, answer in assoc.send_c_get(identifier, STUDY_ROOT_GET):
                if status and status.Status != 0xFF00:
                    final = status, answer
        finally:
            assoc.release()
        assert final is not None
        return final[0], final[1], arrived

    return await asyncio.to_thread(call)


async def test_ro23_c_get_keeps_the_stored_transfer_syntax(node: Node) -> None:
    """The requester takes CT in Implicit VR Little Endian only: the implicit instance comes
    back byte for byte as stored, the explicit one re-encoded in Implicit VR, the RLE one is a
    failed sub-operation (0xB000)."""
    status, identifier, arrived = await c_get(
        node, ImplicitVRLittleEndian, QueryRetrieveLevel="STUDY", StudyInstanceUID=node.mixed_study
    )
    compressed = pydicom.dcmread(BytesIO(node.mixed[2]))
    assert status.Status == 0xB000
    assert (status.NumberOfCompletedSuboperations, status.NumberOfFailedSuboperations) == (2, 1)
    assert identifier is not None
    assert identifier.FailedSOPInstanceUIDList == str(compressed.SOPInstanceUID)
    stored = await blob(node.app, str(pydicom.dcmread(BytesIO(node.mixed[1])).SOPInstanceUID))
    assert_implicit_arrivals(node, arrived, stored)


async def test_ro23_c_get_bad_identifier_is_a900_and_unknown_study_empty(node: Node) -> None:
    status, _, arrived = await c_get(
        node, ExplicitVRLittleEndian, QueryRetrieveLevel="IMAGE", StudyInstanceUID=node.study
    )
    assert status.Status == 0xA900
    assert "SeriesInstanceUID (0020,000E) is required" in status.ErrorComment
    assert arrived == []
    status, _, arrived = await c_get(
        node, ExplicitVRLittleEndian, QueryRetrieveLevel="STUDY", StudyInstanceUID=generate_uid()
    )
    assert status.Status == 0x0000
    assert (status.NumberOfCompletedSuboperations, status.NumberOfFailedSuboperations) == (0, 0)
    assert arrived == []


async def test_ro23_c_cancel_stops_the_move(tmp_path: Path) -> None:
    """movescu --cancel 1: the sub-operations stop, the final response is Cancel (0xFE00)."""
    port, dest_port = free_port(), free_port()
    peers = (f"DEST=Organization/reader@127.0.0.1:{dest_port}",)
    async with running_application(tmp_path / "d", dicom_port=port, dicom_peers=peers) as app:
        files = ct_study("RO-RETR-4", "20261204", 12)
        paths = [str(write_file(tmp_path / f"i{n}.dcm", part10)) for n, part10 in enumerate(files)]
        done = await dcmtk("storescu", "-aec", "FHIRSERVER", "127.0.0.1", str(port), *paths)
        assert done.returncode == 0, done.stderr
        node = Node(app, port, dest_port, files, files)
        out = tmp_path / "out"
        await asyncio.to_thread(out.mkdir)
        argv = ["movescu", "-v", "-S", "--cancel", "1", "-aec", "FHIRSERVER", "-aem", "DEST",
                "+P", str(dest_port), "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
                "-k", f"StudyInstanceUID={node.study}", "127.0.0.1", str(port)]  # fmt: skip
        cancelled = await dcmtk(*argv)
        log = cancelled.stdout + cancelled.stderr
        assert "Final Move Response (Cancel" in log, log
        assert 1 <= len(received(out)) < len(files)


def write_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# pynetdicom 3.0.4 drops the socket of a refused connect without closing it (its shutdown()
# raises ENOTCONN before close()); CPython closes it at once, with a ResourceWarning.
@pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")
async def test_ro23_unreachable_move_destination_is_a801_saying_so(node: Node) -> None:
    """DEST is a peer but nothing listens on its port (movescu is not running)."""
    status, _ = await c_move(node, "DEST", level="STUDY", StudyInstanceUID=node.study)
    assert status.Status == 0xA801
    assert f"association to DEST@127.0.0.1:{node.dest_port} failed" in status.ErrorComment
    ok, _ = await c_move(node, "DEST", level="STUDY", StudyInstanceUID=generate_uid())
    assert ok.Status == 0x0000  # the node keeps serving
