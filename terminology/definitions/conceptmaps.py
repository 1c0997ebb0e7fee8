"""The ConceptMaps: purpose -> modality (RO-12), specialty -> SNOMED CT, subject -> specialty."""

from codesystems import CODESYSTEMS
from common import DCM, DCM_LICENCE, RO_LICENCE, RO_SOURCE, SCT, SCT_LICENCE, all_codes, header, url
from valuesets import ANY_PURPOSE, NUCLEAR_HYBRID

CS = {cs["id"]: cs for cs in CODESYSTEMS}
DISPLAY = {
    c["code"]: c["display"]
    for cs in CODESYSTEMS
    if cs["id"] == "teleradiology-purpose"
    for c in cs["concept"]
}


def conceptmap(rid, name, title, desc, copyright_, source, target, groups):
    cm = header("ConceptMap", rid, name, title, desc, copyright_)
    cm["sourceUri"] = source
    cm["targetUri"] = target
    cm["group"] = groups
    return cm


def cs_display(cs_id):
    return {c["code"]: c["display"] for c in all_codes(CS[cs_id]["concept"])}


# ------------------------------------------------------------- purpose -> modality (RO-12)
allowed = {
    "primary-interpretation": False,
    "second-opinion": True,
    "tele-expertise": False,
}
elements = []
for purpose, nuclear in allowed.items():
    targets = [
        {
            "code": c,
            "display": d,
            "equivalence": "relatedto",
            "comment": "Allowed for this purpose (RO-12).",
        }
        for c, d in ANY_PURPOSE
    ]
    for c, d in NUCLEAR_HYBRID:
        if nuclear:
            targets.append(
                {
                    "code": c,
                    "display": d,
                    "equivalence": "relatedto",
                    "comment": "Nuclear-medicine or hybrid examination: allowed only "
                    "for a second opinion (RO-12).",
                }
            )
        else:
            targets.append(
                {
                    "code": c,
                    "display": d,
                    "equivalence": "disjoint",
                    "comment": "Not allowed: nuclear-medicine and hybrid examinations "
                    "only for a second opinion (RO-12).",
                }
            )
    elements.append({"code": purpose, "display": DISPLAY[purpose], "target": targets})

purpose_to_modality = conceptmap(
    "teleradiology-purpose-to-modality",
    "TeleradiologyPurposeToModality",
    "Teleradiology purpose to allowed DICOM modality",
    "For each teleradiology purpose (RO-4), the DICOM modalities allowed (equivalence "
    "relatedto) or forbidden (equivalence disjoint) by Art. 12 of the " + RO_SOURCE + " (rule "
    "RO-12): conventional radiography (CR, DX, RF, IO, PX), CT, mammography (MG), ultrasound "
    "(US), MRI (MR) and DXA (BMD) for every purpose; nuclear-medicine and hybrid examinations "
    "(NM, PT, deprecated ST; PET-CT, PET-MR and SPECT-CT studies carry these series) only for "
    "a second opinion. The same content as ValueSets modality-primary-interpretation, "
    "modality-second-opinion and modality-tele-expertise. Rules: RO-4, RO-12.",
    "Concept map authored by the telemedicine interoperability server project (CC0 1.0)."
    + DCM_LICENCE
    + RO_LICENCE,
    url("ValueSet", "teleradiology-purpose"),
    url("ValueSet", "teleradiology-modality"),
    [{"source": CS["teleradiology-purpose"]["url"], "target": DCM, "element": elements}],
)

# ------------------------------------------------------------- medical-specialty -> SNOMED CT
SNOMED = {
    "radiology-medical-imaging": ("394914008", "Radiology", "equivalent"),
    "nuclear-medicine": ("394649004", "Nuclear medicine", "equivalent"),
    "family-medicine": ("394814009", "General practice", "equivalent"),
    "internal-medicine": ("419192003", "Internal medicine", "equivalent"),
    "emergency-medicine": ("773568002", "Emergency medicine", "equivalent"),
    "general-surgery": ("394609007", "General surgery", "equivalent"),
    "orthopaedics-traumatology": ("394801008", "Trauma and orthopedics", "equivalent"),
    "cardiology": ("394579002", "Cardiology", "equivalent"),
    "neurology": ("394591006", "Neurology", "equivalent"),
    "medical-oncology": ("394593009", "Medical oncology", "equivalent"),
    "radiation-oncology": ("419815003", "Radiation oncology", "equivalent"),
    "obstetrics-gynaecology": ("394585009", "Obstetrics and gynecology", "equivalent"),
    "pathology": ("394915009", "General pathology", "equivalent"),
}
spec_display = cs_display("medical-specialty")
assert set(SNOMED) == set(spec_display), set(spec_display) ^ set(SNOMED)
specialty_to_snomed = conceptmap(
    "medical-specialty-to-snomed",
    "MedicalSpecialtyToSnomed",
    "Medical specialty to SNOMED CT",
    "Maps the project's Romanian medical specialties (CodeSystem medical-specialty) to SNOMED "
    "CT specialty concepts (the concepts of the FHIR R4 value set c80-practice-codes, plus "
    "773568002 Emergency medicine), so that PractitionerRole.specialty can carry both codings; "
    "radiology (394914008) and nuclear medicine (394649004) identify the reporting specialties "
    "of RO-15a, RO-29 and RO-31. Only concept identifiers and a short display are given. "
    "Rules: RO-15a, RO-29, RO-31.",
    "Concept map authored by the telemedicine interoperability server project (CC0 1.0)."
    + SCT_LICENCE
    + RO_LICENCE,
    url("ValueSet", "medical-specialty"),
    "http://snomed.info/sct?fhir_vs",
    [
        {
            "source": CS["medical-specialty"]["url"],
            "target": SCT,
            "element": [
                {
                    "code": code,
                    "display": spec_display[code],
                    "target": [{"code": sct, "display": disp, "equivalence": eq}],
                }
                for code, (sct, disp, eq) in SNOMED.items()
            ],
        }
    ],
)

# ------------------------------------------------------------- diagnostic-subject -> specialty
# R4 equivalence is read "the target is <equivalence> the source": wider = the target means
# more than the source, narrower = less.
SUBJECT_MAP = [
    ("02", "family-medicine", "equivalent", None),
    ("03", "internal-medicine", "equivalent", None),
    ("03.03", "neurology", "equivalent", None),
    ("03.04", "cardiology", "equivalent", None),
    ("04.01", "general-surgery", "equivalent", None),
    ("04.03", "orthopaedics-traumatology", "equivalent", None),
    ("05", "obstetrics-gynaecology", "equivalent", None),
    (
        "19",
        "medical-oncology",
        "inexact",
        "肿瘤科 covers oncology as a whole; medical oncology is its non-surgical part.",
    ),
    ("20", "emergency-medicine", "equivalent", None),
    ("31", "pathology", "equivalent", None),
    (
        "32",
        "radiology-medical-imaging",
        "inexact",
        "医学影像科 also holds ECG, EEG, EMG and radiotherapy (32.06-32.10), which are not "
        "radiology; use its second-level subjects where known.",
    ),
    ("32.01", "radiology-medical-imaging", "wider", None),
    ("32.02", "radiology-medical-imaging", "wider", None),
    ("32.03", "radiology-medical-imaging", "wider", None),
    ("32.04", "nuclear-medicine", "equivalent", None),
    (
        "32.05",
        "radiology-medical-imaging",
        "wider",
        "In Romania ultrasound diagnosis belongs to radiology-medical imaging (and other "
        "specialties with a complementary-studies certificate).",
    ),
    ("32.09", "radiology-medical-imaging", "wider", None),
    ("32.10", "radiation-oncology", "equivalent", None),
]
subj_display = cs_display("diagnostic-subject")
subj_elements = []
for code, target, eq, comment in SUBJECT_MAP:
    t = {"code": target, "display": spec_display[target], "equivalence": eq}
    if comment:
        t["comment"] = comment
    subj_elements.append({"code": code, "display": subj_display[code], "target": [t]})
subject_to_specialty = conceptmap(
    "diagnostic-subject-to-medical-specialty",
    "DiagnosticSubjectToMedicalSpecialty",
    "Chinese diagnostic subject to medical specialty",
    "Maps subjects of the Chinese catalogue of diagnostic and treatment subjects "
    "(CodeSystem diagnostic-subject, rules CN-2.1, CN-3.3.1) to the project's medical "
    "specialties (CodeSystem medical-specialty), where a counterpart exists, so that one "
    "deployment serving both regimes can compare an institution's approved subjects with a "
    "specialty asked for, and recognise imaging and nuclear-medicine subjects as the "
    "reporting specialties of teleradiology (RO-15a, RO-29). Subjects without a counterpart "
    "are left out (unmapped). Rules: CN-2.1, CN-3.3.1, RO-15a, RO-29.",
    "Concept map authored by the telemedicine interoperability server project (CC0 1.0). "
    "The catalogue's codes and Chinese names are those of an official document of a state "
    "organ, not protected by copyright (Copyright Law of the People's Republic of China, "
    "Article 5)." + RO_LICENCE,
    url("ValueSet", "diagnostic-subject"),
    url("ValueSet", "medical-specialty"),
    [
        {
            "source": CS["diagnostic-subject"]["url"],
            "target": CS["medical-specialty"]["url"],
            "element": subj_elements,
        }
    ],
)

CONCEPTMAPS = [purpose_to_modality, specialty_to_snomed, subject_to_specialty]
