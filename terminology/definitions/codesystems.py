# ruff: noqa: RUF001  (Chinese official titles use full-width punctuation)
"""The project's CodeSystems (CN remote medical services, RO teleradiology)."""

from cn_subjects import SUBJECTS
from common import (
    BASE,
    CN_LICENCE,
    CN_SOURCE,
    NOT_SELECTABLE,
    OUR_LICENCE,
    RO_LICENCE,
    RO_SOURCE,
    RULE_PROPERTY,
    codesystem,
    concept,
    prop,
)

R = lambda *ids: [prop("rule", i) for i in ids]  # noqa: E731

# ---------------------------------------------------------------- teleconsultation-type
LIAB = {
    "code": "liability",
    "uri": f"{BASE}/CodeSystem/teleconsultation-type#liability",
    "description": "Who bears legal responsibility for the service (CN-5.2): inviting-party "
    "(remote consultation) or shared by the inviting and the invited party (remote diagnosis).",
    "type": "code",
}
diag_kinds = [
    (
        "remote-imaging-diagnosis",
        "Remote medical imaging diagnosis",
        "远程影像诊断",
        "Medical imaging (radiography, CT, MRI, ...) performed at the inviting party and diagnosed "
        "by the invited upper-level institution (CN-3.4; standing arrangement CN-3.3.1b).",
    ),
    (
        "remote-pathology-diagnosis",
        "Remote pathology diagnosis",
        "远程病理诊断",
        "Pathology examination performed at the inviting party and diagnosed by the invited "
        "upper-level institution (CN-3.4; standing arrangement CN-3.3.1b).",
    ),
    (
        "remote-ecg-diagnosis",
        "Remote electrocardiogram diagnosis",
        "远程心电诊断",
        "Electrocardiogram recorded at the inviting party and diagnosed by the invited upper-level "
        "institution (CN-3.4; standing arrangement CN-3.3.1b).",
    ),
    (
        "remote-ultrasound-diagnosis",
        "Remote ultrasound diagnosis",
        "远程超声诊断",
        "Ultrasound examination performed at the inviting party and diagnosed by the invited "
        "upper-level institution (CN-3.4).",
    ),
]
teleconsultation_type = codesystem(
    "teleconsultation-type",
    "TeleconsultationType",
    "Teleconsultation type",
    "Kinds of remote medical service (远程医疗服务) of the " + CN_SOURCE + ": remote "
    "consultation (section 三(三), rule CN-3.3), with its multidisciplinary form (section "
    "二(二), CN-2.2c), and remote diagnosis (section 三(四), CN-3.4) with the kinds of "
    "auxiliary examination the norms name (medical imaging, pathology, ECG, ultrasound; the "
    "standing arrangements of section 三(三)1, CN-3.3.1b). The property `liability` records "
    "who bears legal responsibility (section 五(二), CN-5.2). Rules: CN-3.3, CN-2.2c, CN-3.4, "
    "CN-3.3.1b, CN-5.2.",
    OUR_LICENCE + CN_LICENCE,
    [
        concept(
            "remote-consultation",
            "Remote consultation",
            "Medical institutions consult remotely: the invited party gives diagnostic and "
            "treatment opinions, the inviting party decides the diagnosis and treatment "
            "plan and bears legal responsibility.",
            zh="远程会诊",
            props=[prop("liability", "inviting-party"), *R("CN-3.3", "CN-5.2")],
            children=[
                concept(
                    "remote-multidisciplinary-consultation",
                    "Remote multidisciplinary consultation",
                    "Remote consultation in which physicians of several specialties take part.",
                    zh="远程多学科联合诊疗",
                    props=[prop("liability", "inviting-party"), *R("CN-2.2c", "CN-5.2")],
                ),
            ],
        ),
        concept(
            "remote-diagnosis",
            "Remote diagnosis",
            "Auxiliary examinations (imaging, pathology, ECG, ultrasound, ...) are performed "
            "at the inviting party and diagnosed by the invited upper-level institution, "
            "within a partnership or medical alliance; both parties share legal "
            "responsibility.",
            zh="远程诊断",
            props=[prop("liability", "shared"), *R("CN-3.4", "CN-5.2")],
            children=[
                concept(
                    c,
                    d,
                    definition=df,
                    zh=zh,
                    props=[
                        prop("liability", "shared"),
                        *R("CN-3.4", "CN-5.2"),
                        *(R("CN-3.3.1b") if "CN-3.3.1b" in df else []),
                    ],
                )
                for c, d, zh, df in diag_kinds
            ],
        ),
    ],
    properties=[LIAB, RULE_PROPERTY],
    hierarchy="is-a",
)

# ---------------------------------------------------------------- teleconsultation-purpose
purposes = [
    (
        "case-discussion",
        "Case discussion",
        "个案病例讨论",
        "Discussion of an individual case with the invited party (the norms' own wording for why "
        "a remote consultation is requested).",
    ),
    (
        "diagnosis",
        "Establish or confirm the diagnosis",
        "明确诊断",
        "The inviting party asks for a diagnostic opinion.",
    ),
    (
        "treatment-plan",
        "Treatment advice",
        "治疗方案建议",
        "The inviting party asks for advice on the treatment plan; it decides the plan itself.",
    ),
    (
        "examination-interpretation",
        "Interpretation of examination results",
        "辅助检查结果判读",
        "Interpretation of imaging, pathology, ECG or ultrasound results.",
    ),
    (
        "second-opinion",
        "Second opinion",
        "第二诊疗意见",
        "Another opinion on a diagnosis or treatment already proposed.",
    ),
    (
        "multidisciplinary-assessment",
        "Multidisciplinary assessment",
        "多学科联合诊疗",
        "Joint assessment by several specialties (CN-2.2c).",
    ),
    (
        "referral-assessment",
        "Transfer or referral assessment",
        "转诊评估",
        "Whether and where the patient should be transferred or referred.",
    ),
    (
        "surgical-assessment",
        "Surgical or procedural assessment",
        "手术评估",
        "Indication, risk or planning of an operation or procedure.",
    ),
    (
        "follow-up",
        "Follow-up",
        "随访复诊",
        "Follow-up of a patient already seen by the invited party.",
    ),
    ("other", "Other purpose", "其他", "A purpose not listed; state it in the request text."),
]
teleconsultation_purpose = codesystem(
    "teleconsultation-purpose",
    "TeleconsultationPurpose",
    "Teleconsultation purpose",
    "Why a remote consultation is requested: the purpose (目的) that every invitation must "
    "state under section 三(三)1 of the " + CN_SOURCE + " (rule CN-3.3.1). The norms require "
    "the purpose but do not enumerate purposes; this list is the project's, built from the "
    "norms' wording (个案病例讨论, 诊断治疗意见, 多学科联合诊疗, 远程诊断) and common "
    "consultation practice. Rules: CN-3.3.1, CN-2.2c.",
    OUR_LICENCE + CN_LICENCE,
    [
        concept(
            c,
            d,
            definition=df,
            zh=zh,
            props=R("CN-3.3.1", *(["CN-2.2c"] if "CN-2.2c" in df else [])),
        )
        for c, d, zh, df in purposes
    ],
    properties=[RULE_PROPERTY],
)


# ---------------------------------------------------------------- refusal-reason
def rr(code, display, definition, rules, zh=None, ro=None, children=None):
    return concept(code, display, definition, zh=zh, ro=ro, props=R(*rules), children=children)


refusal_reason = codesystem(
    "refusal-reason",
    "RefusalReason",
    "Refusal reason",
    "Why an invited institution or physician declines a remote consultation or remote "
    "diagnosis (the " + CN_SOURCE + ", section 三(三)2: a refusal must state its reasons, "
    "rule CN-3.3.2), and why a radiologist refuses to report a teleradiology examination "
    "(the " + RO_SOURCE + ", Art. 30(2), Art. 41 d) and Art. 43(2): inadequate in quantity or "
    "quality, artefacted, wrongly performed, undated, without patient identification; rules "
    "RO-30.2, RO-41d, RO-43.2). Further codes name the conditions the norms make a precondition "
    "(agreement, consent, approved diagnostic subject, qualified physician, original digital "
    "images, modality allowed for the purpose, emergency contract, the radiologist's free "
    "choice). The two groups are not selectable themselves. Rules: CN-3.3.2, CN-2.1, CN-2.2b, "
    "CN-3.1, CN-3.2, CN-3.3.1, RO-30.2, RO-41d, RO-43.2, RO-8, RO-12, RO-13, RO-14, RO-25, "
    "RO-27.",
    OUR_LICENCE + CN_LICENCE + RO_LICENCE,
    [
        concept(
            "invitation-refusal",
            "Invitation declined",
            "Reasons for which an invited institution (or the physician it assigned) "
            "declines an invitation to a remote consultation or remote diagnosis.",
            zh="不接受邀请",
            props=[prop("notSelectable", True), *R("CN-3.3.2")],
            children=[
                rr(
                    "no-matching-subject",
                    "No approved diagnostic subject for the service",
                    "The invited institution holds no approved diagnostic and treatment "
                    "subject matching the requested service.",
                    ["CN-3.3.2", "CN-2.1"],
                    zh="无相应诊疗科目",
                ),
                rr(
                    "no-qualified-physician",
                    "No qualified physician available",
                    "No licensed physician with the needed competence and at least three "
                    "years of independent clinical work is available.",
                    ["CN-3.3.2", "CN-2.2b"],
                    zh="无具备相应资质的医师",
                ),
                rr(
                    "schedule-unavailable",
                    "Requested time cannot be met",
                    "The invited party cannot meet the time arrangement of the invitation.",
                    ["CN-3.3.2"],
                    zh="无法满足时间安排",
                ),
                rr(
                    "beyond-capability",
                    "Beyond the institution's capability",
                    "The case exceeds the diagnostic or treatment capability of the invited "
                    "institution.",
                    ["CN-3.3.2"],
                    zh="超出本机构诊疗能力",
                ),
                rr(
                    "incomplete-request",
                    "Incomplete invitation",
                    "The invitation lacks a required element (reason, purpose, time "
                    "arrangement, record summary, specialty or professional title wanted).",
                    ["CN-3.3.2", "CN-3.3.1"],
                    zh="邀请内容不完整",
                ),
                rr(
                    "no-agreement",
                    "No cooperation agreement",
                    "No valid remote medical cooperation agreement (or teleradiology "
                    "contract) exists between the parties.",
                    ["CN-3.3.2", "CN-3.1", "RO-25"],
                    zh="未签订合作协议",
                    ro="lipsa contractului între beneficiar și furnizor",
                ),
                rr(
                    "no-consent",
                    "No informed consent",
                    "The patient's (or proxy's) written informed consent is missing.",
                    ["CN-3.3.2", "CN-3.2", "RO-27"],
                    zh="未签署知情同意书",
                    ro="lipsa consimțământului informat al pacientului",
                ),
                rr(
                    "other",
                    "Other reason",
                    "Another reason, stated in text with the refusal.",
                    ["CN-3.3.2"],
                    zh="其他原因",
                    ro="alt motiv",
                ),
            ],
        ),
        concept(
            "report-refusal",
            "Report refused by the radiologist",
            "Reasons for which a radiologist refuses to report a teleradiology examination.",
            ro="refuzul radiologului de a formula raportul",
            props=[prop("notSelectable", True), *R("RO-30.2", "RO-43.2")],
            children=[
                rr(
                    "inadequate",
                    "Images or information inadequate",
                    "The images and/or the clinical information submitted are inadequate "
                    "for a diagnosis.",
                    ["RO-30.2", "RO-41d"],
                    ro="informații sau imagini inadecvate",
                    children=[
                        rr(
                            "inadequate-quantity",
                            "Images or information insufficient",
                            "Not enough images or information (e.g. missing series, views "
                            "or clinical data).",
                            ["RO-30.2", "RO-41d"],
                            ro="inadecvate cantitativ",
                        ),
                        rr(
                            "inadequate-quality",
                            "Images or information of inadequate quality",
                            "The images or the information are of insufficient "
                            "quality for a diagnosis.",
                            ["RO-30.2", "RO-41d"],
                            ro="inadecvate calitativ",
                        ),
                    ],
                ),
                rr(
                    "artefacted",
                    "Examination artefacted",
                    "The images carry artefacts that prevent interpretation.",
                    ["RO-43.2"],
                    ro="examinări artefactate",
                ),
                rr(
                    "wrongly-performed",
                    "Examination wrongly performed",
                    "The examination was performed incorrectly (wrong protocol, region, "
                    "technique).",
                    ["RO-43.2"],
                    ro="examinări eronat efectuate",
                ),
                rr(
                    "undated",
                    "Examination undated",
                    "The examination carries no acquisition date.",
                    ["RO-43.2"],
                    ro="examinări nedatate",
                ),
                rr(
                    "no-patient-identification",
                    "No patient identification",
                    "The examination lacks the patient's identification data.",
                    ["RO-43.2"],
                    ro="lipsa datelor de identificare ale pacientului",
                ),
                rr(
                    "not-original-digital",
                    "Not original digital images",
                    "The images are digitised (scanned, photographed) or below the original "
                    "acquisition or PACS resolution.",
                    ["RO-14"],
                    ro="imagini digitizate sau cu rezoluție mai mică decât cea originală",
                ),
                rr(
                    "modality-not-allowed",
                    "Modality not allowed for the purpose",
                    "Nuclear-medicine or hybrid examinations may only be re-interpreted for a "
                    "second opinion.",
                    ["RO-12"],
                    ro="tip de examinare nepermis pentru scopul solicitat",
                ),
                rr(
                    "no-emergency-contract",
                    "No emergency contract",
                    "An urgent request without a contract for emergency teleradiology between "
                    "provider and beneficiary.",
                    ["RO-13"],
                    ro="lipsa contractului pentru teleradiologie în regim de urgență",
                ),
                rr(
                    "radiologist-declines",
                    "Radiologist declines teleradiology",
                    "The radiologist chooses not to practise teleradiology for this request; "
                    "no radiologist can be obliged to (emergencies included).",
                    ["RO-8", "RO-13.3"],
                    ro="niciun medic radiolog nu poate fi obligat să practice teleradiologia",
                ),
            ],
        ),
    ],
    properties=[NOT_SELECTABLE, RULE_PROPERTY],
    hierarchy="is-a",
)

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

# ---------------------------------------------------------------- professional-title
KIND = {
    "code": "rank",
    "uri": f"{BASE}/CodeSystem/professional-title#rank",
    "description": "Seniority of a physician title, 1 (lowest) to 5 (highest), so that a request "
    "can ask for a title 'or higher'.",
    "type": "integer",
}
titles = [
    (
        "chief-physician",
        "Chief physician",
        "主任医师",
        5,
        "Full senior (正高级) professional title of a physician.",
    ),
    (
        "associate-chief-physician",
        "Associate chief physician",
        "副主任医师",
        4,
        "Associate senior (副高级) professional title of a physician.",
    ),
    (
        "attending-physician",
        "Attending physician",
        "主治医师",
        3,
        "Intermediate (中级) professional title of a physician.",
    ),
    (
        "resident-physician",
        "Resident physician",
        "住院医师",
        2,
        "Junior (初级, 师级) professional title of a physician.",
    ),
    (
        "assistant-physician-title",
        "Physician assistant (junior title)",
        "医士",
        1,
        "Junior (初级, 士级) professional title of a physician.",
    ),
]
licences = [
    (
        "licensed-physician",
        "Licensed physician",
        "执业医师",
        "Holds a physician practising certificate; CN-2.2a (accompanies the patient at the "
        "inviting party) and CN-2.2b (provides the service at the invited party, with at least "
        "three years of independent clinical work).",
        ["CN-2.2a", "CN-2.2b"],
    ),
    (
        "licensed-assistant-physician",
        "Licensed assistant physician",
        "执业助理医师",
        "Holds an assistant physician practising certificate; may accompany the patient only when "
        "the inviting party is a primary-level institution (CN-2.2a).",
        ["CN-2.2a"],
    ),
    (
        "village-doctor",
        "Village doctor",
        "乡村医生",
        "Registered village doctor; may accompany the patient only when the inviting party is a "
        "primary-level institution (CN-2.2a).",
        ["CN-2.2a"],
    ),
]
professional_title = codesystem(
    "professional-title",
    "ProfessionalTitle",
    "Physician professional title and licence",
    "Chinese physicians' professional technical titles (专业技术职务任职资格: 主任医师, "
    "副主任医师, 主治医师, 住院医师, 医士), which every invitation must state for the physician "
    "wanted under section 三(三)1 of the " + CN_SOURCE + " (rule CN-3.3.1); and the practising "
    "qualifications section 二(二) names for who may accompany the patient or provide the "
    "service (执业医师, 执业助理医师, 乡村医生; rules CN-2.2a, CN-2.2b). Two non-selectable "
    "groups separate titles from licences; the rank property orders the titles.",
    OUR_LICENCE + CN_LICENCE,
    [
        concept(
            "technical-title",
            "Professional technical title",
            zh="专业技术职务",
            definition="Professional technical titles of physicians (卫生专业技术职务).",
            props=[prop("notSelectable", True), *R("CN-3.3.1")],
            children=[
                concept(c, d, df, zh=zh, props=[prop("rank", rank), *R("CN-3.3.1")])
                for c, d, zh, rank, df in titles
            ],
        ),
        concept(
            "practice-licence",
            "Practising qualification",
            zh="执业资格",
            definition="Legal qualification to practise medicine.",
            props=[prop("notSelectable", True), *R("CN-2.2a")],
            children=[
                concept(c, d, df, zh=zh, props=R(*rules)) for c, d, zh, df, rules in licences
            ],
        ),
    ],
    properties=[NOT_SELECTABLE, KIND, RULE_PROPERTY],
    hierarchy="is-a",
)


# ---------------------------------------------------------------- diagnostic-subject
def subject(entry):
    code, zh, en, *rest = entry
    children = [subject(c) for c in (rest[0] if rest else [])]
    return concept(code, en, zh=zh, children=children or None)


diagnostic_subject = codesystem(
    "diagnostic-subject",
    "DiagnosticSubject",
    "Diagnostic and treatment subject (China)",
    "The catalogue of diagnostic and treatment subjects of medical institutions "
    "(医疗机构诊疗科目名录), issued by the Ministry of Health of the PRC with 卫医发〔1994〕"
    "第27号, with its official numeric codes (first-level subjects NN, second-level "
    "sub-specialties NN.NN, transplantation items NN.NN.NN) and the later official additions: "
    "27 Pain medicine (疼痛科, 2007), 28 Critical care medicine (重症医学科, 2009) and the "
    "revised second-level subjects of 12 Stomatology (口腔科, 2010). The " + CN_SOURCE + " "
    "requires an institution to hold approved subjects matching the remote service (section "
    "二(一)1, rule CN-2.1) and the invitation to name the specialty wanted (CN-3.3.1). "
    "hierarchyMeaning is-a: a second-level subject is a kind of its first-level subject, so an "
    "is-a filter on a first-level code selects the subject and all its sub-specialties (this "
    "server treats an approval of a first-level subject as covering them). English "
    "displays are the project's translations. Rules: CN-2.1, CN-3.3.1, CN-2.2c.",
    OUR_LICENCE + " The catalogue's codes and Chinese names are those of an official "
    "document of a state organ, not protected by copyright (Copyright Law of the People's "
    "Republic of China, Article 5)." + CN_LICENCE,
    [subject(s) for s in SUBJECTS],
    hierarchy="is-a",
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

# ---------------------------------------------------------------- consent-category
consent_category = codesystem(
    "consent-category",
    "ConsentCategory",
    "Telemedicine consent category",
    "Kinds of informed consent the telemedicine rules require, used as Consent.category: the "
    "written consent to remote medical services (远程医疗服务知情同意书, section 三(二) of the "
    + CN_SOURCE
    + "; rules CN-3.2, CN-4.3.7) and the express written consents of the "
    + RO_SOURCE
    + " (Art. 15 e), Art. 27, Art. 42; rules RO-15e, RO-27, RO-42): to the "
    "teleradiology service, to the transfer of images to another organisation or location, "
    "and to access to data platforms. Rules: CN-3.2, CN-4.3.7, RO-15e, RO-27, RO-42.",
    OUR_LICENCE + CN_LICENCE + RO_LICENCE,
    [
        concept(
            "remote-medical-service",
            "Remote medical service consent",
            "Written consent of the patient, or of the guardian or a close relative where "
            "telling the patient is unsuitable, to a remote consultation or remote "
            "diagnosis, its content and fees; obtained by the inviting party.",
            zh="远程医疗服务知情同意",
            props=R("CN-3.2", "CN-4.3.7"),
        ),
        concept(
            "teleradiology-service",
            "Teleradiology service consent",
            "Express written consent of the patient to the teleradiology service, unless "
            "the patient absolutely cannot express it; obtained by the beneficiary.",
            ro="consimțământul expres al pacientului pentru serviciul de teleradiologie",
            props=R("RO-15e", "RO-27", "RO-42"),
        ),
        concept(
            "image-transfer",
            "Image transfer consent",
            "Written consent of the patient to the transfer of images to another "
            "organisation or location, required before the teleradiology act; obtained by "
            "the beneficiary.",
            ro="consimțământul pentru transferul de imagini",
            props=R("RO-27", "RO-42"),
        ),
        concept(
            "data-platform-access",
            "Data platform access consent",
            "Informed consent to access to telemedicine data platforms.",
            ro="consimțământul informat pentru accesarea platformelor de date",
            props=R("RO-15e"),
        ),
    ],
    properties=[RULE_PROPERTY],
)

CODESYSTEMS = [
    teleconsultation_type,
    teleconsultation_purpose,
    refusal_reason,
    teleradiology_purpose,
    professional_title,
    diagnostic_subject,
    medical_specialty,
    consent_category,
]
