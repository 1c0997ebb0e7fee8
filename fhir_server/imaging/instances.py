"""One received Part-10 instance: is it whole, does it say what it is, does the gate let it in?

:func:`prepare` is pure CPU work (no I/O) run before anything is stored: the raw walk of
:mod:`fhir_server.imaging.part10` (a cut file is refused, PS3.10 §7.1), the identity checks of
PS3.4 B.2.3 (the SOP Class and SOP Instance UIDs of the file meta must match the data set's;
the Study, Series and SOP Instance UIDs must be valid UIDs, PS3.5 §9.1), the RO-14 gate, and
the header as DICOM JSON for the index. The attributes are read from the raw elements of the
walk (:mod:`fhir_server.imaging.raw_header`, :mod:`fhir_server.imaging.raw_json`; pixel data
left unread); a file pydicom reads in a way of its own (deflated, odd encodings, other character
sets…) is read as a pydicom Dataset (:mod:`fhir_server.imaging.header`, or ``dcmread``), with
the same outcome (tests/unit/imaging/test_prepare_equivalence.py).
A refusal is a :class:`Refused` carrying the DIMSE status (PS3.4 Table B.2-1 and Annex GG for
STOW-RS failure reasons) and an Error Comment of at most 64 characters.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any, TypeVar

import pydicom
from pydicom._uid_dict import UID_dictionary
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from fhir_server.imaging import header, part10
from fhir_server.imaging.attributes import header_json
from fhir_server.imaging.gate import GatePolicy, Verdict, assess
from fhir_server.imaging.gate_attributes import Header
from fhir_server.imaging.raw_header import RawHeader, Unusual
from fhir_server.imaging.raw_json import attributes_json

#: PS3.4 Table B.2-1 (C-STORE) and PS3.18 Table 10.5.3-2 (STOW-RS Failure Reason).
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
SOP_CLASS_NOT_SUPPORTED = 0x0122
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
#: PS3.5 §9.1: components of digits without leading zeros, separated by dots, 64 at most.
UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
SOP_CLASS_UID = 0x00080016
SOP_INSTANCE_UID = 0x00080018
STUDY_INSTANCE_UID = 0x0020000D
SERIES_INSTANCE_UID = 0x0020000E
ROWS = 0x00280010
MEDIA_STORAGE_SOP_CLASS_UID = 0x00020002
MEDIA_STORAGE_SOP_INSTANCE_UID = 0x00020003
UID_TAGS = (
    ("SOP Class UID", SOP_CLASS_UID),
    ("SOP Instance UID", SOP_INSTANCE_UID),
    ("Study Instance UID", STUDY_INSTANCE_UID),
    ("Series Instance UID", SERIES_INSTANCE_UID),
)
T = TypeVar("T")


class Refused(ValueError):
    """The instance is not stored: ``status`` and a short ``comment`` for the sender, a longer
    ``detail`` for the rejection record, and whatever UIDs could be read."""

    def __init__(
        self,
        status: int,
        comment: str,
        detail: str | None = None,
        uids: dict[str, str | None] | None = None,
        verdict: Verdict | None = None,
    ) -> None:
        super().__init__(detail or comment)
        self.status = status
        self.comment = short_comment(comment)
        self.detail = detail or comment
        self.uids = uids or {}
        self.verdict = verdict


@dataclass(frozen=True, slots=True)
class Prepared:
    """An instance fit to be stored."""

    sop_class: str
    sop_instance: str
    study_uid: str
    series_uid: str
    transfer_syntax: str
    attributes: dict[str, Any]
    verdict: Verdict


def short_comment(text: str) -> str:
    """An Error Comment (0000,0902): LO, 64 characters at most, ASCII, no backslash."""
    return text.encode("ascii", "replace").decode("ascii").replace("\\", "/")[:64]


#: pydicom's NotImplementedError for a VR it does not know: the VR and the element.
_UNKNOWN_VR = re.compile(r"Representation '([^']*)' in tag (\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\))")


def prepare(data: bytes, policy: GatePolicy) -> Prepared:
    """Check ``data`` (a Part-10 file) and read what the index needs; raises :class:`Refused`."""
    try:
        layout = part10.check(data)
    except part10.Incomplete as exc:
        raise Refused(CANNOT_UNDERSTAND, f"Incomplete DICOM: {exc}", str(exc)) from None
    if not is_transfer_syntax(layout.transfer_syntax):
        raise Refused(
            TRANSFER_SYNTAX_NOT_SUPPORTED,
            f"Transfer syntax {layout.transfer_syntax} unknown",
            f"Transfer Syntax UID (0002,0010) {layout.transfer_syntax!r} is not a known one",
        )
    raw = RawHeader.of(layout)
    if raw is not None:
        try:
            return _prepare_raw(layout, raw, policy)
        except Unusual:
            pass
    try:
        return _prepare_dataset(data, layout, policy)
    except NotImplementedError as exc:  # pydicom, on a VR no edition of PS3.5 defines
        found = _UNKNOWN_VR.search(str(exc))
        comment = f"Unknown VR {found[1]!r} in {found[2]}" if found else f"Unreadable: {exc}"
        raise Refused(CANNOT_UNDERSTAND, comment, str(exc)) from None


def _prepare_raw(layout: part10.Layout, raw: RawHeader, policy: GatePolicy) -> Prepared:
    if raw.undefined:  # dcmread reads such a sequence as it reads the file: so does this
        _readable(raw.dataset)
    uids = {name: raw.uid(tag) for name, tag in UID_TAGS}
    meta_class = raw.meta_uid(MEDIA_STORAGE_SOP_CLASS_UID)
    meta_instance = raw.meta_uid(MEDIA_STORAGE_SOP_INSTANCE_UID)
    return _prepared(layout, policy, raw, uids, (meta_class, meta_instance, ROWS in raw),
                     lambda: attributes_json(raw))  # fmt: skip


def _prepare_dataset(data: bytes, layout: part10.Layout, policy: GatePolicy) -> Prepared:
    ds, meta = _readable(lambda: _read(data, layout))
    uids = _uids(ds)
    meta_class = str(meta.get("MediaStorageSOPClassUID", "") or "").strip()
    meta_instance = str(meta.get("MediaStorageSOPInstanceUID", "") or "").strip()
    return _prepared(layout, policy, ds, uids, (meta_class, meta_instance, ROWS in ds),
                     lambda: header_json(ds))  # fmt: skip


def _prepared(
    layout: part10.Layout,
    policy: GatePolicy,
    header: Header,
    uids: dict[str, str | None],
    claims: tuple[str, str, bool],
    attributes: Callable[[], dict[str, Any]],
) -> Prepared:
    """The identity checks, the gate, then the index JSON (after the gate: the raw header's
    JSON keeps pydicom's form for the elements the gate read). ``claims``: the file meta's SOP
    Class and Instance UIDs, and whether Rows (0028,0010) is present."""
    meta_class, meta_instance, has_rows = claims
    sop_class, sop_instance = _identity(uids, meta_class, meta_instance, has_rows, layout)
    verdict = _gate(header, layout.transfer_syntax, policy, uids)
    return Prepared(
        sop_class=sop_class,
        sop_instance=sop_instance,
        study_uid=str(uids["Study Instance UID"]),
        series_uid=str(uids["Series Instance UID"]),
        transfer_syntax=layout.transfer_syntax,
        attributes=attributes(),
        verdict=verdict,
    )


def _readable(read: Callable[[], T]) -> T:
    """What ``read`` reads of the header; a reading error refuses the instance."""
    try:
        return read()
    except (InvalidDicomError, ValueError, KeyError, EOFError, OSError) as exc:
        raise Refused(CANNOT_UNDERSTAND, f"Unreadable DICOM: {exc}", str(exc)) from None


def _identity(
    uids: dict[str, str | None],
    meta_class: str,
    meta_instance: str,
    has_rows: bool,
    layout: part10.Layout,
) -> tuple[str, str]:
    """The SOP Class and Instance UIDs once the identity checks of PS3.4 B.2.3 have passed."""
    for keyword, tag in (
        ("SOP Class UID", "(0008,0016)"),
        ("SOP Instance UID", "(0008,0018)"),
        ("Study Instance UID", "(0020,000D)"),
        ("Series Instance UID", "(0020,000E)"),
    ):
        value = uids.get(keyword)
        if not value:
            raise Refused(DATA_SET_DOES_NOT_MATCH, f"{keyword} {tag} missing", uids=uids)
        if len(value) > 64 or not UID_PATTERN.fullmatch(value):
            raise Refused(
                DATA_SET_DOES_NOT_MATCH, f"{keyword} {tag} is not a valid UID",
                f"{keyword} {tag} {value[:80]!r} is not a valid UID (PS3.5 9.1)", uids,
            )  # fmt: skip
    sop_class = str(uids["SOP Class UID"])
    sop_instance = str(uids["SOP Instance UID"])
    if meta_class and meta_class != sop_class:
        raise Refused(
            DATA_SET_DOES_NOT_MATCH, "SOP Class (0008,0016) differs from (0002,0002)",
            f"the data set's SOP Class UID {sop_class} differs from the Media Storage (or"
            f" Affected) SOP Class UID {meta_class}", uids,
        )  # fmt: skip
    if meta_instance and meta_instance != sop_instance:
        raise Refused(
            DATA_SET_DOES_NOT_MATCH, "SOP Instance (0008,0018) differs from (0002,0003)",
            f"the data set's SOP Instance UID {sop_instance} differs from the Media Storage (or"
            f" Affected) SOP Instance UID {meta_instance}", uids,
        )  # fmt: skip
    if not is_storage_class(sop_class):
        raise Refused(
            SOP_CLASS_NOT_SUPPORTED, f"SOP Class {sop_class} is not a storage class",
            f"SOP Class UID {sop_class} ({UID(sop_class).name}) is not a storage SOP class", uids,
        )  # fmt: skip
    if has_rows and not layout.pixel_data:
        raise Refused(
            CANNOT_UNDERSTAND, "Image has Rows (0028,0010) but no Pixel Data",
            "the data set describes an image (Rows present) but holds no Pixel Data"
            " (7FE0,0010): the file was probably cut at an element boundary", uids,
        )  # fmt: skip
    return sop_class, sop_instance


def _gate(header: Header, syntax: str, policy: GatePolicy, uids: dict[str, str | None]) -> Verdict:
    verdict = assess(header, syntax, policy)
    if verdict.rejected:
        reasons = "; ".join(f.reason for f in verdict.findings if f.action.value == "reject")
        raise Refused(CANNOT_UNDERSTAND, verdict.comment(), reasons, uids, verdict)
    return verdict


def _read(data: bytes, layout: part10.Layout) -> tuple[pydicom.Dataset, pydicom.Dataset]:
    """The header and the file meta: built from the walk, or read by pydicom where it reads
    the file in a way of its own (:mod:`fhir_server.imaging.header`)."""
    found = header.read(layout)
    if found is not None:
        return found.dataset, found.meta
    ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
    return ds, ds.file_meta


def is_transfer_syntax(uid: str) -> bool:
    """A transfer syntax pydicom knows (``UID(uid).is_transfer_syntax``, without building a
    UID: a private UID is a transfer syntax only once its encoding is set, never here)."""
    uid = uid.strip()
    return uid[:14] == "1.2.840.10008." and _uid_entry(uid)[1] == "Transfer Syntax"


def is_storage_class(uid: str) -> bool:
    """A storage SOP class, or one pydicom does not know (private storage classes exist);
    a known SOP class of another service (Verification, Query/Retrieve…) is not."""
    name, kind = _uid_entry(uid.strip())[:2]
    if kind != "SOP Class":
        return True
    return "Storage" in name and "Commitment" not in name


def _uid_entry(uid: str) -> tuple[str, str, str, str, str]:
    """The UID's entry in pydicom's UID dictionary (name, type, info, retired, keyword)."""
    return UID_dictionary.get(uid, (uid, "", "", "", ""))


def _uids(ds: pydicom.Dataset) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name, tag in UID_TAGS:
        try:
            element = ds.get(tag)
            value = element.value if element is not None else None
        except (ValueError, TypeError, KeyError):
            value = None
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        text = str(value).strip("\0 ") if value is not None else ""
        out[name] = text or None
    return out
