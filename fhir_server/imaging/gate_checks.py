"""The RO-14 / RO-43.2 checks of the image gate (PS3.3 references per check).

Each check is a function of the header and the transfer syntax returning zero or one finding as
``(check, tag, reason, reference, default action)``; :func:`fhir_server.imaging.gate.assess`
applies the policy. Enhanced multi-frame objects are also read in their Shared and Per-frame
Functional Groups (Frame Type, Derivation Image, Source Image; PS3.3 C.7.6.16, C.8.16).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fhir_server.imaging import gate_attributes as ga
from fhir_server.imaging import transfer_syntax as ts
from fhir_server.imaging.gate import Action, Check

RawFinding = tuple[str, str, str, str, Action]

# --- reject ---------------------------------------------------------------------------------


def secondary_capture(header: ga.Header, _ts: str) -> RawFinding | None:
    name = ga.capture_classes().get(ga.sop_class(header))
    if name is None:
        return None
    reason = f"SOP Class (0008,0016) is {name}: captured or photographed, not an acquisition"
    return ("secondary-capture", "(0008,0016)", reason, "PS3.3 A.8, A.32", Action.REJECT)


def encapsulated_document(header: ga.Header, _ts: str) -> RawFinding | None:
    name = ga.document_classes().get(ga.sop_class(header))
    if name is None:
        return None
    reason = f"SOP Class (0008,0016) is {name}: a document, not an image for primary reading"
    return ("encapsulated-document", "(0008,0016)", reason, "PS3.3 A.45", Action.REVIEW)


def conversion_type(header: ga.Header, _ts: str) -> RawFinding | None:
    values = ga.values(header, "ConversionType")
    if not values:
        return None
    term = values[0]
    meaning = ga.conversion_types().get(term, "a conversion into DICOM")
    reason = f"Conversion Type (0008,0064) is {term} ({meaning}): not a primary digital image"
    return ("conversion-type", "(0008,0064)", reason, "PS3.3 C.8.6.1", Action.REJECT)


def scanned_film(header: ga.Header, _ts: str) -> RawFinding | None:
    for keyword, tag in (
        ("NominalScannedPixelSpacing", "(0018,2010)"),
        ("DigitizingDeviceTransportDirection", "(0018,2020)"),
        ("RotationOfScannedFilm", "(0018,2030)"),
    ):
        if ga.values(header, keyword):
            reason = f"{keyword} {tag} is present: the image was digitised from film or paper"
            return ("scanned-film", tag, reason, "PS3.3 C.8.6.2", Action.REJECT)
    return None


def lossy_image_compression(header: ga.Header, _ts: str) -> RawFinding | None:
    if ga.values(header, "LossyImageCompression")[:1] != ["01"]:
        return None
    details = []
    if ratio := ga.values(header, "LossyImageCompressionRatio"):
        details.append("ratio " + "/".join(ratio))
    if method := ga.values(header, "LossyImageCompressionMethod"):
        details.append("method " + "/".join(method))
    extra = f" ({', '.join(details)})" if details else ""
    reason = f"Lossy Image Compression (0028,2110) is 01{extra}: not original fidelity"
    return ("lossy-image-compression", "(0028,2110)", reason, "PS3.3 C.7.6.1.1.5", Action.REJECT)


def lossy_transfer_syntax(_header: ga.Header, syntax: str) -> RawFinding | None:
    if ts.fidelity(syntax) is not ts.Fidelity.LOSSY:
        return None
    reason = f"Transfer Syntax (0002,0010) {syntax} ({ts.name(syntax)}) is always lossy"
    return (
        "lossy-transfer-syntax",
        "(0002,0010)",
        reason,
        "PS3.5 A.4; PS3.3 C.7.6.1.1.5",
        Action.REJECT,
    )


def lossy_derivation_code(header: ga.Header, _ts: str) -> RawFinding | None:
    for scope in ga.derivations(header):
        if "113040" in ga.codes(ga.items(scope, "DerivationCodeSequence")):
            reason = "Derivation Code (0008,9215) is 113040 (Lossy Compression)"
            return (
                "lossy-derivation-code",
                "(0008,9215)",
                reason,
                "PS3.3 C.12.4.1.1; CID 7203",
                Action.REJECT,
            )
    return None


def lossy_source_image(header: ga.Header, _ts: str) -> RawFinding | None:
    for scope in ga.derivations(header):
        for source in ga.items(scope, "SourceImageSequence"):
            if "121330" in ga.codes(ga.items(source, "PurposeOfReferenceCodeSequence")):
                reason = (
                    "Source Image (0008,2112) purpose (0040,A170) is 121330"
                    " (Lossy compressed predecessor)"
                )
                return (
                    "lossy-source-image",
                    "(0040,A170)",
                    reason,
                    "PS3.3 C.12.4.1.2; CID 7202",
                    Action.REJECT,
                )
    return None


def derivation_description(header: ga.Header, _ts: str) -> RawFinding | None:
    words = ("LOSSY", "RESAMPL", "DOWNSAMPL", "DOWN-SAMPL", "SUBSAMPL", "DECIMAT", "REDUCED RES")
    for scope in ga.derivations(header):
        text = " ".join(ga.values(scope, "DerivationDescription"))
        hit = next((w for w in words if w in text), None)
        if hit:
            shown = text[:60]
            reason = f"Derivation Description (0008,2111) says {shown!r}: lossy or resampled"
            return (
                "derivation-description",
                "(0008,2111)",
                reason,
                "PS3.3 C.12.4.1.1",
                Action.REJECT,
            )
    return None


# --- review ---------------------------------------------------------------------------------


def derived_image_type(header: ga.Header, _ts: str) -> RawFinding | None:
    for scope in ga.frame_groups(header):
        for keyword, tag in (("ImageType", "(0008,0008)"), ("FrameType", "(0008,9007)")):
            values = ga.values(scope, keyword)
            flagged = [v for v in values[:2] if v in ("DERIVED", "SECONDARY", "MIXED")]
            if flagged:
                shown = "\\".join(values[:3])
                reason = f"{keyword} {tag} is {shown}: not an original primary image"
                ref = "PS3.3 C.7.6.1.1.2" if keyword == "ImageType" else "PS3.3 C.8.16.1"
                return ("derived-image-type", tag, reason, ref, Action.REVIEW)
    return None


def missing_image_type(header: ga.Header, _ts: str) -> RawFinding | None:
    if not ga.is_image(header) or ga.values(header, "ImageType") or ga.values(header, "FrameType"):
        return None
    if any(ga.values(s, "FrameType") for s in ga.frame_groups(header)):
        return None
    reason = "Image Type (0008,0008) is missing: originality of the image is unknown"
    return ("missing-image-type", "(0008,0008)", reason, "PS3.3 C.7.6.1.1.2", Action.REVIEW)


def non_primary_modality(header: ga.Header, _ts: str) -> RawFinding | None:
    meanings = {
        "OT": "Other",
        "DOC": "Document",
        "XC": "External-camera Photography",
        "RG": "Radiographic imaging (conventional film/screen)",
        "HC": "Hard Copy",
    }
    modality = (ga.values(header, "Modality") or [""])[0]
    if modality not in meanings:
        return None
    reason = f"Modality (0008,0060) is {modality} ({meanings[modality]}): not a primary source"
    return ("non-primary-modality", "(0008,0060)", reason, "PS3.3 C.7.3.1.1.1", Action.REVIEW)


def second_opinion_modality(header: ga.Header, _ts: str) -> RawFinding | None:
    modality = (ga.values(header, "Modality") or [""])[0]
    if modality not in ("NM", "PT"):
        return None
    reason = f"Modality (0008,0060) is {modality}: for second opinion only (RO-12)"
    return ("second-opinion-modality", "(0008,0060)", reason, "PS3.3 C.7.3.1.1.1", Action.REVIEW)


def burned_in_annotation(header: ga.Header, _ts: str) -> RawFinding | None:
    if ga.values(header, "BurnedInAnnotation")[:1] != ["YES"]:
        return None
    reason = "Burned In Annotation (0028,0301) is YES: text is part of the pixels"
    return ("burned-in-annotation", "(0028,0301)", reason, "PS3.3 C.7.6.1", Action.REVIEW)


def possibly_lossy_transfer_syntax(header: ga.Header, syntax: str) -> RawFinding | None:
    if ts.fidelity(syntax) is not ts.Fidelity.POSSIBLY_LOSSY:
        return None
    if ga.values(header, "LossyImageCompression")[:1] in (["00"], ["01"]):
        return None  # 00 vouches for the data; 01 is rejected by lossy-image-compression
    reason = (
        f"Transfer Syntax (0002,0010) {syntax} ({ts.name(syntax)}) may be lossy and"
        " Lossy Image Compression (0028,2110) is not 00"
    )
    return (
        "possibly-lossy-transfer-syntax",
        "(0002,0010)",
        reason,
        "PS3.5 A.4; PS3.3 C.7.6.1.1.5",
        Action.REVIEW,
    )


def compressed_copy(header: ga.Header, _ts: str) -> RawFinding | None:
    for scope in ga.derivations(header):
        for source in ga.items(scope, "SourceImageSequence"):
            if "121320" in ga.codes(ga.items(source, "PurposeOfReferenceCodeSequence")):
                reason = (
                    "Source Image (0008,2112) purpose (0040,A170) is 121320"
                    " (Uncompressed predecessor): this is a compressed copy"
                )
                return (
                    "compressed-copy",
                    "(0040,A170)",
                    reason,
                    "PS3.3 C.12.4.1.2; CID 7202",
                    Action.REVIEW,
                )
    return None


def modifying_equipment(header: ga.Header, _ts: str) -> RawFinding | None:
    meanings = {
        "109103": "Modifying Equipment",
        "109104": "De-identifying Equipment",
        "109105": "Frame Extracting Equipment",
    }
    for item in ga.items(header, "ContributingEquipmentSequence"):
        for code in ga.codes(ga.items(item, "PurposeOfReferenceCodeSequence")):
            if code in meanings:
                reason = f"Contributing Equipment (0018,A001) is {code} ({meanings[code]})"
                return ("modifying-equipment", "(0018,A001)", reason, "PS3.3 C.12.1", Action.REVIEW)
    return None


def mpr_derivation_code(header: ga.Header, _ts: str) -> RawFinding | None:
    for scope in ga.derivations(header):
        if "113072" in ga.codes(ga.items(scope, "DerivationCodeSequence")):
            reason = "Derivation Code (0008,9215) is 113072 (Multiplanar reformatting)"
            return (
                "mpr-derivation-code",
                "(0008,9215)",
                reason,
                "PS3.3 C.12.4.1.1; CID 7203",
                Action.REVIEW,
            )
    return None


def missing_imager_pixel_spacing(header: ga.Header, _ts: str) -> RawFinding | None:
    modality = (ga.values(header, "Modality") or [""])[0]
    if modality not in ("CR", "DX", "MG", "IO") or not ga.is_image(header):
        return None
    if ga.values(header, "ImagerPixelSpacing"):
        return None
    reason = (
        f"Imager Pixel Spacing (0018,1164) is missing on a {modality} projection image:"
        " the detector resolution cannot be shown"
    )
    return ("missing-imager-pixel-spacing", "(0018,1164)", reason, "PS3.3 C.8.11.4", Action.REVIEW)


def missing_study_date(header: ga.Header, _ts: str) -> RawFinding | None:
    if ga.values(header, "StudyDate"):
        return None
    reason = "Study Date (0008,0020) is missing or empty (RO-43.2)"
    return ("missing-study-date", "(0008,0020)", reason, "PS3.3 C.7.2.1", Action.REVIEW)


def missing_patient_identity(header: ga.Header, _ts: str) -> RawFinding | None:
    missing = [
        f"{keyword} {tag}"
        for keyword, tag in (("PatientID", "(0010,0020)"), ("PatientName", "(0010,0010)"))
        if not ga.values(header, keyword)
    ]
    if not missing:
        return None
    tag = missing[0].split(" ")[1]
    reason = f"{' and '.join(missing)} missing or empty: patient identity unknown (RO-43.2)"
    return ("missing-patient-identity", tag, reason, "PS3.3 C.7.1.1", Action.REVIEW)


def _table() -> str:
    # id | default action | tag | PS3.3 reference | what it detects (evaluation order)
    return """
secondary-capture | reject | (0008,0016) | PS3.3 A.8, A.32 | SC, multi-frame SC, VL photo/video
conversion-type | reject | (0008,0064) | PS3.3 C.8.6.1 | any Conversion Type (DV DI DF WSD SD SI..)
scanned-film | reject | (0018,2010) | PS3.3 C.8.6.2 | digitiser attributes (scanned pixel spacing..)
lossy-image-compression | reject | (0028,2110) | PS3.3 C.7.6.1.1.5 | Lossy Image Compression 01
lossy-transfer-syntax | reject | (0002,0010) | PS3.5 A.4; PS3.3 C.7.6.1.1.5 | always-lossy syntax
lossy-derivation-code | reject | (0008,9215) | PS3.3 C.12.4.1.1; CID 7203 | 113040 Lossy Compression
lossy-source-image | reject | (0040,A170) | PS3.3 C.12.4.1.2; CID 7202 | 121330 lossy predecessor
derivation-description | reject | (0008,2111) | PS3.3 C.12.4.1.1 | text: lossy, resampled...
encapsulated-document | review | (0008,0016) | PS3.3 A.45 | encapsulated PDF/CDA/STL: not an image
derived-image-type | review | (0008,0008) | PS3.3 C.7.6.1.1.2, C.8.16.1 | DERIVED/SECONDARY/MIXED
missing-image-type | review | (0008,0008) | PS3.3 C.7.6.1.1.2 | image without Image Type
non-primary-modality | review | (0008,0060) | PS3.3 C.7.3.1.1.1 | modality OT, DOC, XC, RG or HC
second-opinion-modality | review | (0008,0060) | PS3.3 C.7.3.1.1.1 | NM or PT: second opinion only
burned-in-annotation | review | (0028,0301) | PS3.3 C.7.6.1 | Burned In Annotation YES
possibly-lossy-transfer-syntax | review | (0002,0010) | PS3.5 A.4 | J2K/HTJ2K, 2110 not 00
compressed-copy | review | (0040,A170) | PS3.3 C.12.4.1.2; CID 7202 | 121320 compressed copy
modifying-equipment | review | (0018,A001) | PS3.3 C.12.1 | modifying/de-identifying equipment
mpr-derivation-code | review | (0008,9215) | PS3.3 C.12.4.1.1; CID 7203 | 113072 MPR
missing-imager-pixel-spacing | review | (0018,1164) | PS3.3 C.8.11.4 | CR/DX/MG/IO without it
missing-study-date | review | (0008,0020) | PS3.3 C.7.2.1 | RO-43.2: Study Date missing or empty
missing-patient-identity | review | (0010,0020) | PS3.3 C.7.1.1 | RO-43.2: Patient ID/Name missing
"""


def _functions() -> dict[str, Callable[[ga.Header, str], RawFinding | None]]:
    return {
        "secondary-capture": secondary_capture,
        "conversion-type": conversion_type,
        "scanned-film": scanned_film,
        "lossy-image-compression": lossy_image_compression,
        "lossy-transfer-syntax": lossy_transfer_syntax,
        "lossy-derivation-code": lossy_derivation_code,
        "lossy-source-image": lossy_source_image,
        "derivation-description": derivation_description,
        "encapsulated-document": encapsulated_document,
        "derived-image-type": derived_image_type,
        "missing-image-type": missing_image_type,
        "non-primary-modality": non_primary_modality,
        "second-opinion-modality": second_opinion_modality,
        "burned-in-annotation": burned_in_annotation,
        "possibly-lossy-transfer-syntax": possibly_lossy_transfer_syntax,
        "compressed-copy": compressed_copy,
        "modifying-equipment": modifying_equipment,
        "mpr-derivation-code": mpr_derivation_code,
        "missing-imager-pixel-spacing": missing_imager_pixel_spacing,
        "missing-study-date": missing_study_date,
        "missing-patient-identity": missing_patient_identity,
    }


def catalogue() -> tuple[Check, ...]:
    rows = (line.split("|") for line in _table().strip().splitlines())
    return tuple(
        Check(id_.strip(), Action(action.strip()), tag.strip(), ref.strip(), detects.strip())
        for id_, action, tag, ref, detects in rows
    )


def run_checks(header: ga.Header, transfer_syntax: str) -> Iterator[RawFinding]:
    for function in _functions().values():
        found = function(header, transfer_syntax)
        if found is not None:
            yield found
