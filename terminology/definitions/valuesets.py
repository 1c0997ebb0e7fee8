"""The ValueSets: one per CodeSystem, the DICOM modality sets (RO-12), priorities."""

from codesystems import CODESYSTEMS
from common import (
    DCM,
    DCM_LICENCE,
    FHIR_LICENCE,
    PRIORITY,
    RO_LICENCE,
    RO_SOURCE,
    url,
    valueset,
    whole_system_vs,
)

VS_TEXT = {
    "teleconsultation-type": "All kinds of remote medical service (remote consultation, remote "
    "diagnosis and their kinds) of CodeSystem teleconsultation-type. Rules: CN-3.3, CN-3.4, "
    "CN-5.2.",
    "teleconsultation-purpose": "All purposes of CodeSystem teleconsultation-purpose; the "
    "purpose every remote consultation invitation must state (CN-3.3.1).",
    "refusal-reason": "All codes of CodeSystem refusal-reason: why an invitation is declined "
    "(CN-3.3.2) or a radiologist refuses to report (RO-30.2, RO-41d, RO-43.2).",
    "teleradiology-purpose": "The three teleradiology purposes of RO Art. 4 (RO-4).",
    "professional-title": "All codes of CodeSystem professional-title: physician titles wanted "
    "in an invitation (CN-3.3.1) and the practising qualifications of CN-2.2a/b.",
    "diagnostic-subject": "The whole Chinese catalogue of diagnostic and treatment subjects "
    "(CodeSystem diagnostic-subject): approved subjects of institutions (CN-2.1) and the "
    "specialty wanted in an invitation (CN-3.3.1).",
    "medical-specialty": "All codes of CodeSystem medical-specialty (RO-15a, RO-15b, RO-29, "
    "RO-31).",
    "consent-category": "All codes of CodeSystem consent-category (CN-3.2, RO-15e, RO-27, RO-42).",
}
VALUESETS = [whole_system_vs(cs, VS_TEXT[cs["id"]]) for cs in CODESYSTEMS]
CS = {cs["id"]: cs for cs in CODESYSTEMS}

VALUESETS.append(
    valueset(
        "radiology-specialty",
        "RadiologySpecialty",
        "Teleradiology reporting specialty",
        "The only two specialties whose physicians may report teleradiology examinations: "
        "radiology-medical imaging and nuclear medicine (" + RO_SOURCE + ", Art. 15 a), 29, 31; "
        "rules RO-15a, RO-29, RO-31). A report whose interpreter has another specialty is "
        "rejected.",
        CS["medical-specialty"]["copyright"],
        [
            {
                "system": CS["medical-specialty"]["url"],
                "concept": [
                    {
                        "code": "radiology-medical-imaging",
                        "display": "Radiology and medical imaging",
                    },
                    {"code": "nuclear-medicine", "display": "Nuclear medicine"},
                ],
            }
        ],
    )
)

# DICOM modalities ------------------------------------------------------------
CONVENTIONAL = [
    ("CR", "Computed Radiography"),
    ("DX", "Digital Radiography"),
    ("RF", "Radiofluoroscopy"),
    ("IO", "Intra-oral Radiography"),
    ("PX", "Panoramic X-Ray"),
]
ANY_PURPOSE = [
    *CONVENTIONAL,
    ("CT", "Computed Tomography"),
    ("MG", "Mammography"),
    ("US", "Ultrasound"),
    ("MR", "Magnetic Resonance"),
    ("BMD", "Bone Mineral Densitometry"),
]
NUCLEAR_HYBRID = [
    ("NM", "Nuclear Medicine"),
    ("PT", "Positron emission tomography"),
    ("ST", "Single-photon emission computed tomography"),
]
MOD_DESC = (
    " DICOM has no modality code for a hybrid device: a PET-CT or PET-MR study carries PT and "
    "CT or MR series, a SPECT-CT study NM and CT series, so a study with any NM or PT series "
    "(or the deprecated ST, replaced by NM, kept for legacy studies) is a nuclear-medicine or "
    "hybrid examination. Conventional radiography (radiologie convențională) is CR, DX, RF, "
    "IO, PX; DXA bone densitometry is BMD (Bone Mineral Densitometry by X-ray, including DXA). "
    "Codes from DICOM PS3.16 CID 29 Acquisition Modality / CID 33 Modality."
)
MOD_COPY = (
    "Value set definition authored by the telemedicine interoperability server project (CC0 "
    "1.0)." + DCM_LICENCE + RO_LICENCE
)


def dcm(rid, name, title, desc, codes):
    return valueset(
        rid,
        name,
        title,
        desc + MOD_DESC,
        MOD_COPY,
        [{"system": DCM, "concept": [{"code": c, "display": d} for c, d in codes]}],
    )


VALUESETS += [
    dcm(
        "teleradiology-modality",
        "TeleradiologyModality",
        "Teleradiology modality",
        "DICOM modalities of the examinations teleradiology may be practised on ("
        + RO_SOURCE
        + ", Art. 12; rule RO-12): conventional radiography, CT, mammography, ultrasound, MRI, "
        "DXA osteodensitometry, and the nuclear-medicine and hybrid examinations (scintigraphy, "
        "SPECT, PET, PET-CT, PET-MR) allowed for a second opinion.",
        ANY_PURPOSE + NUCLEAR_HYBRID,
    ),
    dcm(
        "modality-primary-interpretation",
        "ModalityPrimaryInterpretation",
        "Modalities allowed for primary interpretation",
        "DICOM modalities allowed for teleradiology primary interpretation (RO-4 a), RO-12): "
        "conventional radiography, CT, mammography, ultrasound, MRI, DXA. No nuclear-medicine "
        "or hybrid examination (NM, PT, ST).",
        ANY_PURPOSE,
    ),
    dcm(
        "modality-second-opinion",
        "ModalitySecondOpinion",
        "Modalities allowed for a second opinion",
        "DICOM modalities allowed for teleradiology re-interpretation for a second opinion "
        "(RO-4 b), RO-12): every teleradiology modality, including nuclear-medicine and hybrid "
        "examinations (NM, PT, ST).",
        ANY_PURPOSE + NUCLEAR_HYBRID,
    ),
    dcm(
        "modality-tele-expertise",
        "ModalityTeleExpertise",
        "Modalities allowed for tele-expertise",
        "DICOM modalities allowed for radiological tele-expertise between radiologists (RO-4 "
        "c), RO-12): conventional radiography, CT, mammography, ultrasound, MRI, DXA. Art. 12 "
        "allows nuclear-medicine and hybrid examinations only for re-interpretation for a "
        "second opinion, so NM, PT and ST are not included.",
        ANY_PURPOSE,
    ),
    dcm(
        "modality-nuclear-hybrid",
        "ModalityNuclearHybrid",
        "Nuclear-medicine and hybrid modalities",
        "DICOM modalities of nuclear-medicine and hybrid examinations (scintigraphy, SPECT, PET, "
        "PET-CT, PET-MR): teleradiology on them only for a second opinion (RO-12). A request or "
        "study for another purpose with any series in this value set is rejected.",
        NUCLEAR_HYBRID,
    ),
]

VALUESETS.append(
    valueset(
        "telemedicine-priority",
        "TelemedicinePriority",
        "Telemedicine request priority",
        "Priority of a teleconsultation or teleradiology request, from the FHIR request-priority "
        "code system: routine, urgent, asap, stat. Urgent, asap and stat mark an emergency "
        "request: in teleradiology it needs an active emergency contract (RO-13) and it drives the "
        "radiologist's worklist alert (RO-20a). Rules: RO-13, RO-20.",
        "Value set definition authored by the telemedicine interoperability server project (CC0 "
        "1.0)." + FHIR_LICENCE,
        [
            {
                "system": PRIORITY,
                "concept": [
                    {"code": "routine", "display": "Routine"},
                    {"code": "urgent", "display": "Urgent"},
                    {"code": "asap", "display": "ASAP"},
                    {"code": "stat", "display": "STAT"},
                ],
            }
        ],
    )
)

VALUESETS.append(
    valueset(
        "teleradiology-series-modality",
        "TeleradiologySeriesModality",
        "Teleradiology series modality",
        "Modalities a series of a teleradiology imaging study may have: the image modalities of "
        "ValueSet teleradiology-modality (" + RO_SOURCE + ", Art. 12; rule RO-12) plus the "
        "non-image objects that accompany born-digital studies as they are stored in PACS (RO-14: "
        "original format): structured reports (SR), key object selections (KO), presentation "
        "states (PR), segmentations (SEG) and registrations (REG, e.g. the PET-CT fusion of a "
        "hybrid study). None of these is an image to interpret, so none changes which purpose a "
        "study is allowed for (RO-12). Secondary capture (SC) is deliberately absent (RO-14).",
        MOD_COPY,
        [
            {"valueSet": [url("ValueSet", "teleradiology-modality")]},
            {
                "system": DCM,
                "concept": [
                    {"code": c, "display": d}
                    for c, d in [
                        ("SR", "Structured Report Document"),
                        ("KO", "Key Object Selection"),
                        ("PR", "Presentation State"),
                        ("SEG", "Segmentation"),
                        ("REG", "Registration"),
                    ]
                ],
            },
        ],
    )
)
