"""Instances for the ``prepare`` equivalence test, and the outcome of ``prepare`` as JSON text.

Every file bundled with pydicom, the synthesised gate cases of :mod:`tests.unit.imaging.synth`
in every uncompressed encoding, and CT variants whose attributes sit on the edges of value
decoding: leading and trailing spaces, empty values and components, person names with
component groups, Latin-1 and UTF-8 text, unknown character sets, numbers written as integers,
malformed numbers and UIDs, VR UN, long values, file meta that disagrees. The golden outcomes in
``golden/prepare.json.gz`` were written by the implementation before issue 9 (``python -m
tests.unit.imaging.prepare_cases`` writes them again from the current code). Changed on purpose
since, and only these: ``ct:name-empty-part:*`` (a Patient's Name with an empty value among
several raised IndexError from pydicom's JSON writer; now indexed, the empty value null) and
``edited:unknown-vr-public`` (NotImplementedError from pydicom; now refused, 0xC000, the VR and
the element in the comment).
"""

from __future__ import annotations

import gzip
import io
import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from fhir_server.imaging import instances, part10
from fhir_server.imaging.gate import GatePolicy
from tests.unit.imaging import synth

GOLDEN = Path(__file__).parent / "golden" / "prepare.json.gz"
SYNTAXES = {
    "explicit-le": ExplicitVRLittleEndian,
    "implicit-le": ImplicitVRLittleEndian,
    "explicit-be": ExplicitVRBigEndian,
}


def outcome(data: bytes) -> str:
    """What ``prepare`` makes of ``data`` under the default policy, as JSON text: the Prepared
    fields, or the refusal (status, comment, detail, UIDs, verdict), or the exception raised.
    JSON text keeps what ``==`` would hide: 120 against 120.0, key order."""
    result: dict[str, Any]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            found = instances.prepare(data, GatePolicy.default())
        except instances.Refused as refused:
            verdict = refused.verdict.to_json() if refused.verdict else None
            result = {"refused": [refused.status, refused.comment, refused.detail,
                                  refused.uids, verdict]}  # fmt: skip
        except Exception as exc:  # the outcome is what is compared
            result = {"raised": [type(exc).__name__, str(exc)]}
        else:
            result = {
                "prepared": [found.sop_class, found.sop_instance, found.study_uid,
                             found.series_uid, found.transfer_syntax],
                "verdict": found.verdict.to_json(),
                "attributes": found.attributes,
            }  # fmt: skip
    return json.dumps(result, ensure_ascii=False)


def encode(ds: Dataset, syntax: str) -> bytes:
    """``ds`` as Part-10 bytes in ``syntax`` (deflated too), with a 128-byte preamble."""
    ds = ds.copy()
    meta = FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    buffer = io.BytesIO()
    if syntax == DeflatedExplicitVRLittleEndian:
        ds.save_as(buffer, enforce_file_format=True)
    else:
        little, implicit = syntax != ExplicitVRBigEndian, syntax == ImplicitVRLittleEndian
        pydicom.dcmwrite(buffer, ds, implicit_vr=implicit, little_endian=little,
                         force_encoding=True)  # fmt: skip
    return buffer.getvalue()


def _ct() -> Dataset:
    return pydicom.dcmread(io.BytesIO(synth.ct()))


def _set(keyword: str, value: Any) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        setattr(ds, keyword, value)

    return change


def _raw(tag: int, vr: str, value: bytes) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        key = BaseTag(tag)  # raw: written as it is, however malformed
        ds._dict[key] = RawDataElement(key, vr, len(value), value, 0, False, True)

    return change


def _meta(keyword: str, value: str) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        setattr(ds.file_meta, keyword, value)

    return change


def _all(*changes: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        for one in changes:
            one(ds)

    return change


def _delete(keyword: str) -> Callable[[Dataset], None]:
    def change(ds: Dataset) -> None:
        delattr(ds, keyword)

    return change


def _code(value: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "DCM", "x"
    return item


def _sequences(ds: Dataset) -> None:
    ds.DerivationCodeSequence = Sequence([_code("113072")])
    source = Dataset()
    source.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    source.ReferencedSOPInstanceUID = synth.uid("source")
    source.PurposeOfReferenceCodeSequence = Sequence([_code("121320")])
    ds.SourceImageSequence = Sequence([source])


def _undefined(ds: Dataset) -> None:
    _sequences(ds)
    for keyword in ("DerivationCodeSequence", "SourceImageSequence", "OtherPatientIDsSequence"):
        ds[keyword].is_undefined_length = True
        for entry in ds[keyword].value:
            entry.is_undefined_length_sequence_item = True


def _derivation_image(charset: str) -> Callable[[Dataset], None]:
    """A Derivation Image item whose description (read by the gate) is not ASCII."""

    def change(ds: Dataset) -> None:
        ds.SpecificCharacterSet = charset
        item = Dataset()
        item.DerivationDescription = "Réduit: resampled"
        item.DerivationCodeSequence = Sequence([_code("113072")])
        ds.DerivationImageSequence = Sequence([item])

    return change


def _other_undefined(ds: Dataset) -> None:
    ds["OtherPatientIDsSequence"].is_undefined_length = True
    for entry in ds.OtherPatientIDsSequence:
        entry.is_undefined_length_sequence_item = True


def _meta_instance(ds: Dataset) -> None:
    ds.file_meta.MediaStorageSOPInstanceUID = UID(synth.uid("other"))


def _dx(change: Callable[[Dataset], None]) -> Callable[[Dataset], None]:
    def both(ds: Dataset) -> None:
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UID(synth.DX_PRESENTATION)
        ds.Modality = "DX"
        change(ds)

    return both


MUTATIONS: dict[str, Callable[[Dataset], None]] = {
    "as-is": _all(),
    "modality-spaces": _raw(0x00080060, "CS", b" OT "),
    "modality-lower": _set("Modality", "nm"),
    "modality-multi": _set("Modality", ["OT", "CT"]),
    "modality-empty": _set("Modality", ""),
    "image-type-spaced": _raw(0x00080008, "CS", b"DERIVED\\ PRIMARY "),
    "image-type-empty-part": _raw(0x00080008, "CS", b"ORIGINAL\\\\AXIAL"),
    "image-type-absent": _delete("ImageType"),
    "image-type-nul": _raw(0x00080008, "CS", b"ORIGINAL\\PRIMARY\0"),
    "name-groups": _set("PatientName", "Doe^John=Ideo^Graphic=Pho^Netic"),
    "name-ideographic-only": _raw(0x00100010, "PN", b"=Ideo"),
    "name-multi": _set("PatientName", ["Doe^John", "Roe^Jane"]),
    "name-empty-part": _raw(0x00100010, "PN", b"Doe\\\\Roe "),
    "name-spaces": _raw(0x00100010, "PN", b" Doe^John  "),
    "name-latin1": _raw(0x00100010, "PN", "Müller^Jörg".encode("latin-1")),
    "name-empty": _set("PatientName", ""),
    "id-spaces": _raw(0x00100020, "LO", b" 12 34 "),
    "id-empty": _set("PatientID", ""),
    "id-long": _set("PatientID", "X" * 70),
    "id-control": _raw(0x00100020, "LO", b"A\tB"),
    "study-date-empty": _set("StudyDate", ""),
    "study-date-odd": _raw(0x00080020, "DA", b"2004 0119"),
    "charset-utf8": _all(
        _set("SpecificCharacterSet", "ISO_IR 192"),
        _raw(0x00100010, "PN", "Ωmega^Ünï".encode()),
    ),
    "charset-twice": _set("SpecificCharacterSet", ["ISO_IR 100", "ISO_IR 100"]),
    "charset-spaced": _raw(0x00080005, "CS", b" ISO_IR 100"),
    "charset-2022": _all(
        _set("SpecificCharacterSet", ["", "ISO 2022 IR 87"]),
        _raw(0x00100010, "PN", b"Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"),
    ),
    "charset-greek": _set("SpecificCharacterSet", "ISO_IR 126"),
    "charset-empty": _set("SpecificCharacterSet", ""),
    "charset-absent": _delete("SpecificCharacterSet"),
    "bad-utf8": _all(
        _set("SpecificCharacterSet", "ISO_IR 192"),
        _set("StudyDescription", "cafX"),  # made caf\xe9 once encoded (see BYTE_EDITS)
    ),
    "ds-integral": _set("KVP", "120"),
    "ds-exponent": _raw(0x00180050, "DS", b"5e0 "),
    "ds-malformed": _raw(0x00180050, "DS", b"5,0 "),
    "is-malformed": _raw(0x00181150, "IS", b"1.5"),
    "ds-empty-part": _raw(0x00180088, "DS", b"1\\\\2"),
    "dx": _dx(_all()),
    "dx-spacing-integral": _dx(_set("ImagerPixelSpacing", ["1", "1"])),
    "dx-spacing-spaced": _dx(_raw(0x00181164, "DS", b" 0.5\\0.5 ")),
    "dx-spacing-malformed": _dx(_raw(0x00181164, "DS", b"abc")),
    "dx-spacing-empty": _dx(_set("ImagerPixelSpacing", "")),
    "scanned-integral": _set("NominalScannedPixelSpacing", ["1", "1"]),
    "scanned-rotation": _set("RotationOfScannedFilm", "90"),
    "lossy-ratio": _all(
        _set("LossyImageCompression", "01"),
        _set("LossyImageCompressionRatio", ["10", "2.5"]),
        _set("LossyImageCompressionMethod", "ISO_10918_1"),
    ),
    "lossy-00": _set("LossyImageCompression", "00"),
    "lossy-spaced": _raw(0x00282110, "CS", b" 01"),
    "description-backslash": _raw(0x00082111, "ST", b"a\\b LOSSY "),
    "description-long": _set("DerivationDescription", "resampled " * 900),
    "burned-in": _set("BurnedInAnnotation", "YES"),
    "conversion": _set("ConversionType", "WSD"),
    "sop-instance-spaced": _all(
        _raw(0x00080018, "UI", b" 1.2.3 "),
        _meta("MediaStorageSOPInstanceUID", "1.2.3"),
    ),
    "sop-instance-multi": _raw(0x00080018, "UI", b"1.2.3\\4.5"),
    "sop-instance-invalid": _raw(0x00080018, "UI", b"1.02.3"),
    "sop-instance-letters": _raw(0x00080018, "UI", b"abc"),
    "sop-instance-empty": _raw(0x00080018, "UI", b""),
    "sop-instance-absent": _delete("SOPInstanceUID"),
    "meta-instance-differs": _meta_instance,
    "series-absent": _delete("SeriesInstanceUID"),
    "sop-class-verification": _all(
        _set("SOPClassUID", "1.2.840.10008.1.1"),
        _meta("MediaStorageSOPClassUID", "1.2.840.10008.1.1"),
    ),
    "sop-class-sc": _all(
        _set("SOPClassUID", synth.SC),
        _meta("MediaStorageSOPClassUID", synth.SC),
    ),
    "modality-un": _raw(0x00080060, "UN", b"NM"),
    "patient-id-un": _raw(0x00100020, "UN", b"X1 "),
    "empty-us": _raw(0x00280106, "US", b""),
    "empty-ob": _raw(0x00091001, "OB", b""),
    "at-value": _raw(0x00209165, "AT", b"\x20\x00\x32\x00"),
    "fl-values": _raw(0x00189306, "FD", b"\0\0\0\0\0\0\xf0\x3f"),
    "sequences": _sequences,
    "sequences-undefined": _undefined,
    "other-sequence-undefined": _other_undefined,
    "derivation-image-latin1": _derivation_image("ISO_IR 100"),
    "derivation-image-utf8": _derivation_image("ISO_IR 192"),
}


#: Bytes changed once encoded (pydicom would re-encode a raw value of another character set).
BYTE_EDITS = {"bad-utf8": (b"cafX", b"caf\xe9")}


def _elements(data: bytes) -> list[tuple[int, int, int]]:
    """(tag, start of the element header, end of the value) of the top-level elements."""
    layout = part10.check(data)
    out = []
    for tag, vr, length, value in layout.elements:
        start = value - (12 if vr in part10.LONG_VRS else 8)
        out.append((tag, start, value + length))
    return out


def _swap(data: bytes) -> bytes:
    """Two public elements in the wrong order (Modality before Study Date)."""
    found = {tag: (start, end) for tag, start, end in _elements(data)}
    (a, b), (c, d) = found[0x00080020], found[0x00080060]
    return data[:a] + data[c:d] + data[b:c] + data[a:b] + data[d:]


def _twice(data: bytes) -> bytes:
    """Modality twice in a row."""
    start, end = next((s, e) for tag, s, e in _elements(data) if tag == 0x00080060)
    return data[:end] + data[start:end] + data[end:]


def _unknown_vr(name: str) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        start = next(s for tag, s, _ in _elements(data) if tag >> 16 == int(name, 16))
        return data[: start + 4] + b"XZ" + data[start + 6 :]

    return edit


def _delimiter(data: bytes) -> bytes:
    """A stray sequence delimiter before the pixel data."""
    start = next(s for tag, s, _ in _elements(data) if tag == 0x7FE00010)
    return data[:start] + b"\xfe\xff\xdd\xe0\0\0\0\0" + data[start:]


def _meta_in_data_set(data: bytes) -> bytes:
    """A file meta element (0002,0100) at the start of the data set."""
    start = _elements(data)[0][1]
    element = b"\x02\x00\x00\x01UI\x04\x001.2\0"
    return data[:start] + element + data[start:]


#: Explicit VR little endian CT bytes edited where the walk's "plain" flags look.
EDITED: dict[str, Callable[[bytes], bytes]] = {
    "out-of-order": _swap,
    "twice": _twice,
    "unknown-vr-public": _unknown_vr("0008"),
    "unknown-vr-private": _unknown_vr("0009"),
    "stray-delimiter": _delimiter,
    "meta-in-data-set": _meta_in_data_set,
}
CUTS = (130, 136, 140, 150, 200, 400, 1000, 1999, -2000, -9, -8, -4, -1)


def cases() -> Iterator[tuple[str, bytes]]:
    """(case id, Part-10 bytes), in a fixed order."""
    root = synth.bundled("CT_small.dcm").parent
    for path in synth.bundled_files():
        yield "file:" + path.relative_to(root).as_posix(), path.read_bytes()
    for name in synth.BUILDERS:
        base = pydicom.dcmread(io.BytesIO(synth.build(name)))
        for label, syntax in SYNTAXES.items():
            yield f"synth:{name}:{label}", encode(base, syntax)
    for name, change in MUTATIONS.items():
        ds = _ct()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            change(ds)
            for label, syntax in (*SYNTAXES.items(), ("deflated", DeflatedExplicitVRLittleEndian)):
                try:
                    data = encode(ds, syntax)
                except (ValueError, TypeError, KeyError) as exc:
                    data = f"not encodable: {exc}".encode()
                if name in BYTE_EDITS:
                    data = data.replace(*BYTE_EDITS[name])
                yield f"ct:{name}:{label}", data
    yield from _broken()


def _broken() -> Iterator[tuple[str, bytes]]:
    """Edited and cut files: the walk's refusals and its plain / undefined flags."""
    plain = synth.ct()
    for name, edit in EDITED.items():
        yield f"edited:{name}", edit(plain)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        undefined = _ct()
        _undefined(undefined)
        for label, syntax in SYNTAXES.items():
            for base, data in (("ct", encode(_ct(), syntax)), ("sq", encode(undefined, syntax))):
                for cut in CUTS:
                    yield f"cut:{base}:{label}:{cut}", data[:cut]


def golden() -> dict[str, str]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as stream:
        found: dict[str, str] = json.load(stream)
    return found


def write_golden() -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = {case: outcome(data) for case, data in cases()}
    GOLDEN.parent.mkdir(exist_ok=True)
    with gzip.GzipFile(GOLDEN, "wb", mtime=0) as stream:
        stream.write(json.dumps(found, ensure_ascii=False, indent=0).encode("utf-8"))
    return len(found)


if __name__ == "__main__":
    print(write_golden(), "outcomes written to", GOLDEN)
