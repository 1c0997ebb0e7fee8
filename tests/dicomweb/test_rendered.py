"""WADO-RS rendered resources and thumbnails (PS3.18 10.4.1.1.3-4) over a real socket, by
dicomweb-client and requests; images read back with Pillow. The pixel values are chosen so that
the rendering can be computed here: a window maps known stored values to known grey levels (PNG,
lossless), MONOCHROME1 is inverted, the viewport crops and fits, frames are told apart."""

from __future__ import annotations

from io import BytesIO

import numpy as np
import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.filebase import DicomBytesIO

from tests.dicom.orthanc import ct_study
from tests.dicomweb.conftest import DicomWeb
from tests.dicomweb.test_dicomweb import call, split_multipart, stow
from tests.unit.imaging import synth


def ramp_ct(patient: str, *, monochrome1: bool = False, frames: int = 1) -> bytes:
    """A 64 x 32 CT whose stored values rise by 16 per column (0 to 1008; rescale -1024, so
    -1024 to -16 HU), frame n adding 1000 x (n - 1)."""
    ds = pydicom.dcmread(BytesIO(ct_study(patient, "20240105", 1)[0]))
    ds.Rows, ds.Columns = 32, 64
    column = (np.arange(64, dtype=np.int16) * 16)[None, :].repeat(32, axis=0)
    stack = np.stack([column + 1000 * n for n in range(frames)])
    ds.PixelData = (stack if frames > 1 else stack[0]).astype("<i2").tobytes()
    if frames > 1:
        ds.NumberOfFrames = frames
    if monochrome1:
        ds.PhotometricInterpretation = "MONOCHROME1"
    out = DicomBytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def urls(base: str, part10: bytes) -> tuple[str, str, str]:
    ds = pydicom.dcmread(BytesIO(part10))
    study = f"{base}/studies/{ds.StudyInstanceUID}"
    series = f"{study}/series/{ds.SeriesInstanceUID}"
    return study, series, f"{series}/instances/{ds.SOPInstanceUID}"


def grey(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(image_bytes)).convert("L"), dtype=np.int32)


async def test_ro23_an_instance_renders_with_the_window_asked_for(dicomweb: DicomWeb) -> None:
    part10 = ramp_ct("RND-1")
    assert (await call(stow, dicomweb.url, [part10])).status_code == 200
    ds = pydicom.dcmread(BytesIO(part10))
    client = DICOMwebClient(dicomweb.url)
    jpeg = await call(client.retrieve_instance_rendered, ds.StudyInstanceUID,
                      ds.SeriesInstanceUID, ds.SOPInstanceUID)  # fmt: skip
    image = Image.open(BytesIO(jpeg))
    assert image.format == "JPEG" and image.size == (64, 32)
    # a linear-exact window of -1024 + [0, 1024): column c (value 16c) at 16c/1024 * 255
    png = await call(
        client.retrieve_instance_rendered, ds.StudyInstanceUID, ds.SeriesInstanceUID,
        ds.SOPInstanceUID, media_types=("image/png",), params={"window": "-512,1024,linear-exact"},
    )  # fmt: skip
    levels = grey(png)[0]
    expected = np.clip(np.round(np.arange(64) * 16 / 1024 * 255), 0, 255)
    assert np.abs(levels - expected).max() <= 1
    # without a window: the instance's own range, darkest to brightest
    _, _, instance = urls(dicomweb.url, part10)
    plain = await call(requests.get, f"{instance}/rendered", headers={"Accept": "image/png"},
                       timeout=30)  # fmt: skip
    assert plain.headers["Content-Type"] == "image/png"
    row = grey(plain.content)[0]
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row) >= 0).all()


async def test_monochrome1_is_inverted_and_the_viewport_crops_and_fits(dicomweb: DicomWeb) -> None:
    part10 = ramp_ct("RND-2", monochrome1=True)
    assert (await call(stow, dicomweb.url, [part10])).status_code == 200
    _, _, instance = urls(dicomweb.url, part10)
    png = {"Accept": "image/png"}
    got = await call(requests.get, f"{instance}/rendered", headers=png, timeout=30)
    row = grey(got.content)[0]
    assert row[0] == 255 and row[-1] == 0
    # the left half (32 x 32) fitted in 16 x 64: 16 x 16
    cropped = await call(requests.get, f"{instance}/rendered?viewport=16,64,0,0,32,32",
                         headers=png, timeout=30)  # fmt: skip
    image = Image.open(BytesIO(cropped.content))
    assert image.size == (16, 16) and grey(cropped.content)[0][-1] > 100  # dark half not in it


async def test_frames_render_apart_and_thumbnails_are_small(dicomweb: DicomWeb) -> None:
    part10 = ramp_ct("RND-3", frames=3)
    assert (await call(stow, dicomweb.url, [part10])).status_code == 200
    ds = pydicom.dcmread(BytesIO(part10))
    client = DICOMwebClient(dicomweb.url)
    window = {"window": "500,1000,linear-exact"}  # 0-1000 HU: frame 2 reaches 984, frame 1 -16
    second = await call(
        client.retrieve_instance_frames_rendered, ds.StudyInstanceUID, ds.SeriesInstanceUID,
        ds.SOPInstanceUID, [2], media_types=("image/png",), params=window,
    )  # fmt: skip
    first_png = await call(
        client.retrieve_instance_frames_rendered, ds.StudyInstanceUID, ds.SeriesInstanceUID,
        ds.SOPInstanceUID, [1], media_types=("image/png",), params=window,
    )  # fmt: skip
    assert grey(first_png).max() == 0 and grey(second).max() > 200
    study, series, instance = urls(dicomweb.url, part10)
    both = await call(requests.get, f"{instance}/frames/1,3/rendered", timeout=30)
    assert len(split_multipart(both)) == 2
    missing = await call(requests.get, f"{instance}/frames/4/rendered", timeout=30)
    assert missing.status_code == 404 and "frame 4" in missing.text
    for url in (study, series, instance):
        thumb = await call(requests.get, f"{url}/thumbnail", timeout=30)
        assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/jpeg"
        assert Image.open(BytesIO(thumb.content)).size == (128, 64)
    sized = await call(requests.get, f"{study}/thumbnail?viewport=32,32", timeout=30)
    assert Image.open(BytesIO(sized.content)).size == (32, 16)


async def test_series_rendered_compressed_and_refusals(dicomweb: DicomWeb) -> None:
    files = ct_study("RND-4", "20240106", 2)
    rle = synth.bundled("MR_small_RLE.dcm").read_bytes()
    assert (await call(stow, dicomweb.url, [*files, rle])).status_code == 200
    ds = pydicom.dcmread(BytesIO(files[0]))
    client = DICOMwebClient(dicomweb.url)
    _, series, instance = urls(dicomweb.url, files[0])
    rendered = await call(requests.get, f"{series}/rendered", timeout=30)
    parts = split_multipart(rendered)
    assert len(parts) == 2 and all(Image.open(BytesIO(p)).format == "JPEG" for p in parts)
    assert await call(client.retrieve_series_rendered, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    mr = pydicom.dcmread(BytesIO(rle))
    decoded = await call(client.retrieve_instance_rendered, mr.StudyInstanceUID,
                         mr.SeriesInstanceUID, mr.SOPInstanceUID)  # fmt: skip
    assert Image.open(BytesIO(decoded)).size == (mr.Columns, mr.Rows)
    for query, said in [("quality=0", "quality"), ("viewport=10", "viewport"),
                        ("window=40,0", "window"), ("color=red", "'color'"),
                        ("viewport=8,8,500,500,10,10", "outside the image")]:  # fmt: skip
        bad = await call(requests.get, f"{instance}/rendered?{query}", timeout=30)
        assert bad.status_code == 400 and said in bad.text, (query, bad.text)
    tiff = await call(requests.get, f"{instance}/rendered", headers={"Accept": "image/tiff"},
                      timeout=30)  # fmt: skip
    assert tiff.status_code == 406 and "image/jpeg" in tiff.text
