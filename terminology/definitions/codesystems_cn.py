# ruff: noqa: RUF001  (Chinese official titles use full-width punctuation)
"""CodeSystems of the CN norms: teleconsultation type and purpose, professional title and
diagnostic subject."""

from cn_subjects import SUBJECTS
from common import (
    BASE,
    CN_LICENCE,
    CN_SOURCE,
    NOT_SELECTABLE,
    OUR_LICENCE,
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
