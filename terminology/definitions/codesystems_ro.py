"""CodeSystems of the RO norms: teleradiology purpose, medical specialty."""

from common import (
    BASE,
    OUR_LICENCE,
    RO_LICENCE,
    RO_SOURCE,
    RULE_PROPERTY,
    codesystem,
    concept,
    prop,
)

R = lambda *ids: [prop("rule", i) for i in ids]  # noqa: E731


# ---------------------------------------------------------------- teleradiology-purpose
NH = {
    "code": "nuclear-hybrid-allowed",
    "uri": f"{BASE}/CodeSystem/teleradiology-purpose#nuclear-hybrid-allowed",
    "description": "True when nuclear-medicine and hybrid examinations (scintigraphy, SPECT, PET, "
    "PET-CT, PET-MR) may be interpreted for this purpose (RO-12).",
    "type": "boolean",
}
teleradiology_purpose = codesystem(
    "teleradiology-purpose",
    "TeleradiologyPurpose",
    "Teleradiology purpose",
    "The three purposes of the teleradiology medical act listed by Art. 4 of the "
    + RO_SOURCE
    + " (rule RO-4): primary interpretation, re-interpretation for a second medical opinion, "
    "and tele-expertise between radiologists. The property nuclear-hybrid-allowed encodes "
    "Art. 12 and Art. 1(2) (rule RO-12): nuclear-medicine and hybrid examinations only for a "
    "second opinion. Rules: RO-4, RO-12, RO-1.",
    OUR_LICENCE + RO_LICENCE,
    [
        concept(
            "primary-interpretation",
            "Primary interpretation",
            "Primary interpretation of the radiological images.",
            ro="interpretarea primară a imaginilor radiologice",
            props=[prop("nuclear-hybrid-allowed", False), *R("RO-4", "RO-12")],
        ),
        concept(
            "second-opinion",
            "Second opinion",
            "Re-interpretation of the radiological images to obtain another medical opinion.",
            ro="reinterpretarea imaginilor radiologice pentru obținerea unei alte opinii medicale",
            props=[prop("nuclear-hybrid-allowed", True), *R("RO-4", "RO-12")],
        ),
        concept(
            "tele-expertise",
            "Tele-expertise",
            "Exchange of medical opinions between several radiology and medical-imaging "
            "specialists located away from the institution where the images were acquired.",
            ro="teleexpertiză radiologică",
            props=[prop("nuclear-hybrid-allowed", False), *R("RO-4", "RO-12")],
        ),
    ],
    properties=[NH, RULE_PROPERTY],
)

# ---------------------------------------------------------------- medical-specialty
specialties = [
    (
        "radiology-medical-imaging",
        "Radiology and medical imaging",
        "radiologie-imagistică medicală",
        "Specialist in radiology and medical imaging: may report teleradiology examinations "
        "(RO-15a, RO-29, RO-31).",
        ["RO-15a", "RO-29", "RO-31"],
    ),
    (
        "nuclear-medicine",
        "Nuclear medicine",
        "medicină nucleară",
        "Specialist in nuclear medicine: may report teleradiology examinations (RO-15a, RO-29, "
        "RO-31).",
        ["RO-15a", "RO-29", "RO-31"],
    ),
    (
        "family-medicine",
        "Family medicine",
        "medicină de familie",
        "Typical requesting physician (medic solicitant, RO-15b).",
        ["RO-15b"],
    ),
    (
        "internal-medicine",
        "Internal medicine",
        "medicină internă",
        "Typical requesting physician (RO-15b).",
        ["RO-15b"],
    ),
    (
        "emergency-medicine",
        "Emergency medicine",
        "medicină de urgență",
        "Requesting physician of emergency teleradiology (RO-13, RO-15b).",
        ["RO-13", "RO-15b"],
    ),
    (
        "general-surgery",
        "General surgery",
        "chirurgie generală",
        "Typical requesting physician (RO-15b).",
        ["RO-15b"],
    ),
    (
        "orthopaedics-traumatology",
        "Orthopaedics and traumatology",
        "ortopedie și traumatologie",
        "Typical requesting physician (RO-15b).",
        ["RO-15b"],
    ),
    (
        "cardiology",
        "Cardiology",
        "cardiologie",
        "Typical requesting physician (RO-15b).",
        ["RO-15b"],
    ),
    ("neurology", "Neurology", "neurologie", "Typical requesting physician (RO-15b).", ["RO-15b"]),
    (
        "medical-oncology",
        "Medical oncology",
        "oncologie medicală",
        "Typical requesting physician (RO-15b).",
        ["RO-15b"],
    ),
    (
        "radiation-oncology",
        "Radiation oncology",
        "radioterapie",
        "Typical requesting physician (RO-15b); not a reporting specialty.",
        ["RO-15b"],
    ),
    (
        "obstetrics-gynaecology",
        "Obstetrics and gynaecology",
        "obstetrică-ginecologie",
        "Typical requesting physician (RO-15b).",
        ["RO-15b"],
    ),
    (
        "pathology",
        "Pathology",
        "anatomie patologică",
        "Pathologist; the reporting specialty of remote pathology diagnosis (CN-3.4).",
        ["CN-3.4"],
    ),
]
REPORTING = {
    "code": "teleradiology-reporting",
    "uri": f"{BASE}/CodeSystem/medical-specialty#teleradiology-reporting",
    "description": "True for the specialties whose physicians may report teleradiology "
    "examinations (radiology-medical imaging, nuclear medicine: RO-15a, RO-29, RO-31).",
    "type": "boolean",
}
medical_specialty = codesystem(
    "medical-specialty",
    "MedicalSpecialty",
    "Medical specialty (Romania)",
    "Medical specialties the teleradiology rules need, named as in the Romanian nomenclature "
    "of medical specialties: the two specialties whose physicians may report teleradiology "
    "(radiology-medical imaging and nuclear medicine, Art. 1(1)c), 15 a), 29 and 31 of the "
    + RO_SOURCE
    + "; rules RO-15a, RO-29, RO-31), marked by the property "
    "teleradiology-reporting, and the specialties of typical requesting physicians (medic "
    "solicitant, Art. 2(1)b), 15 b); RO-15b). ConceptMap medical-specialty-to-snomed maps them "
    "to SNOMED CT. Rules: RO-15a, RO-15b, RO-29, RO-31.",
    OUR_LICENCE + RO_LICENCE,
    [
        concept(
            c,
            d,
            df,
            ro=ro,
            props=[
                prop(
                    "teleradiology-reporting",
                    c in ("radiology-medical-imaging", "nuclear-medicine"),
                ),
                *R(*rules),
            ],
        )
        for c, d, ro, df, rules in specialties
    ],
    properties=[REPORTING, RULE_PROPERTY],
)
