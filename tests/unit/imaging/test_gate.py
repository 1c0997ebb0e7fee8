"""RO-14 image gate and RO-43.2 pre-checks: named bundled files and synthesised cases.

Real DICOM only: pydicom's bundled files and instances synthesised from them (synth.py), read
back from their Part-10 bytes exactly as the doors will read them.
"""

from __future__ import annotations

import io
import warnings

import pydicom
import pytest

from fhir_server.imaging import transfer_syntax as ts
from fhir_server.imaging.gate import Action, Finding, GatePolicy, Verdict, assess
from tests.unit.imaging import synth


def _header(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)


def _bundled(name: str) -> pydicom.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(synth.bundled(name), stop_before_pixels=True, force=True)


def _verdict(ds: pydicom.Dataset, policy: GatePolicy | None = None, syntax: str = "") -> Verdict:
    meta = getattr(ds, "file_meta", None)
    syntax = syntax or (str(meta.get("TransferSyntaxUID", "")) if meta is not None else "")
    return assess(ds, syntax, policy or GatePolicy.default())


def _finding(verdict: Verdict, check: str) -> Finding:
    return next(f for f in verdict.findings if f.check == check)


def _checks(verdict: Verdict) -> set[str]:
    return {f.check for f in verdict.findings}


# --- named bundled files (note §1.3) ------------------------------------------------------


def test_ro14_ct_small_original_primary_is_accepted() -> None:
    verdict = _verdict(_bundled("CT_small.dcm"))
    assert verdict.findings == ()
    assert not verdict.rejected and not verdict.review
    assert verdict.comment() == ""


def test_ro14_derived_image_type_mr_small_is_flagged_for_review() -> None:
    verdict = _verdict(_bundled("MR_small.dcm"))
    assert verdict.review and not verdict.rejected
    finding = _finding(verdict, "derived-image-type")
    assert finding.tag == "(0008,0008)" and finding.reference == "PS3.3 C.7.6.1.1.2"
    assert "DERIVED" in finding.reason and "SECONDARY" in finding.reason


def test_ro14_lossy_image_compression_693_j2ki_rejected_with_ratio() -> None:
    verdict = _verdict(_bundled("693_J2KI.dcm"))
    assert verdict.rejected
    finding = _finding(verdict, "lossy-image-compression")
    assert finding.action is Action.REJECT and finding.tag == "(0028,2110)"
    assert "ratio" in finding.reason and finding.reference == "PS3.3 C.7.6.1.1.5"
    assert verdict.comment().startswith("RO-14 reject: lossy-image-compression (0028,2110)")


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "JPEG-lossy.dcm", "JPGExtended.dcm"])
def test_ro14_conversion_type_wsd_secondary_capture_rejected(name: str) -> None:
    verdict = _verdict(_bundled(name))
    assert verdict.rejected
    finding = _finding(verdict, "conversion-type")
    assert "WSD" in finding.reason and "workstation" in finding.reason
    assert finding.reference == "PS3.3 C.8.6.1"
    assert "secondary-capture" in _checks(verdict)


@pytest.mark.parametrize("name", ["SC_rgb_rle.dcm", "SC_rgb_small_odd.dcm", "SC_rgb_jpeg_dcmd.dcm"])
def test_ro14_secondary_capture_sc_rgb_rejected(name: str) -> None:
    verdict = _verdict(_bundled(name))
    assert verdict.rejected
    assert _finding(verdict, "secondary-capture").tag == "(0008,0016)"
    assert verdict.comment() == "RO-14 reject: secondary-capture (0008,0016)"


def test_ro14_conversion_type_names_di_and_syn() -> None:
    assert (
        "DI (digital interface"
        in _finding(_verdict(_bundled("SC_rgb_jpeg_dcmd.dcm")), "conversion-type").reason
    )
    assert (
        "SYN (synthetic image)"
        in _finding(_verdict(_bundled("SC_rgb_rle.dcm")), "conversion-type").reason
    )


@pytest.mark.parametrize("name", ["JPEGLSNearLossless_08.dcm", "JPEGLSNearLossless_16.dcm"])
def test_ro14_lossy_transfer_syntax_jpeg_ls_near_lossless_rejected(name: str) -> None:
    verdict = _verdict(_bundled(name))
    finding = _finding(verdict, "lossy-transfer-syntax")
    assert finding.action is Action.REJECT
    assert "1.2.840.10008.1.2.4.81" in finding.reason and "JPEG-LS" in finding.reason


def test_ro14_lossy_image_compression_examples_ybr_color_rejected() -> None:
    verdict = _verdict(_bundled("examples_ybr_color.dcm"))
    assert {"lossy-image-compression", "lossy-transfer-syntax"} <= _checks(verdict)
    assert verdict.rejected


def test_ro14_derivation_description_resampled_examples_overlay_rejected() -> None:
    verdict = _verdict(_bundled("examples_overlay.dcm"))
    assert verdict.rejected
    finding = _finding(verdict, "derivation-description")
    assert "RESAMPLED" in finding.reason and finding.tag == "(0008,2111)"


def test_ro14_compressed_copy_examples_jpeg2k_review() -> None:
    verdict = _verdict(_bundled("examples_jpeg2k.dcm"))
    assert verdict.review and not verdict.rejected
    assert "compressed-copy" in _checks(verdict)


@pytest.mark.parametrize(
    "name", ["examples_palette.dcm", "examples_rgb_color.dcm", "J2K_pixelrep_mismatch.dcm"]
)
def test_ro14_original_images_accepted(name: str) -> None:
    assert _verdict(_bundled(name)).findings == ()


def test_ro14_derived_image_type_dicomdir_cr_and_mip_review() -> None:
    for name in ("dicomdirtests/77654033/CR1/6154", "dicomdirtests/98892003/MR700/4467"):
        verdict = _verdict(_bundled(name))
        assert verdict.review and _checks(verdict) == {"derived-image-type"}


@pytest.mark.parametrize("name", ["test-SR.dcm", "rtplan.dcm", "waveform_ecg.dcm", "rtstruct.dcm"])
def test_ro14_non_image_objects_are_not_refused(name: str) -> None:
    verdict = _verdict(_bundled(name))
    assert not verdict.rejected
    assert not {"missing-image-type", "derived-image-type"} & _checks(verdict)


# --- synthesised cases (synth.py) ---------------------------------------------------------


@pytest.mark.parametrize(("name", "outcome"), [(n, o) for n, (_, o) in synth.BUILDERS.items()])
def test_ro14_synthesised_outcomes(name: str, outcome: str) -> None:
    verdict = _verdict(_header(synth.build(name)))
    assert verdict.to_json()["outcome"] == outcome, [f.reason for f in verdict.findings]


@pytest.mark.parametrize("name", ["dx", "mg", "bmd"])
def test_ro14_original_projection_and_dxa_accepted(name: str) -> None:
    ds = _header(synth.build(name))
    assert ds.Modality == name.upper() and "ImagerPixelSpacing" in ds
    assert _verdict(ds).findings == ()


def test_ro14_scanned_film_rejected_for_conversion_type_and_digitiser() -> None:
    verdict = _verdict(_header(synth.scanned_film()))
    film = _finding(verdict, "scanned-film")
    assert film.tag == "(0018,2010)" and "Nominal" in film.reason
    assert film.reference == "PS3.3 C.8.6.2"
    assert "DF (digitized film)" in _finding(verdict, "conversion-type").reason
    assert verdict.comment() == "RO-14 reject: secondary-capture (0008,0016)"


def test_ro14_scanned_film_rotation_without_spacing_rejected() -> None:
    ds = _header(synth.ct())
    ds.RotationOfScannedFilm = "90"
    finding = _finding(_verdict(ds), "scanned-film")
    assert finding.tag == "(0018,2030)" and finding.action is Action.REJECT


def test_ro14_conversion_type_digitised_video_rejected() -> None:
    verdict = _verdict(_header(synth.digitised_video()))
    assert "DV (digitized video)" in _finding(verdict, "conversion-type").reason


def test_ro14_lossy_derivation_code_113040_rejected() -> None:
    verdict = _verdict(_header(synth.lossy_derivation()))
    assert _checks(verdict) == {"lossy-derivation-code"} and verdict.rejected
    assert verdict.comment() == "RO-14 reject: lossy-derivation-code (0008,9215)"


def test_ro14_lossy_source_image_121330_rejected() -> None:
    verdict = _verdict(_header(synth.lossy_predecessor()))
    assert _checks(verdict) == {"lossy-source-image"} and verdict.rejected
    assert "Lossy compressed predecessor" in verdict.findings[0].reason


def test_ro14_burned_in_annotation_us_review() -> None:
    verdict = _verdict(_header(synth.burned_in_us()))
    assert _checks(verdict) == {"burned-in-annotation"} and verdict.review


@pytest.mark.parametrize("name", ["pet", "nm"])
def test_ro14_second_opinion_modality_pt_nm_review(name: str) -> None:
    verdict = _verdict(_header(synth.build(name)))
    assert _checks(verdict) == {"second-opinion-modality"} and verdict.review
    assert "RO-12" in verdict.findings[0].reason


def test_ro14_derived_image_type_enhanced_frame_type_review() -> None:
    verdict = _verdict(_header(synth.enhanced_derived()))
    finding = _finding(verdict, "derived-image-type")
    assert finding.tag == "(0008,9007)" and finding.reference == "PS3.3 C.8.16.1"
    assert "mpr-derivation-code" in _checks(verdict)


def test_ro14_lossy_derivation_code_in_per_frame_group_rejected() -> None:
    verdict = _verdict(_header(synth.enhanced_lossy_frame()))
    assert _checks(verdict) == {"lossy-derivation-code"} and verdict.rejected


def test_ro14_non_primary_modality_and_missing_image_type_review() -> None:
    ds = _header(synth.ct())
    ds.Modality = "XC"
    del ds.ImageType
    verdict = _verdict(ds)
    assert _checks(verdict) == {"non-primary-modality", "missing-image-type"}
    assert "External-camera" in _finding(verdict, "non-primary-modality").reason


def test_ro14_modifying_equipment_review() -> None:
    ds = _header(synth.ct())
    item, code = pydicom.Dataset(), pydicom.Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "109104", "DCM"
    item.PurposeOfReferenceCodeSequence = [code]
    ds.ContributingEquipmentSequence = [item]
    assert _checks(_verdict(ds)) == {"modifying-equipment"}


@pytest.mark.parametrize(
    ("syntax", "lossy_flag", "checks"),
    [
        ("1.2.840.10008.1.2.4.91", None, {"possibly-lossy-transfer-syntax"}),
        ("1.2.840.10008.1.2.4.203", None, {"possibly-lossy-transfer-syntax"}),
        ("1.2.840.10008.1.2.4.91", "00", set()),
        ("1.2.840.10008.1.2.4.90", None, set()),
        ("1.2.840.10008.1.2.4.50", None, {"lossy-transfer-syntax"}),
        ("1.2.840.10008.1.2.4.102", None, {"lossy-transfer-syntax"}),
    ],
)
def test_ro14_transfer_syntax_fidelity(
    syntax: str, lossy_flag: str | None, checks: set[str]
) -> None:
    ds = _header(synth.ct())
    if lossy_flag is not None:
        ds.LossyImageCompression = lossy_flag
    assert _checks(_verdict(ds, syntax=syntax)) == checks


def test_ro14_transfer_syntax_table() -> None:
    assert ts.fidelity("1.2.840.10008.1.2.1") is ts.Fidelity.LOSSLESS
    assert ts.fidelity("1.2.840.10008.1.2.4.51") is ts.Fidelity.LOSSY
    assert ts.fidelity("1.2.840.10008.1.2.4.94") is ts.Fidelity.NO_PIXELS
    assert ts.fidelity("1.2.3.4") is ts.Fidelity.UNKNOWN
    assert ts.name("1.2.840.10008.1.2.4.50") == "JPEG Baseline (Process 1)"


def test_ro43_2_missing_study_date_review() -> None:
    verdict = _verdict(_header(synth.missing_study_date()))
    finding = _finding(verdict, "missing-study-date")
    assert finding.tag == "(0008,0020)" and finding.action is Action.REVIEW
    assert verdict.comment() == "RO-43.2 review: missing-study-date (0008,0020)"


def test_ro43_2_missing_patient_identity_review() -> None:
    verdict = _verdict(_header(synth.missing_patient_identity()))
    finding = _finding(verdict, "missing-patient-identity")
    assert "PatientID (0010,0020)" in finding.reason and "PatientName (0010,0010)" in finding.reason


# --- policy and verdict -------------------------------------------------------------------


def test_ro14_policy_parse_overrides_defaults() -> None:
    policy = GatePolicy.parse("secondary-capture=review, burned-in-annotation=ACCEPT")
    assert policy.actions["secondary-capture"] is Action.REVIEW
    assert policy.actions["burned-in-annotation"] is Action.ACCEPT
    assert policy.actions["conversion-type"] is Action.REJECT
    assert GatePolicy.parse("") == GatePolicy.default()


def test_ro14_policy_parse_unknown_check_and_action() -> None:
    with pytest.raises(ValueError, match="unknown check 'scanned-films'"):
        GatePolicy.parse("scanned-films=review")
    with pytest.raises(ValueError, match="unknown action 'block' for check 'conversion-type'"):
        GatePolicy.parse("conversion-type=block")
    with pytest.raises(ValueError, match="expected check=action"):
        GatePolicy.parse("conversion-type")


def test_ro14_policy_accept_turns_a_check_off() -> None:
    data = synth.burned_in_us()
    assert _verdict(_header(data)).review
    off = GatePolicy.parse("burned-in-annotation=accept")
    assert _verdict(_header(data), off).findings == ()


def test_ro14_policy_can_soften_a_reject_to_review() -> None:
    policy = GatePolicy.parse("secondary-capture=review,conversion-type=review,scanned-film=review")
    verdict = _verdict(_header(synth.scanned_film()), policy)
    assert verdict.review and not verdict.rejected


def test_ro14_policy_checks_catalogue() -> None:
    checks = GatePolicy.checks()
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)) == 21
    assert all(c.reference.startswith("PS3.") and c.tag.startswith("(") for c in checks)
    assert {c.id for c in checks if c.action is Action.REJECT} == {
        "secondary-capture", "conversion-type", "scanned-film", "lossy-image-compression",
        "lossy-transfer-syntax", "lossy-derivation-code", "lossy-source-image",
        "derivation-description",
    }  # fmt: skip


def test_ro14_verdict_json_round_trip_and_comment_length() -> None:
    verdict = _verdict(_bundled("JPGExtended.dcm"))
    data = verdict.to_json()
    assert data["outcome"] == "reject"
    assert Verdict.from_json(data) == verdict
    assert len(verdict.comment()) <= 64 and verdict.comment().isascii()
    long = Verdict((Finding("x" * 80, Action.REJECT, "(0008,0064)", "r", "PS3.3"),))
    assert len(long.comment()) == 64


def test_ro14_encapsulated_document_review_not_refused() -> None:
    ds = _header(synth.ct())
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"  # Encapsulated PDF Storage
    ds.Modality = "DOC"
    verdict = _verdict(ds)
    assert not verdict.rejected
    assert {"encapsulated-document", "non-primary-modality"} <= _checks(verdict)


def test_ro14_missing_imager_pixel_spacing_on_projection_image_review() -> None:
    ds = _header(synth.dx())
    del ds.ImagerPixelSpacing
    verdict = _verdict(ds)
    assert _checks(verdict) == {"missing-imager-pixel-spacing"} and verdict.review
    assert "DX projection image" in verdict.findings[0].reason
