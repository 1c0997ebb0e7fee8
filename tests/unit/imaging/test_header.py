"""The header built from the Part-10 walk is the one ``dcmread(stop_before_pixels=True)`` reads.

Checked element by element (raw tuples and converted values, sequences included) on every file
bundled with pydicom that the walk accepts, on synthesised big-endian, implicit-VR, deflated and
undefined-length-sequence instances, and on the cases where the header is left to dcmread.
``prepare`` gives the same outcome both ways.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from fhir_server.imaging import header, instances, part10
from fhir_server.imaging.attributes import header_json
from fhir_server.imaging.gate import GatePolicy, assess
from fhir_server.imaging.raw_header import RawHeader
from tests.unit.imaging import synth


def _reference(data: bytes) -> pydicom.FileDataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)


def _walked(data: bytes) -> part10.Layout | None:
    try:
        return part10.check(data)
    except part10.Incomplete:
        return None


def _same_elements(fast: Dataset, reference: Dataset, *, converted: bool = True) -> None:
    """Same elements, same values; with ``converted``, also the same ones still raw (dcmread
    converts a few file meta elements while reading: those may differ)."""
    assert list(fast.keys()) == list(reference.keys())
    for tag in list(reference.keys()):  # a Dataset iterates its elements, not its tags
        mine, theirs = fast.get_item(tag), reference.get_item(tag)
        if not converted and type(mine) is not type(theirs):
            continue
        assert type(mine) is type(theirs), tag
        if isinstance(theirs, RawDataElement):
            assert tuple(mine) == tuple(theirs), tag
        else:
            assert isinstance(mine, DataElement)
            assert (mine.VR, mine.is_undefined_length) == (theirs.VR, theirs.is_undefined_length)
    assert fast == reference  # every value converted, sequences item by item
    assert fast.original_encoding == reference.original_encoding


def _corpus() -> list[Path]:
    return [p for p in synth.bundled_files() if p.suffix == ".dcm" or not p.suffix]


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_header_is_what_dcmread_reads(path: Path) -> None:
    data = path.read_bytes()
    layout = _walked(data)
    if layout is None:
        return  # refused by the walk before any header is read
    found = header.read(layout)
    if found is None:
        return  # read by dcmread itself
    reference = _reference(data)
    with warnings.catch_warnings():  # the deliberately odd fixtures warn when values are read
        warnings.simplefilter("ignore")
        _same_elements(found.meta, reference.file_meta, converted=False)
        _same_elements(found.dataset, reference)
        syntax = layout.transfer_syntax
        assert assess(found.dataset, syntax, GatePolicy.default()) == assess(
            reference, syntax, GatePolicy.default()
        )
        assert header_json(found.dataset) == header_json(reference)


def test_most_bundled_files_are_read_from_the_walk() -> None:
    read = [p for p in _corpus() if (layout := _walked(p.read_bytes())) and header.read(layout)]
    assert len(read) > 100


def _with(ds: Dataset, syntax: str, *, undefined: bool = False) -> bytes:
    ds = ds.copy()
    meta = FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "113072", "DCM", "MPR"
    inner = Dataset()
    inner.ReferencedSOPClassUID, inner.ReferencedSOPInstanceUID = (
        "1.2.840.10008.5.1.4.1.1.2",
        synth.uid("ref"),
    )
    inner.PurposeOfReferenceCodeSequence = Sequence([item])
    ds.DerivationCodeSequence = Sequence([item])
    ds.SourceImageSequence = Sequence([inner])
    for keyword in ("DerivationCodeSequence", "SourceImageSequence"):
        ds[keyword].is_undefined_length = undefined
        for entry in ds[keyword].value:
            entry.is_undefined_length_sequence_item = undefined
    little = syntax != ExplicitVRBigEndian
    implicit = syntax == ImplicitVRLittleEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(
        buffer, ds, implicit_vr=implicit, little_endian=little, force_encoding=True
    )  # fmt: skip
    return buffer.getvalue()


SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian]


@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined-length"])
@pytest.mark.parametrize("syntax", SYNTAXES, ids=["explicit-le", "implicit-le", "explicit-be"])
def test_sequences_and_encodings(syntax: str, undefined: bool) -> None:
    base = pydicom.dcmread(io.BytesIO(synth.ct()))
    data = _with(base, syntax, undefined=undefined)
    layout = part10.check(data)
    found = header.read(layout)
    assert found is not None
    reference = _reference(data)
    _same_elements(found.dataset, reference)
    assert found.dataset.SourceImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue == (
        "113072"
    )
    policy = GatePolicy.default()
    assert assess(found.dataset, syntax, policy) == assess(reference, syntax, policy)
    assert header_json(found.dataset) == header_json(reference)


def test_deflated_is_left_to_dcmread_and_prepared_alike() -> None:
    base = pydicom.dcmread(io.BytesIO(synth.ct()))
    base.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    base.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    assert header.read(part10.check(data)) is None
    prepared = instances.prepare(data, GatePolicy.default())
    assert prepared.sop_instance == base.SOPInstanceUID
    assert prepared.attributes == header_json(_reference(data))


def test_unknown_vr_is_left_to_dcmread() -> None:
    data = bytearray(synth.ct())
    layout = part10.check(bytes(data))
    _, vr, length, offset = layout.elements[1]
    assert vr and length < 0x10000
    data[offset - 4 : offset - 2] = b"XZ"  # a VR pydicom does not know
    odd = part10.check(bytes(data))
    assert header.read(odd) is None


def test_an_unknown_vr_in_a_public_element_is_refused_naming_the_element() -> None:
    """Not an exception out of prepare() (it was NotImplementedError from pydicom): a DICOM
    failure status a sender can read, the element and the VR in the Error Comment."""
    data = bytearray(synth.ct())
    layout = part10.check(bytes(data))
    tag, vr, length, offset = layout.elements[1]
    assert vr and length < 0x10000 and not tag >> 16 & 1
    data[offset - 4 : offset - 2] = b"XZ"
    with pytest.raises(instances.Refused) as refused:
        instances.prepare(bytes(data), GatePolicy.default())
    assert refused.value.status == instances.CANNOT_UNDERSTAND
    where = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
    assert refused.value.comment == f"Unknown VR 'XZ' in {where}"


@pytest.mark.parametrize("name", ["Doe\\\\Roe", "\\Roe", "Doe\\"])
def test_a_person_name_with_an_empty_value_among_several_is_indexed(name: str) -> None:
    """PS3.18 F.2.5: an empty value of a multi-valued attribute is null in the JSON. pydicom's
    JSON writer raised IndexError on such a Patient's Name (read by the gate, so converted)."""
    ds = synth._base("ct", "1.2.840.10008.5.1.4.1.1.2", "CT")
    ds.PatientName = name
    prepared = instances.prepare(synth.to_bytes(ds), GatePolicy.default())
    expected = [{"Alphabetic": part} if part else None for part in name.split("\\")]
    assert prepared.attributes["00100010"] == {"vr": "PN", "Value": expected}


def _outcome(data: bytes) -> object:
    try:
        return instances.prepare(data, GatePolicy.default())
    except instances.Refused as refused:
        return (refused.status, refused.comment, refused.detail, refused.uids, refused.verdict)


def test_prepare_outcome_is_the_same_as_with_dcmread(monkeypatch: pytest.MonkeyPatch) -> None:
    for make in (synth.ct, synth.dx, synth.scanned_film, synth.lossy_derivation, synth.nm):
        data = make()
        fast = _outcome(data)
        # neither the raw header nor the header built from raw elements: dcmread alone
        monkeypatch.setattr(RawHeader, "of", classmethod(lambda cls, layout: None))
        monkeypatch.setattr(header, "read", lambda layout: None)
        slow = _outcome(data)
        monkeypatch.undo()
        assert fast == slow


@pytest.mark.parametrize("cut", [140, 200, 400, 1000, -2000, -9, -1])
def test_cut_files_are_refused_with_the_place(cut: int) -> None:
    data = synth.ct()
    with pytest.raises(instances.Refused) as refused:
        instances.prepare(data[:cut], GatePolicy.default())
    assert refused.value.status == instances.CANNOT_UNDERSTAND
    assert refused.value.comment.startswith("Incomplete DICOM: ")
    assert "byte" in refused.value.detail


def test_undefined_length_sequence_without_delimiter_is_refused() -> None:
    base = pydicom.dcmread(io.BytesIO(synth.ct()))
    data = _with(base, ExplicitVRLittleEndian, undefined=True)
    layout = part10.check(data)
    _, _, _, pixel_offset = next(e for e in layout.elements if e[0] == 0x7FE00010)
    start = data.index(b"\xfe\xff\xdd\xe0")  # the first sequence delimiter
    assert start < pixel_offset
    broken = data[:start] + b"\xfe\xff\x00\xe0" + data[start + 4 :]
    with pytest.raises(part10.Incomplete):
        part10.check(broken)


def test_a_file_meta_without_0002_0003_is_read_from_the_walk() -> None:
    base = pydicom.dcmread(io.BytesIO(synth.ct()))
    del base.file_meta.MediaStorageSOPInstanceUID
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, base, enforce_file_format=False)
    data = buffer.getvalue()
    layout = part10.check(data)
    found = header.read(layout)
    assert found is not None and "MediaStorageSOPInstanceUID" not in found.meta
    _same_elements(found.dataset, _reference(data))
    assert instances.prepare(data, GatePolicy.default()).sop_instance == base.SOPInstanceUID


def test_the_claimed_instance_is_read_from_the_file_meta_alone() -> None:
    data = synth.ct()
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    assert part10.claimed_instance(data) == str(ds.file_meta.MediaStorageSOPInstanceUID)
    assert part10.claimed_instance(data[:150]) is None  # cut inside the file meta
    assert part10.claimed_instance(b"\0" * 128 + b"NOPE" + data[132:]) is None
    without = pydicom.dcmread(io.BytesIO(data))
    del without.file_meta.MediaStorageSOPInstanceUID
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, without, enforce_file_format=False)
    assert part10.claimed_instance(buffer.getvalue()) is None


def test_a_claimed_deflated_transfer_syntax_is_read_from_the_file_meta_alone() -> None:
    base = pydicom.dcmread(io.BytesIO(synth.ct()))
    assert not part10.claimed_deflated(synth.ct())
    base.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    base.save_as(buffer, enforce_file_format=True)
    assert part10.claimed_deflated(buffer.getvalue())
    assert not part10.claimed_deflated(b"not DICOM")


def test_the_walk_knows_the_vrs_pydicom_knows() -> None:
    # part10 stays free of pydicom; its list of VRs must not drift from pydicom's
    assert {vr for vr in header.KNOWN_VRS if len(vr) == 2} == part10.KNOWN_VRS
