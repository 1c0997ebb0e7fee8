"""ImagingService.store_part10's storage steps on a real application (SQLite records, filesystem
blobs): what counts as a duplicate, what a half-stored instance (a crash between the blob and
the record) becomes when it is sent again, the study's pending marker, and a blob store that
cannot write."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path

import pydicom
import pytest

from fhir_server.bootstrap import Application
from fhir_server.imaging.gate import GatePolicy
from fhir_server.imaging.instances import OUT_OF_RESOURCES
from fhir_server.imaging.kinds import INSTANCE, PENDING
from fhir_server.imaging.service import ImagingService
from fhir_server.imaging.store_result import Sender
from fhir_server.storage.filesystem_blobs import FilesystemBlobStore
from tests.conftest import running_application
from tests.dicom.orthanc import ct_study
from tests.dicom.test_node import blob

MODALITY = Sender("MODALITY1", "Organization/beneficiary", "c-store")


def ingest(app: Application) -> ImagingService:
    """The ingest over the application's store and blobs; studies wait a minute of quiet."""
    return ImagingService(
        app.service, app.store.records, app.blobs, app.service.clock,
        policy=GatePolicy.default(), quiet=60, max_delay=60,
    )  # fmt: skip


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[tuple[Application, ImagingService]]:
    async with running_application(tmp_path / "data") as app:
        imaging = ingest(app)
        await imaging.start()
        try:
            yield app, imaging
        finally:
            await imaging.stop()


async def test_a_record_without_its_bytes_is_stored_again(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    data = ct_study("PID-1", "20261201", 1)[0]
    first = await imaging.store_part10(data, MODALITY)
    assert first.sop_instance is not None
    assert await app.blobs.delete(first.sop_instance)  # as if the bytes had been lost
    again = await imaging.store_part10(data, MODALITY)
    assert again.ok and not again.duplicate
    assert await blob(app, first.sop_instance) == data


async def test_bytes_without_their_record_are_stored_again(
    setup: tuple[Application, ImagingService],
) -> None:
    _, imaging = setup
    data = ct_study("PID-2", "20261201", 1)[0]
    first = await imaging.store_part10(data, MODALITY)
    assert first.sop_instance is not None
    assert await imaging.records.delete(INSTANCE, first.sop_instance)
    again = await imaging.store_part10(data, MODALITY)
    assert again.ok and not again.duplicate
    record = await imaging.records.get(INSTANCE, first.sop_instance)
    assert record is not None and record["study"] == first.study_uid
    assert record["size"] == len(data)


async def test_a_duplicate_keeps_the_first_bytes_and_reports_the_first_study(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    data = ct_study("PID-3", "20261201", 1)[0]
    first = await imaging.store_part10(data, MODALITY)
    again = await imaging.store_part10(data + b"", MODALITY)
    assert again.duplicate and again.status == 0
    assert (again.study_uid, again.series_uid) == (first.study_uid, first.series_uid)
    assert again.patient_id == first.patient_id == "PID-3"
    assert first.sop_instance is not None
    info = await app.blobs.info(first.sop_instance)
    assert info is not None and info.sha256 == hashlib.sha256(data).hexdigest()


async def test_the_first_instance_of_a_study_marks_it_pending_with_its_record(
    setup: tuple[Application, ImagingService],
) -> None:
    _, imaging = setup
    files = ct_study("PID-4", "20261201", 3)
    first = await imaging.store_part10(files[0], MODALITY)
    assert first.study_uid is not None
    marker = await imaging.records.get(PENDING, first.study_uid)
    assert marker is not None and marker["study"] == first.study_uid
    for data in files[1:]:
        assert (await imaging.store_part10(data, MODALITY)).ok
    assert await imaging.records.get(PENDING, first.study_uid) == marker, "marked once"
    assert len(await imaging.instances(first.study_uid)) == 3


async def test_a_blob_store_that_cannot_write_gives_out_of_resources_and_no_record(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    data = ct_study("PID-5", "20261201", 1)[0]
    # the instance's fan-out directory (made when the store opened) replaced by a file
    blobs = app.blobs
    assert isinstance(blobs, FilesystemBlobStore)
    sop_instance = str(pydicom.dcmread(BytesIO(data), stop_before_pixels=True).SOPInstanceUID)
    directory, _ = blobs._where(sop_instance)
    directory.rmdir()
    directory.write_bytes(b"not a directory")
    result = await imaging.store_part10(data, MODALITY)
    assert result.status == OUT_OF_RESOURCES and not result.ok
    assert result.comment is not None and result.comment.startswith("Out of resources")
    assert await imaging.records.get(INSTANCE, sop_instance) is None


def _without_media_instance(data: bytes) -> bytes:
    ds = pydicom.dcmread(BytesIO(data))
    del ds.file_meta.MediaStorageSOPInstanceUID
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    return buffer.getvalue()


async def test_a_duplicate_is_found_without_the_file_meta_uid(
    setup: tuple[Application, ImagingService],
) -> None:
    _, imaging = setup
    data = _without_media_instance(ct_study("PID-6", "20261201", 1)[0])
    first = await imaging.store_part10(data, MODALITY)
    again = await imaging.store_part10(data, MODALITY)
    assert first.ok and not first.duplicate
    assert again.ok and again.duplicate and again.sop_instance == first.sop_instance


async def test_a_file_meta_naming_a_stored_instance_of_another_data_set_is_refused(
    setup: tuple[Application, ImagingService],
) -> None:
    app, imaging = setup
    stored, other = ct_study("PID-7", "20261201", 2)
    first = await imaging.store_part10(stored, MODALITY)
    assert first.sop_instance is not None
    ds = pydicom.dcmread(BytesIO(other))
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(first.sop_instance)
    buffer = BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=False)
    refused = await imaging.store_part10(buffer.getvalue(), MODALITY)
    assert refused.status == 0xA900 and not refused.duplicate
    assert refused.comment == "SOP Instance (0008,0018) differs from (0002,0003)"
    assert await blob(app, first.sop_instance) == stored


async def test_a_flush_racing_a_store_never_drops_the_pending_marker(
    setup: tuple[Application, ImagingService],
) -> None:
    """Whatever the interleaving of a study's flush and the store of its next instance, the
    new instance ends up either in the written ImagingStudy or in a study still pending (in
    memory and by its durable marker, which a restart flushes)."""
    app, imaging = setup
    files = ct_study("PID-RACE", "20261201", 24)
    study = str(pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID)
    assert (await imaging.store_part10(files[0], MODALITY)).ok
    for number, data in enumerate(files[1:]):
        flush = asyncio.create_task(imaging.flush(study))
        for _ in range(number % 8):  # a different interleaving each round
            await asyncio.sleep(0)
        assert (await imaging.store_part10(data, MODALITY)).ok
        await flush
        # the store came last: its study is pending and its marker durable, whatever the flush
        assert study in imaging._pending, f"round {number}"
        assert await app.store.records.get(PENDING, study) is not None, f"round {number}"
    await imaging.flush(study)
    assert await app.store.records.get(PENDING, study) is None
    records = await imaging.instances(study)
    assert len(records) == 24


async def test_a_record_a_crash_left_without_bytes_is_removed_at_start(
    setup: tuple[Application, ImagingService],
) -> None:
    """Bytes and record are written in parallel: after a crash between the record's commit and
    the blob's, the next start removes the record (never acknowledged) before writing the study,
    and keeps the instances whose bytes are there."""
    app, imaging = setup
    files = ct_study("PID-CRASH", "20261201", 2)
    kept, lost = [await imaging.store_part10(data, MODALITY) for data in files]
    assert kept.sop_instance and lost.sop_instance and kept.study_uid
    assert await app.blobs.delete(lost.sop_instance)  # its bytes never became durable
    restarted = ingest(app)
    await restarted.start()  # the study is still pending (quiet=60): as after a crash
    try:
        assert await app.store.records.get(INSTANCE, lost.sop_instance) is None
        assert await app.store.records.get(INSTANCE, kept.sop_instance) is not None
        study = await app.store.records.get("dicom-study", kept.study_uid)
        assert study is not None and study["attributes"]["00201208"]["Value"] == [1]
    finally:
        await restarted.stop()
