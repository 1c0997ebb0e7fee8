"""The project's CodeSystems. Refusal reason and consent category (both regimes) are here, the
others in codesystems_cn.py and codesystems_ro.py; CODESYSTEMS lists them all."""

from codesystems_cn import (
    diagnostic_subject,
    professional_title,
    teleconsultation_purpose,
    teleconsultation_type,
)
from codesystems_ro import medical_specialty, teleradiology_purpose
from common import (
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
