"""WADO-RS in another transfer syntax than the stored one (PS3.18 8.7.3.5.2), by dicomweb-client
and requests over a real socket: between native little-endian syntaxes the instance is
re-encoded with every value unchanged; what would need a codec is 406, naming what can be had."""

from __future__ import annotations

from io import BytesIO

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient

from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import DicomWeb
from tests.dicomweb.test_dicomweb import DICOM_PARTS, call, split_multipart, stow
from tests.unit.imaging import synth

IMPLICIT, EXPLICIT, DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99"


def same_values(a: pydicom.Dataset, b: pydicom.Dataset) -> None:
    assert [e.tag for e in a] == [e.tag for e in b]
    for element in a:
        assert b[element.tag].value == element.value, element


def encoded(part10: bytes, syntax: str) -> bytes:
    """``part10`` written again by pydicom in another native transfer syntax (as a modality
    could have sent it)."""
    ds = pydicom.dcmread(BytesIO(part10))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.UID(syntax)
    out = BytesIO()
    ds.save_as(out, implicit_vr=syntax == IMPLICIT, little_endian=True, enforce_file_format=True)
    return out.getvalue()


def instance_url(base: str, ds: pydicom.Dataset) -> str:
    return (
        f"{base}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )


async def test_ro23_an_instance_is_served_in_the_syntax_asked_for(dicomweb: DicomWeb) -> None:
    explicit, second, third = ct_study("TS-1", "20240105", 3)
    implicit, deflated = encoded(second, IMPLICIT), encoded(third, DEFLATED)
    assert len(deflated) < len(third) * 0.8  # really deflated
    stored = await call(stow, dicomweb.url, [explicit, implicit, deflated])
    assert stored.status_code == 200, stored.text
    client = DICOMwebClient(dicomweb.url)  # asks for Explicit VR Little Endian only
    for part10 in (implicit, deflated, explicit):
        original = pydicom.dcmread(BytesIO(part10))
        got = await call(
            client.retrieve_instance, original.StudyInstanceUID, original.SeriesInstanceUID,
            original.SOPInstanceUID, media_types=(("application/dicom", EXPLICIT),),
        )  # fmt: skip
        assert got.file_meta.TransferSyntaxUID == EXPLICIT and not got.is_implicit_VR
        same_values(original, got)
    for part10 in (explicit, deflated):
        original = pydicom.dcmread(BytesIO(part10))
        accept = {"Accept": f"application/dicom; transfer-syntax={IMPLICIT}"}
        alone = await call(requests.get, instance_url(dicomweb.url, original), headers=accept,
                           timeout=30)  # fmt: skip
        assert alone.status_code == 200 and alone.headers["Content-Type"] == "application/dicom"
        back = pydicom.dcmread(BytesIO(alone.content))
        assert back.file_meta.TransferSyntaxUID == IMPLICIT and back.is_implicit_VR
        same_values(original, back)
    # asked for in the stored syntax: the stored bytes, unchanged
    ds = pydicom.dcmread(BytesIO(explicit))
    accept = {"Accept": f"{DICOM_PARTS}; transfer-syntax={EXPLICIT}"}
    got_bytes = await call(requests.get, instance_url(dicomweb.url, ds), headers=accept, timeout=30)
    assert split_multipart(got_bytes) == [explicit]


async def test_ro23_a_study_is_served_in_implicit_vr_with_each_part_saying_so(
    dicomweb: DicomWeb,
) -> None:
    files = ct_study("TS-2", "20240106", 3)
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    study = pydicom.dcmread(BytesIO(files[0])).StudyInstanceUID
    accept = {"Accept": f"{DICOM_PARTS}; transfer-syntax={IMPLICIT}"}
    got = await call(requests.get, f"{dicomweb.url}/studies/{study}", headers=accept, timeout=30)
    assert got.status_code == 200, got.text
    assert got.content.count(f"transfer-syntax={IMPLICIT}\r\n".encode()) == 3
    parts = sorted(split_multipart(got), key=lambda p: pydicom.dcmread(BytesIO(p)).SOPInstanceUID)
    originals = sorted(files, key=lambda p: pydicom.dcmread(BytesIO(p)).SOPInstanceUID)
    for part, original in zip(parts, originals, strict=True):
        back = pydicom.dcmread(BytesIO(part))
        assert back.file_meta.TransferSyntaxUID == IMPLICIT and back.is_implicit_VR
        same_values(pydicom.dcmread(BytesIO(original)), back)


async def test_a_syntax_that_needs_a_codec_is_406_naming_what_can_be_had(
    dicomweb: DicomWeb,
) -> None:
    rle = synth.bundled("MR_small_RLE.dcm").read_bytes()
    explicit = ct_study("TS-3", "20240107", 1)[0]
    assert (await call(stow, dicomweb.url, [rle, explicit])).status_code == 200
    rle_url = instance_url(dicomweb.url, pydicom.dcmread(BytesIO(rle)))
    as_explicit = {"Accept": f"{DICOM_PARTS}; transfer-syntax={EXPLICIT}"}
    refused = await call(requests.get, rle_url, headers=as_explicit, timeout=30)
    assert refused.status_code == 406 and "1.2.840.10008.1.2.5" in refused.text
    assert "serves as stored" in refused.text
    explicit_url = instance_url(dicomweb.url, pydicom.dcmread(BytesIO(explicit)))
    as_jpeg = {"Accept": f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.50"}
    jpeg = await call(requests.get, explicit_url, headers=as_jpeg, timeout=30)
    assert jpeg.status_code == 406
    assert f"or in {IMPLICIT} or {EXPLICIT}" in jpeg.text
    # a list of ranges: the first that can be served wins
    either = {"Accept": f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.50, "
                        f"{DICOM_PARTS}; transfer-syntax={IMPLICIT}"}  # fmt: skip
    served = await call(requests.get, explicit_url, headers=either, timeout=30)
    assert served.status_code == 200 and f"transfer-syntax={IMPLICIT}" in served.text[:300]
