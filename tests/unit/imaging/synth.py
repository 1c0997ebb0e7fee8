"""Synthesised DICOM instances for the RO-14 gate and the DICOM doors' tests (no pytest import).

Each builder starts from a file bundled with pydicom (nothing downloaded), changes attributes and
keeps the pixel data, and returns Part-10 bytes. Deterministic: the same name, study and instance
number always give the same UIDs. Usage from any test::

    from tests.unit.imaging import synth
    data = synth.scanned_film()                  # bytes: SC + DF + Nominal Scanned Pixel Spacing
    synth.write(tmp_path / "film.dcm", data)     # a file for storescu
    data = synth.build("dx", study_uid=uid, instance=3)
    synth.bundled("CT_small.dcm")                # path of a bundled file

``BUILDERS`` maps each name to its builder and the gate outcome expected under the default policy.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
from pydicom.data.data_manager import DATA_ROOT
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

SC = "1.2.840.10008.5.1.4.1.1.7"
DX_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
MG_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
PET = "1.2.840.10008.5.1.4.1.1.128"
NM = "1.2.840.10008.5.1.4.1.1.20"
US = "1.2.840.10008.5.1.4.1.1.6.1"
ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"


def bundled(name: str) -> Path:
    """The path of a file bundled with pydicom (test_files/<name>); never downloads."""
    path = Path(DATA_ROOT) / "test_files" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not bundled with pydicom")
    return path


def bundled_files() -> list[Path]:
    """Every bundled DICOM test file (recursively), sorted."""
    root = Path(DATA_ROOT) / "test_files"
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc"))


def uid(*parts: object) -> str:
    """A deterministic UID from its parts."""
    return str(generate_uid(entropy_srcs=[str(p) for p in parts]))


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write(path: Path | str, data: bytes) -> Path:
    target = Path(path)
    target.write_bytes(data)
    return target


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _base(
    name: str,
    sop_class: str,
    modality: str,
    *,
    study_uid: str | None = None,
    instance: int = 1,
    source: str = "CT_small.dcm",
) -> Dataset:
    ds = pydicom.dcmread(bundled(source))
    study = study_uid or uid("synth-study", name)
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = uid("synth-series", study, name)
    ds.SOPInstanceUID = uid("synth-instance", study, name, instance)
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.InstanceNumber = instance
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientID = ds.get("PatientID") or "SYNTH-1"
    ds.PatientName = ds.get("PatientName") or "Synth^Patient"
    ds.StudyDate = ds.get("StudyDate") or "20240101"
    ds.file_meta.MediaStorageSOPClassUID = pydicom.uid.UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def ct(**kw: Any) -> bytes:
    """CT ORIGINAL\\PRIMARY (CT_small with new UIDs): accepted."""
    return to_bytes(_base("ct", "1.2.840.10008.5.1.4.1.1.2", "CT", **kw))


def dx(**kw: Any) -> bytes:
    """DX For Presentation, ORIGINAL\\PRIMARY, with Imager Pixel Spacing: accepted."""
    ds = _base("dx", DX_PRESENTATION, "DX", **kw)
    ds.ImagerPixelSpacing = [0.139, 0.139]
    ds.PresentationIntentType = "FOR PRESENTATION"
    return to_bytes(ds)


def mg(**kw: Any) -> bytes:
    """Digital mammography For Presentation, ORIGINAL\\PRIMARY: accepted."""
    ds = _base("mg", MG_PRESENTATION, "MG", **kw)
    ds.ImagerPixelSpacing = [0.085, 0.085]
    ds.LossyImageCompression = "00"
    return to_bytes(ds)


def bmd(**kw: Any) -> bytes:
    """Bone densitometry (DXA) as DX For Presentation with modality BMD: accepted."""
    ds = _base("bmd", DX_PRESENTATION, "BMD", **kw)
    ds.ImagerPixelSpacing = [0.5, 0.5]
    return to_bytes(ds)


def pet(**kw: Any) -> bytes:
    """PET image (PT): second opinion only, flagged for review."""
    return to_bytes(_base("pet", PET, "PT", **kw))


def nm(**kw: Any) -> bytes:
    """Nuclear medicine image (NM): second opinion only, flagged for review."""
    return to_bytes(_base("nm", NM, "NM", **kw))


def scanned_film(**kw: Any) -> bytes:
    """Digitised film: SC SOP class, Conversion Type DF, Nominal Scanned Pixel Spacing: rejected."""
    ds = _base("scanned-film", SC, "OT", **kw)
    ds.ConversionType = "DF"
    ds.NominalScannedPixelSpacing = [0.2, 0.2]
    ds.ImageType = ["DERIVED", "SECONDARY"]
    return to_bytes(ds)


def digitised_video(**kw: Any) -> bytes:
    """A frame grabbed from video: SC SOP class, Conversion Type DV, modality US: rejected."""
    ds = _base("digitised-video", SC, "US", **kw)
    ds.ConversionType = "DV"
    return to_bytes(ds)


def lossy_derivation(**kw: Any) -> bytes:
    """CT whose Derivation Code Sequence says 113040 Lossy Compression: rejected."""
    ds = _base("lossy-derivation", "1.2.840.10008.5.1.4.1.1.2", "CT", **kw)
    ds.DerivationCodeSequence = Sequence([_code("113040", "Lossy Compression")])
    return to_bytes(ds)


def lossy_predecessor(**kw: Any) -> bytes:
    """CT with a Source Image whose purpose is 121330 Lossy compressed predecessor: rejected."""
    ds = _base("lossy-predecessor", "1.2.840.10008.5.1.4.1.1.2", "CT", **kw)
    source = Dataset()
    source.ReferencedSOPClassUID = ds.SOPClassUID
    source.ReferencedSOPInstanceUID = uid("predecessor", ds.SOPInstanceUID)
    source.PurposeOfReferenceCodeSequence = Sequence(
        [_code("121330", "Lossy compressed predecessor")]
    )
    ds.SourceImageSequence = Sequence([source])
    return to_bytes(ds)


def burned_in_us(**kw: Any) -> bytes:
    """Ultrasound image with Burned In Annotation YES: flagged for review."""
    ds = _base("burned-in-us", US, "US", **kw)
    ds.BurnedInAnnotation = "YES"
    return to_bytes(ds)


def missing_study_date(**kw: Any) -> bytes:
    """CT with an empty Study Date (RO-43.2): flagged for review."""
    ds = _base("missing-study-date", "1.2.840.10008.5.1.4.1.1.2", "CT", **kw)
    ds.StudyDate = ""
    return to_bytes(ds)


def missing_patient_identity(**kw: Any) -> bytes:
    """CT without Patient ID and Patient's Name (RO-43.2): flagged for review."""
    ds = _base("missing-patient-identity", "1.2.840.10008.5.1.4.1.1.2", "CT", **kw)
    ds.PatientID = ""
    del ds.PatientName
    return to_bytes(ds)


def enhanced_derived(**kw: Any) -> bytes:
    """Enhanced CT, Image Type ORIGINAL but one frame's Frame Type DERIVED: flagged for review."""
    ds = _base("enhanced-derived", ENHANCED_CT, "CT", **kw)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    ds.NumberOfFrames = 1
    shared, frame = Dataset(), Dataset()
    shared_type, frame_type = Dataset(), Dataset()
    shared_type.FrameType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]
    frame_type.FrameType = ["DERIVED", "PRIMARY", "AXIAL", "NONE"]
    shared.CTImageFrameTypeSequence = Sequence([shared_type])
    frame.CTImageFrameTypeSequence = Sequence([frame_type])
    derivation = Dataset()
    derivation.DerivationCodeSequence = Sequence([_code("113072", "Multiplanar reformatting")])
    frame.DerivationImageSequence = Sequence([derivation])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    return to_bytes(ds)


def enhanced_lossy_frame(**kw: Any) -> bytes:
    """Enhanced CT whose per-frame Derivation Image says 113040 Lossy Compression: rejected."""
    ds = _base("enhanced-lossy-frame", ENHANCED_CT, "CT", **kw)
    ds.NumberOfFrames = 1
    frame, derivation = Dataset(), Dataset()
    derivation.DerivationCodeSequence = Sequence([_code("113040", "Lossy Compression")])
    frame.DerivationImageSequence = Sequence([derivation])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    return to_bytes(ds)


BUILDERS: dict[str, tuple[Callable[..., bytes], str]] = {
    "ct": (ct, "accept"),
    "dx": (dx, "accept"),
    "mg": (mg, "accept"),
    "bmd": (bmd, "accept"),
    "pet": (pet, "review"),
    "nm": (nm, "review"),
    "scanned-film": (scanned_film, "reject"),
    "digitised-video": (digitised_video, "reject"),
    "lossy-derivation": (lossy_derivation, "reject"),
    "lossy-predecessor": (lossy_predecessor, "reject"),
    "burned-in-us": (burned_in_us, "review"),
    "missing-study-date": (missing_study_date, "review"),
    "missing-patient-identity": (missing_patient_identity, "review"),
    "enhanced-derived": (enhanced_derived, "review"),
    "enhanced-lossy-frame": (enhanced_lossy_frame, "reject"),
}


def build(name: str, **kw: Any) -> bytes:
    """Part-10 bytes of the named synthetic instance (see BUILDERS)."""
    return BUILDERS[name][0](**kw)
