"""DICOMweb (issue 9 point 5, RO-23) with third-party clients over a real socket: dicomweb-client
for STOW-RS/QIDO-RS/WADO-RS, requests for the raw bytes (byte-identical retrieval)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from io import BytesIO
from typing import Any, TypeVar

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import DicomWeb
from tests.unit.imaging import synth

T = TypeVar("T")
DICOM_PARTS = 'multipart/related; type="application/dicom"'


async def call(function: Callable[..., T], *args: Any, **kw: Any) -> T:
    """A blocking client call, off the event loop that serves it."""
    return await asyncio.to_thread(function, *args, **kw)


def multipart(parts: list[bytes], part_type: str = "application/dicom") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = b"".join(
        f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + p + b"\r\n" for p in parts
    )
    return body + f"--{boundary}--\r\n".encode(), f"{DICOM_PARTS}; boundary={boundary}"


def stow(url: str, parts: list[bytes], **kw: Any) -> requests.Response:
    body, content_type = multipart(parts)
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    return requests.post(f"{url}/studies", data=body, headers=headers, timeout=30, **kw)


def split_multipart(response: requests.Response) -> list[bytes]:
    """The parts of a multipart/related response (headers dropped)."""
    content_type = response.headers["Content-Type"]
    assert content_type.startswith("multipart/related"), content_type
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    chunks = response.content.split(b"--" + boundary)
    out = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        _, _, content = chunk.partition(b"\r\n\r\n")
        out.append(content.removesuffix(b"\r\n"))
    return out


def uid_of(part10: bytes, keyword: str) -> str:
    return str(pydicom.dcmread(BytesIO(part10), stop_before_pixels=True).get(keyword))


def values(item: dict[str, Any], tag: str) -> list[Any]:
    return list(item.get(tag, {}).get("Value", []))


async def test_ro23_stow_then_wado_is_byte_identical(dicomweb: DicomWeb) -> None:
    files = ct_study("DW-1", "20240105", 3, patient_name="Popescu^Ana", accession="ACC-DW1")
    stored = await call(stow, dicomweb.url, files)
    assert stored.status_code == 200, stored.text
    assert stored.headers["Content-Type"] == "application/dicom+json"
    body = stored.json()
    study = uid_of(files[0], "StudyInstanceUID")
    series = uid_of(files[0], "SeriesInstanceUID")
    assert values(body, "00081190") == [f"{dicomweb.url}/studies/{study}"]
    referenced = values(body, "00081199")
    assert len(referenced) == 3 and "00081198" not in body
    sop = uid_of(files[0], "SOPInstanceUID")
    assert values(referenced[0], "00081190")[0].startswith(
        f"{dicomweb.url}/studies/{study}/series/{series}/instances/"
    )
    accept = {"Accept": f"{DICOM_PARTS}; transfer-syntax=*"}
    whole = await call(requests.get, f"{dicomweb.url}/studies/{study}", headers=accept, timeout=30)
    assert whole.status_code == 200
    assert sorted(split_multipart(whole)) == sorted(files)
    one = await call(
        requests.get, f"{dicomweb.url}/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": "application/dicom"}, timeout=30,
    )  # fmt: skip
    assert one.status_code == 200 and one.content == files[0]
    in_series = await call(
        requests.get, f"{dicomweb.url}/studies/{study}/series/{series}", timeout=30
    )
    assert sorted(split_multipart(in_series)) == sorted(files)
    # the ImagingStudy was written by the same ingest (flushed before the STOW answer)
    record = await dicomweb.application.store.records.get("dicom-study", study)
    assert record is not None and str(record["imaging_study"]).startswith("ImagingStudy/")


async def test_ro23_dicomweb_client_store_search_retrieve(dicomweb: DicomWeb) -> None:
    client = DICOMwebClient(dicomweb.url)
    first = ct_study("DW-A", "20240105", 2, patient_name="Popescu^Ana", accession="A1")
    second = ct_study("DW-B", "20231201", 1, patient_name="Ionescu^Dan", accession="B1")
    datasets = [pydicom.dcmread(BytesIO(f)) for f in first + second]
    response = await call(client.store_instances, datasets)
    assert len(response.ReferencedSOPSequence) == 3
    study_a = uid_of(first[0], "StudyInstanceUID")
    study_b = uid_of(second[0], "StudyInstanceUID")

    async def studies(**kw: Any) -> list[str]:
        found = await call(client.search_for_studies, **kw)
        return sorted(values(item, "0020000D")[0] for item in found)

    assert await studies(search_filters={"PatientID": "DW-A"}) == [study_a]
    assert await studies(search_filters={"StudyDate": "20231101-20231231"}) == [study_b]
    assert await studies(search_filters={"PatientName": "popescu*"}) == [study_a]
    assert await studies(search_filters={"ModalitiesInStudy": "CT"}) == sorted([study_a, study_b])
    assert await studies(search_filters={"00080050": "B1"}) == [study_b]
    assert await studies(search_filters={"PatientID": "nobody"}) == []
    assert len(await studies(limit=1)) == 1
    assert len(await studies(offset=1)) == 1
    [item] = await call(
        client.search_for_studies, search_filters={"PatientID": "DW-A"}, fields=["PatientSex"]
    )
    assert "00100040" in item and values(item, "00201208") == [2]
    series = await call(client.search_for_series, study_a)
    assert [values(s, "00080060") for s in series] == [["CT"]]
    series_uid = values(series[0], "0020000E")[0]
    instances = await call(client.search_for_instances, study_a, series_uid)
    assert sorted(values(i, "00080018")[0] for i in instances) == sorted(
        uid_of(f, "SOPInstanceUID") for f in first
    )
    everywhere = await call(client.search_for_instances, search_filters={"PatientID": "DW-B"})
    assert len(everywhere) == 1
    retrieved = await call(client.retrieve_study, study_a)
    assert sorted(str(d.SOPInstanceUID) for d in retrieved) == sorted(
        uid_of(f, "SOPInstanceUID") for f in first
    )
    original = {uid_of(f, "SOPInstanceUID"): pydicom.dcmread(BytesIO(f)) for f in first}
    for ds in retrieved:
        assert ds.PixelData == original[str(ds.SOPInstanceUID)].PixelData


async def test_metadata_bulk_data_and_frames(dicomweb: DicomWeb) -> None:
    client = DICOMwebClient(dicomweb.url)
    files = ct_study("DW-M", "20240105", 1)
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    ds = pydicom.dcmread(BytesIO(files[0]))
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    [metadata] = await call(client.retrieve_study_metadata, study)
    assert values(metadata, "00100020") == ["DW-M"]
    pixel_uri = metadata["7FE00010"]["BulkDataURI"]
    assert (
        pixel_uri == f"{dicomweb.url}/studies/{study}/series/{series}/instances/{sop}/bulk/7FE00010"
    )
    assert "02:0010" not in metadata and "00020010" not in metadata  # no file meta
    for level in (
        f"/studies/{study}/series/{series}",
        f"/studies/{study}/series/{series}/instances/{sop}",
    ):
        found = await call(requests.get, f"{dicomweb.url}{level}/metadata", timeout=30)
        assert found.status_code == 200 and len(found.json()) == 1
    bulk = await call(requests.get, pixel_uri, timeout=30)
    assert bulk.status_code == 200 and split_multipart(bulk) == [ds.PixelData]
    [frame] = await call(client.retrieve_instance_frames, study, series, sop, [1])
    assert frame == ds.PixelData
    beyond = await call(
        requests.get, f"{dicomweb.url}/studies/{study}/series/{series}/instances/{sop}/frames/2",
        timeout=30,
    )  # fmt: skip
    assert beyond.status_code == 404 and "frame 2 does not exist" in beyond.text


async def test_unknown_uids_and_unservable_accept(dicomweb: DicomWeb) -> None:
    files = ct_study("DW-N", "20240105", 1)
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    study = uid_of(files[0], "StudyInstanceUID")
    missing = await call(requests.get, f"{dicomweb.url}/studies/1.2.3.4", timeout=30)
    assert missing.status_code == 404 and "1.2.3.4" in missing.text
    missing_series = await call(
        requests.get, f"{dicomweb.url}/studies/{study}/series/1.2.3/metadata", timeout=30
    )
    assert missing_series.status_code == 404 and "series 1.2.3" in missing_series.text
    jpeg = {"Accept": f"{DICOM_PARTS}; transfer-syntax=1.2.840.10008.1.2.4.50"}
    refused = await call(requests.get, f"{dicomweb.url}/studies/{study}", headers=jpeg, timeout=30)
    assert refused.status_code == 406 and "serves as stored" in refused.text
    # instances are not answered as bulk data when octet-stream parts are asked for
    octets = {"Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'}
    as_octets = await call(
        requests.get, f"{dicomweb.url}/studies/{study}", headers=octets, timeout=30
    )
    assert as_octets.status_code == 406, as_octets.headers.get("Content-Type")
    bad_key = await call(requests.get, f"{dicomweb.url}/studies?PatientNam=x", timeout=30)
    assert bad_key.status_code == 400 and "'PatientNam'" in bad_key.text
    bad_limit = await call(requests.get, f"{dicomweb.url}/studies?limit=ten", timeout=30)
    assert bad_limit.status_code == 400 and "limit" in bad_limit.text
    html = {"Accept": "text/html"}
    as_html = await call(requests.get, f"{dicomweb.url}/studies", headers=html, timeout=30)
    assert as_html.status_code == 406 and "application/dicom+json" in as_html.text
    assert 'type="application/dicom+xml"' in as_html.text
    empty = await call(requests.get, f"{dicomweb.url}/studies?PatientID=nobody", timeout=30)
    assert empty.status_code == 200 and empty.json() == []


async def test_ro14_gate_refusal_via_stow(dicomweb: DicomWeb) -> None:
    film = synth.scanned_film()
    refused = await call(stow, dicomweb.url, [film])
    assert refused.status_code == 409, refused.text
    [failed] = values(refused.json(), "00081198")
    assert values(failed, "00081155") == [uid_of(film, "SOPInstanceUID")]
    reason = values(failed, "00081197")[0]
    assert reason & 0xF000 in (0xA000, 0xC000)
    assert values(failed, "00000902")[0]  # the Error Comment says why
    assert "Warning" in refused.headers
    good = ct_study("DW-G", "20240105", 1)
    mixed = await call(stow, dicomweb.url, [good[0], synth.lossy_derivation()])
    assert mixed.status_code == 202
    assert len(values(mixed.json(), "00081199")) == 1
    assert len(values(mixed.json(), "00081198")) == 1
    flagged = await call(stow, dicomweb.url, [synth.missing_study_date()])
    assert flagged.status_code == 200  # stored; the review flag is told in a Warning header
    assert "review" in flagged.headers["Warning"].lower()


async def test_bad_stow_requests(dicomweb: DicomWeb) -> None:
    files = ct_study("DW-X", "20240105", 1)
    body, content_type = multipart(files)
    headers = {"Content-Type": content_type}
    cut = await call(
        requests.post, f"{dicomweb.url}/studies", data=body[:-40], headers=headers, timeout=30
    )
    assert cut.status_code == 400 and "closing boundary" in cut.text
    no_boundary = await call(
        requests.post, f"{dicomweb.url}/studies", data=body,
        headers={"Content-Type": DICOM_PARTS}, timeout=30,
    )  # fmt: skip
    assert no_boundary.status_code == 400 and "boundary" in no_boundary.text
    json_type = await call(
        requests.post, f"{dicomweb.url}/studies", data=b"[]",
        headers={"Content-Type": "application/dicom+json"}, timeout=30,
    )  # fmt: skip
    assert json_type.status_code == 415
    other_study = await call(
        requests.post, f"{dicomweb.url}/studies/1.2.3.4", data=body, headers=headers, timeout=30
    )
    assert other_study.status_code == 409
    [failed] = values(other_study.json(), "00081198")
    assert values(failed, "00081197") == [0xA900]
    truncated = await call(stow, dicomweb.url, [files[0][:-100]])
    assert truncated.status_code == 409
    assert values(values(truncated.json(), "00081198")[0], "00081197")[0] & 0xF000 == 0xC000
    # nothing half-stored: the study is unknown
    study = uid_of(files[0], "StudyInstanceUID")
    assert (
        await call(requests.get, f"{dicomweb.url}/studies/{study}", timeout=30)
    ).status_code == 404


@pytest.mark.parametrize("count", [1])
async def test_resend_is_idempotent(dicomweb: DicomWeb, count: int) -> None:
    files = ct_study("DW-R", "20240105", count)
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    again = await call(stow, dicomweb.url, files)
    assert again.status_code == 200
    study = uid_of(files[0], "StudyInstanceUID")
    found = await call(requests.get, f"{dicomweb.url}/studies?StudyInstanceUID={study}", timeout=30)
    assert values(found.json()[0], "00201208") == [count]


async def test_a_large_instance_is_served_byte_for_byte_from_its_segment(
    dicomweb: DicomWeb,
) -> None:
    """A 512x512 image (0.5 MB: above the inline limit, appended to a segment file) sent twice
    comes back as sent, whole, as its pixel data and as its frame."""
    ds = pydicom.dcmread(BytesIO(ct_study("DW-L", "20240105", 1)[0]))
    ds.Rows = ds.Columns = 512
    ds.PixelData = bytes((n * 7) & 0xFF for n in range(512 * 512 * 2))
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    part10 = out.getvalue()
    for _ in range(2):
        assert (await call(stow, dicomweb.url, [part10])).status_code == 200
    assert list((dicomweb.application.settings.data_dir / "blobs" / "segments").glob("*.seg"))
    study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
    url = f"{dicomweb.url}/studies/{study}/series/{series}/instances/{sop}"
    got = await call(requests.get, url, headers={"Accept": DICOM_PARTS}, timeout=30)
    assert got.status_code == 200 and split_multipart(got) == [part10]
    [frame] = await call(DICOMwebClient(dicomweb.url).retrieve_instance_frames,
                         study, series, sop, [1])  # fmt: skip
    assert frame == ds.PixelData
    bulk = await call(requests.get, f"{url}/bulk/7FE00010", timeout=30)
    assert split_multipart(bulk) == [ds.PixelData]


async def test_encapsulated_frames_are_served_as_stored(dicomweb: DicomWeb) -> None:
    from pydicom.encaps import generate_frames

    part10 = synth.bundled("MR_small_RLE.dcm").read_bytes()
    stored = await call(stow, dicomweb.url, [part10])
    assert stored.status_code == 200, stored.text
    ds = pydicom.dcmread(BytesIO(part10))
    instance = (
        f"{dicomweb.url}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
        f"/instances/{ds.SOPInstanceUID}"
    )
    rle = {"Accept": 'multipart/related; type="image/dicom-rle"'}
    frames = await call(requests.get, f"{instance}/frames/1", headers=rle, timeout=30)
    assert frames.status_code == 200, frames.text
    assert 'type="image/dicom-rle"' in frames.headers["Content-Type"]
    assert split_multipart(frames) == list(generate_frames(ds.PixelData, number_of_frames=1))
    octets = 'multipart/related; type="application/octet-stream"'
    raw = {"Accept": f"{octets}; transfer-syntax=1.2.840.10008.1.2.1"}
    refused = await call(requests.get, f"{instance}/frames/1", headers=raw, timeout=30)
    assert refused.status_code == 406
    whole = await call(requests.get, instance, headers={"Accept": "application/dicom"}, timeout=30)
    assert whole.content == part10


async def test_series_and_instances_across_studies(dicomweb: DicomWeb) -> None:
    files = ct_study("DW-S", "20240105", 2) + ct_study("DW-T", "20240106", 1)
    assert (await call(stow, dicomweb.url, files)).status_code == 200
    series = await call(requests.get, f"{dicomweb.url}/series?PatientID=DW-*", timeout=30)
    assert series.status_code == 200 and len(series.json()) == 2
    assert all(
        values(s, "00081190")[0].startswith(f"{dicomweb.url}/studies/") for s in series.json()
    )
    instances = await call(
        requests.get, f"{dicomweb.url}/instances?includefield=00100020,StudyDate&limit=2",
        timeout=30,
    )  # fmt: skip
    assert instances.status_code == 200 and len(instances.json()) == 2
    assert all("00100020" in item and "00080020" in item for item in instances.json())
    study = uid_of(files[0], "StudyInstanceUID")
    in_study = await call(requests.get, f"{dicomweb.url}/studies/{study}/instances", timeout=30)
    assert sorted(values(i, "00080018")[0] for i in in_study.json()) == sorted(
        uid_of(f, "SOPInstanceUID") for f in files[:2]
    )


async def test_stow_parts_in_request_order_and_a_copy_in_the_same_request(
    dicomweb: DicomWeb,
) -> None:
    """Parts are stored a few at a time: the response still lists them in request order, and an
    instance sent twice in one request is stored once (the second copy is a duplicate)."""
    files = ct_study("DW-ORDER", "20240106", 9)
    sent_files = [files[0], files[0], *files[1:]]  # the copy beside its original: concurrent
    answer = await call(stow, dicomweb.url, sent_files)
    assert answer.status_code == 200, answer.text
    referenced = values(answer.json(), "00081199")
    sent = [uid_of(f, "SOPInstanceUID") for f in sent_files]
    assert [values(item, "00081155")[0] for item in referenced] == sent
    study = uid_of(files[0], "StudyInstanceUID")
    found = await call(requests.get, f"{dicomweb.url}/studies?StudyInstanceUID={study}", timeout=30)
    assert values(found.json()[0], "00201208") == [9]
    for data in files:
        sop, series = uid_of(data, "SOPInstanceUID"), uid_of(data, "SeriesInstanceUID")
        got = await call(
            requests.get, f"{dicomweb.url}/studies/{study}/series/{series}/instances/{sop}",
            headers={"Accept": 'multipart/related; type="application/dicom"'},
            timeout=30,
        )  # fmt: skip
        assert split_multipart(got) == [data]
