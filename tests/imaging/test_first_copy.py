"""An instance's bytes and record are each written unless already there (BlobStore.put_if_absent
beside an ``if_absent`` record put), so the ingest asks the stores once instead of looking
first: a resend is a duplicate that changes nothing, and what an attempt never acknowledged left
alone (bytes without a record, a record without bytes) is replaced by the next copy. On a real
application: SQLite, filesystem blobs (a small instance is a row, a 512x512 one a file)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from fhir_server.bootstrap import Application
from fhir_server.imaging.kinds import INSTANCE, PENDING
from fhir_server.imaging.service import ImagingService
from tests.conftest import running_application
from tests.dicom.orthanc import ct_study
from tests.imaging.test_service import MODALITY, _started, _studies
from tests.unit.imaging import synth


def large(data: bytes) -> bytes:
    """``data`` with a 512x512 16-bit image (about 0.5 MB: a version file, not a row)."""
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
    ds.Rows = ds.Columns = 512
    ds.PixelData = bytes((i * 7) & 0xFF for i in range(512 * 512 * 2))
    return synth.to_bytes(ds)


def instance(patient: str, size: str) -> bytes:
    """One CT instance of a new study, ``small`` (39 KB) or ``large`` (512x512)."""
    [data] = ct_study(patient, "20261201", 1)
    return large(data) if size == "large" else data


def changed(data: bytes) -> bytes:
    """The same instance (same UIDs) with another Series Description: other bytes."""
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data))
    ds.SeriesDescription = "sent again, changed"
    return synth.to_bytes(ds)


async def blob_of(app: Application, key: str) -> bytes:
    async with await app.blobs.stream(key) as stream:
        return await stream.read_all()


SIZES = pytest.mark.parametrize("size", ["small", "large"])


@SIZES
async def test_a_resent_instance_changes_nothing(
    setup: tuple[Application, ImagingService], size: str
) -> None:
    app, imaging = setup
    data = instance(f"PID-R-{size}", size)
    first = await imaging.store_part10(data, MODALITY)
    await imaging.flush()
    assert first.sop_instance is not None and first.study_uid is not None
    record = await app.store.records.get(INSTANCE, first.sop_instance)
    [study] = await _studies(app, first.study_uid)
    again = await imaging.store_part10(changed(data), MODALITY)
    assert again.ok and again.duplicate and again.sop_instance == first.sop_instance
    assert await blob_of(app, first.sop_instance) == data  # the first copy is kept
    assert await app.store.records.get(INSTANCE, first.sop_instance) == record
    await imaging.flush()
    [same] = await _studies(app, first.study_uid)
    assert same["meta"]["versionId"] == study["meta"]["versionId"]  # not written again
    assert await app.store.records.find(PENDING, limit=10) == []  # nor left pending


@SIZES
async def test_bytes_left_without_a_record_are_replaced(
    setup: tuple[Application, ImagingService], size: str
) -> None:
    app, imaging = setup
    data = instance(f"PID-B-{size}", size)
    uid = str(pydicom.dcmread(pydicom.filebase.DicomBytesIO(data)).SOPInstanceUID)
    await app.blobs.put(uid, changed(data), content_type="application/dicom")  # never indexed
    result = await imaging.store_part10(data, MODALITY)
    assert result.ok and not result.duplicate
    assert await blob_of(app, uid) == data
    record = await app.store.records.get(INSTANCE, uid)
    assert record is not None and record["size"] == len(data)


@SIZES
async def test_a_record_left_without_bytes_is_replaced(
    setup: tuple[Application, ImagingService], size: str
) -> None:
    app, imaging = setup
    data = instance(f"PID-C-{size}", size)
    first = await imaging.store_part10(changed(data), MODALITY)
    assert first.sop_instance is not None
    assert await app.blobs.delete(first.sop_instance)  # its bytes lost
    result = await imaging.store_part10(data, MODALITY)
    assert result.ok and not result.duplicate
    assert await blob_of(app, first.sop_instance) == data
    record = await app.store.records.get(INSTANCE, first.sop_instance)
    assert record is not None and record["size"] == len(data)


async def test_a_pending_record_whose_bytes_differ_is_dropped_at_start(tmp_path: Path) -> None:
    """After a crash between an instance's record and the replacement of bytes an earlier
    attempt left: the record names bytes it does not have; it was never acknowledged."""
    data_dir = tmp_path / "data"
    [data] = ct_study("PID-D", "20261201", 1)
    async with running_application(data_dir) as app:
        imaging = await _started(app, quiet=60, max_delay=60)
        result = await imaging.store_part10(data, MODALITY)
        assert result.sop_instance is not None and imaging._task is not None
        imaging._task.cancel()  # a crash: the study stays pending
        await app.blobs.put(result.sop_instance, b"other bytes", content_type="application/dicom")
    async with running_application(data_dir) as app:
        imaging = await _started(app, quiet=60, max_delay=60)
        try:
            assert await app.store.records.get(INSTANCE, result.sop_instance) is None
        finally:
            await imaging.stop()
