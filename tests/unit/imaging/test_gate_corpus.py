"""RO-14 gate over every file bundled with pydicom that carries a SOP Class UID (152 files).

Each file has its expected outcome under the default policy (the lists below); a file added to or
removed from pydicom's bundle fails the inventory test so the table is kept whole. Only bundled
files are read (nothing is downloaded); reading warnings of the deliberately odd fixtures are
silenced while reading, not in the gate.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pydicom
import pytest

from fhir_server.imaging.gate import GatePolicy, assess
from tests.unit.imaging import synth

_REJECT = """
693_J2KI.dcm
GDCMJ2K_TextGBR.dcm
JPEG-lossy.dcm
JPEG2000-embedded-sequence-delimiter.dcm
JPEG2000.dcm
JPEGLSNearLossless_08.dcm
JPEGLSNearLossless_16.dcm
JPGExtended.dcm
SC_jpeg_no_color_transform.dcm
SC_jpeg_no_color_transform_2.dcm
SC_rgb_dcmtk_+eb+cr.dcm
SC_rgb_dcmtk_+eb+cy+n1.dcm
SC_rgb_dcmtk_+eb+cy+n2.dcm
SC_rgb_dcmtk_+eb+cy+np.dcm
SC_rgb_dcmtk_+eb+cy+s2.dcm
SC_rgb_dcmtk_+eb+cy+s4.dcm
SC_rgb_gdcm_KY.dcm
SC_rgb_jls_lossy_line.dcm
SC_rgb_jls_lossy_sample.dcm
SC_rgb_jpeg.dcm
SC_rgb_jpeg_app14_dcmd.dcm
SC_rgb_jpeg_dcmd.dcm
SC_rgb_jpeg_dcmtk.dcm
SC_rgb_jpeg_gdcm.dcm
SC_rgb_jpeg_lossy_gdcm.dcm
SC_rgb_rle.dcm
SC_rgb_rle_16bit.dcm
SC_rgb_rle_16bit_2frame.dcm
SC_rgb_rle_2frame.dcm
SC_rgb_rle_32bit.dcm
SC_rgb_rle_32bit_2frame.dcm
SC_rgb_small_odd.dcm
SC_rgb_small_odd_big_endian.dcm
SC_rgb_small_odd_jpeg.dcm
SC_ybr_full_422_uncompressed.dcm
examples_overlay.dcm
examples_ybr_color.dcm
image_dfl.dcm
"""

_REVIEW = """
ExplVR_BigEnd.dcm
ExplVR_BigEndNoMeta.dcm
ExplVR_LitEndNoMeta.dcm
MR_small.dcm
MR_small_RLE.dcm
MR_small_bigendian.dcm
MR_small_expb.dcm
MR_small_implicit.dcm
MR_small_jp2klossless.dcm
MR_small_jpeg_ls_lossless.dcm
MR_small_padded.dcm
MR_truncated.dcm
dicomdirtests/77654033/CR1/6154
dicomdirtests/77654033/CR2/6247
dicomdirtests/77654033/CR3/6278
dicomdirtests/98892003/MR700/4467
dicomdirtests/98892003/MR700/4528
dicomdirtests/98892003/MR700/4558
dicomdirtests/98892003/MR700/4588
dicomdirtests/98892003/MR700/4618
dicomdirtests/98892003/MR700/4648
dicomdirtests/98892003/MR700/4678
examples_jpeg2k.dcm
liver_1frame.dcm
liver_expb_1frame.dcm
reportsi.dcm
reportsi_with_empty_number_tags.dcm
rtstruct.dcm
test-SR.dcm
"""

_ACCEPT = """
CT_small.dcm
J2K_pixelrep_mismatch.dcm
badVR.dcm
dicomdirtests/77654033/CT2/17106
dicomdirtests/77654033/CT2/17136
dicomdirtests/77654033/CT2/17166
dicomdirtests/77654033/CT2/17196
dicomdirtests/98892001/CT2N/6293
dicomdirtests/98892001/CT2N/6924
dicomdirtests/98892001/CT5N/2062
dicomdirtests/98892001/CT5N/2392
dicomdirtests/98892001/CT5N/2693
dicomdirtests/98892001/CT5N/3023
dicomdirtests/98892001/CT5N/3353
dicomdirtests/98892003/MR1/15820
dicomdirtests/98892003/MR1/4919
dicomdirtests/98892003/MR1/5641
dicomdirtests/98892003/MR2/15970
dicomdirtests/98892003/MR2/4950
dicomdirtests/98892003/MR2/4981
dicomdirtests/98892003/MR2/5011
dicomdirtests/98892003/MR2/6273
dicomdirtests/98892003/MR2/6605
dicomdirtests/98892003/MR2/6935
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000000
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000001
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000002
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000003
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000004
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000005
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000006
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000007
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000008
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000009
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000A
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000B
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000C
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000D
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000E
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000F
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000G
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000H
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000I
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000J
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000K
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000L
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000M
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000N
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000O
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000P
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000Q
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000R
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000S
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000T
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000U
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000V
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000W
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000X
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000Y
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00000Z
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000010
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000011
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000012
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000013
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000014
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000015
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000016
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000017
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000018
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM000019
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001A
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001B
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001C
dicomdirtests/TINY_ALPHA/PT000000/ST000000/SE000000/IM00001D
examples_palette.dcm
examples_rgb_color.dcm
rtdose.dcm
rtdose_1frame.dcm
rtdose_expb.dcm
rtdose_expb_1frame.dcm
rtdose_rle.dcm
rtdose_rle_1frame.dcm
rtplan.dcm
rtplan_truncated.dcm
waveform_ecg.dcm
"""


def _expected() -> dict[str, str]:
    table: dict[str, str] = {}
    for outcome, names in (("reject", _REJECT), ("review", _REVIEW), ("accept", _ACCEPT)):
        table.update(dict.fromkeys(names.split(), outcome))
    return table


def _root() -> Path:
    return synth.bundled("CT_small.dcm").parent


def _read(path: Path) -> pydicom.Dataset | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:  # not DICOM at all (bundled non-DICOM fixtures)
            return None


def _transfer_syntax(ds: pydicom.Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""


def test_ro14_corpus_inventory_every_bundled_sop_instance_has_an_expected_verdict() -> None:
    found = set()
    for path in synth.bundled_files():
        ds = _read(path)
        if ds is not None and ds.get("SOPClassUID"):
            found.add(str(path.relative_to(_root())))
    assert found == set(_expected())
    assert len(found) == 152


@pytest.mark.parametrize(("name", "outcome"), sorted(_expected().items()))
def test_ro14_corpus_verdict(name: str, outcome: str) -> None:
    ds = _read(_root() / name)
    assert ds is not None
    verdict = assess(ds, _transfer_syntax(ds), GatePolicy.default())
    assert verdict.to_json()["outcome"] == outcome, [f.reason for f in verdict.findings]
    assert verdict.rejected == (outcome == "reject")
    assert verdict.review == (outcome == "review")
