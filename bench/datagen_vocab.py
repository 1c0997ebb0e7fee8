"""Vocabulary of the synthetic telemedicine data (see :mod:`bench.datagen`): code systems, names,
places, LOINC tests with UCUM units and plausible ranges, SNOMED findings and specialties.

Plain tuples only, so the generator picks from them with ``Random.choice`` and the output stays
byte-identical for a seed. The codes are real (LOINC, SNOMED CT, HL7 terminology) where a public
system exists; the telemedicine service codes and identifier systems are local to this project.
"""

from __future__ import annotations

from typing import NamedTuple

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
URN_IETF = "urn:ietf:rfc:3986"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
V2_0360 = "http://terminology.hl7.org/CodeSystem/v2-0360|2.7"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
LANGUAGE = "urn:ietf:bcp:47"
# Local (project) systems.
LOCAL = "https://fhir.telemed.example.org"
SERVICE = f"{LOCAL}/CodeSystem/telemedicine-service"
PURPOSE = f"{LOCAL}/CodeSystem/teleradiology-purpose"
BUSINESS_STATUS = f"{LOCAL}/CodeSystem/task-business-status"
ORG_ROLE = f"{LOCAL}/CodeSystem/organization-role"
LICENCE = f"{LOCAL}/sid/practitioner-licence"
ORG_ID = f"{LOCAL}/sid/organization"
CNP = "https://fhir.example.ro/sid/cnp"
RESIDENT_ID = "https://fhir.example.cn/sid/resident-id"

XHTML = '<div xmlns="http://www.w3.org/1999/xhtml">'

# Family and given names per country; Romanian ones with their diacritics (ș, ț, ă, â, î).
FAMILY_RO = (
    "Popescu", "Ionescu", "Popa", "Dumitrescu", "Stan", "Stoica", "Gheorghiu", "Matei",
    "Ciobanu", "Rădulescu", "Ștefănescu", "Țurcanu", "Măgureanu", "Constantinescu", "Bălan",
    "Munteanu", "Dobre", "Barbu", "Nistor", "Florea", "Mocanu", "Oprea", "Lazăr", "Tănase",
    "Sârbu", "Toma", "Ene", "Bîrsan", "Cristea", "Dinu", "Moldovan", "Pîrvu", "Vasilescu",
)  # fmt: skip
GIVEN_RO_F = (
    "Ioana", "Maria", "Elena", "Ana", "Andreea", "Mădălina", "Irina", "Cristina", "Alexandra",
    "Ștefania", "Bianca", "Raluca", "Oana", "Simona", "Larisa", "Roxana", "Anca", "Gabriela",
)  # fmt: skip
GIVEN_RO_M = (
    "Andrei", "Mihai", "Ștefan", "Alexandru", "Bogdan", "Cătălin", "Răzvan", "Ion", "George",
    "Vlad", "Florin", "Marius", "Cosmin", "Dragoș", "Tudor", "Adrian", "Costel", "Radu",
)  # fmt: skip
# Chinese names: pinyin for family/given, the characters in HumanName.text.
FAMILY_CN = (
    ("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
    ("Zhao", "赵"), ("Huang", "黄"), ("Zhou", "周"), ("Wu", "吴"), ("Xu", "徐"), ("Sun", "孙"),
    ("Hu", "胡"), ("Zhu", "朱"), ("Gao", "高"), ("Lin", "林"), ("He", "何"), ("Guo", "郭"),
)  # fmt: skip
GIVEN_CN_F = (
    ("Fang", "芳"), ("Min", "敏"), ("Jing", "静"), ("Li", "丽"), ("Yan", "燕"), ("Xiuying", "秀英"),
    ("Na", "娜"), ("Ting", "婷"), ("Xue", "雪"), ("Hui", "慧"), ("Yuxuan", "雨萱"), ("Lan", "兰"),
)  # fmt: skip
GIVEN_CN_M = (
    ("Wei", "伟"), ("Qiang", "强"), ("Lei", "磊"), ("Jun", "军"), ("Yong", "勇"), ("Jie", "杰"),
    ("Tao", "涛"), ("Hao", "浩"), ("Ming", "明"), ("Chao", "超"), ("Zihao", "子豪"), ("Bo", "波"),
)  # fmt: skip
FAMILY_OTHER = (
    "Smith", "Müller", "García", "Rossi", "Novák", "Kowalski", "Dubois", "Nagy", "Petrov",
    "Johansson", "O'Brien", "Papadopoulos", "Horváth", "Fernández", "Öztürk", "Nguyen",
)  # fmt: skip
GIVEN_OTHER_F = ("Sarah", "Anna", "Léa", "Zoé", "Marta", "Sofía", "Éva", "Agnieszka", "Chloé")
GIVEN_OTHER_M = ("James", "Lukas", "José", "Matteo", "Jiří", "Piotr", "Noé", "Ömer", "Dmitri")


class Place(NamedTuple):
    city: str
    district: str
    postal_prefix: str


PLACES_RO = (
    Place("București", "Sector 1", "01"), Place("București", "Sector 4", "04"),
    Place("Cluj-Napoca", "Cluj", "40"), Place("Iași", "Iași", "70"),
    Place("Timișoara", "Timiș", "30"), Place("Constanța", "Constanța", "90"),
    Place("Brașov", "Brașov", "50"), Place("Târgu Mureș", "Mureș", "54"),
    Place("Craiova", "Dolj", "20"), Place("Sibiu", "Sibiu", "55"),
)  # fmt: skip
PLACES_CN = (
    Place("Beijing", "Haidian", "10"), Place("Shanghai", "Pudong", "20"),
    Place("Guangzhou", "Tianhe", "51"), Place("Chengdu", "Wuhou", "61"),
    Place("Wuhan", "Wuchang", "43"), Place("Xi'an", "Yanta", "71"),
    Place("Hangzhou", "Xihu", "31"), Place("Kunming", "Wuhua", "65"),
)  # fmt: skip
STREETS_RO = (
    "Strada Mihai Eminescu", "Bulevardul Ștefan cel Mare", "Strada Avram Iancu",
    "Calea Victoriei", "Strada Mărășești", "Strada Tudor Vladimirescu", "Aleea Trandafirilor",
)  # fmt: skip
STREETS_CN = ("Zhongshan Road", "Renmin Road", "Jiefang Avenue", "Xueyuan Road", "Binjiang Road")

HOSPITAL_RO = (
    "Spitalul Clinic Județean de Urgență", "Spitalul Municipal", "Institutul Regional de Oncologie",
    "Spitalul Orășenesc", "Centrul de Diagnostic și Tratament", "Spitalul Clinic de Recuperare",
)  # fmt: skip
HOSPITAL_CN = (
    "People's Hospital", "First Affiliated Hospital", "County Hospital",
    "Traditional Chinese Medicine Hospital", "Central Hospital", "Township Health Centre",
)  # fmt: skip


class Loinc(NamedTuple):
    """A LOINC observable with its UCUM unit, a plausible range, decimals and normal range."""

    code: str
    display: str
    unit: str
    low: float
    high: float
    decimals: int
    normal: tuple[float, float]
    category: str  # observation-category code


VITALS = (
    Loinc("8867-4", "Heart rate", "/min", 45, 140, 0, (60, 100), "vital-signs"),
    Loinc("9279-1", "Respiratory rate", "/min", 10, 32, 0, (12, 20), "vital-signs"),
    Loinc("8310-5", "Body temperature", "Cel", 35.5, 40.2, 1, (36.1, 37.5), "vital-signs"),
    Loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%",
         84, 100, 0, (95, 100), "vital-signs"),
    Loinc("29463-7", "Body weight", "kg", 38, 140, 1, (38, 140), "vital-signs"),
    Loinc("8302-2", "Body height", "cm", 145, 200, 0, (145, 200), "vital-signs"),
    Loinc("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 15, 42, 1, (18.5, 25),
         "vital-signs"),
)  # fmt: skip
LABS = (
    Loinc("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 55, 320, 0, (70, 110), "laboratory"),
    Loinc("1558-6", "Fasting glucose [Mass/volume] in Serum or Plasma", "mg/dL", 60, 260, 0,
         (70, 100), "laboratory"),
    Loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.2, 12, 1, (4, 5.7),
         "laboratory"),
    Loinc("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 7, 18.5, 1, (12, 17.5),
         "laboratory"),
    Loinc("4544-3", "Hematocrit [Volume Fraction] of Blood by Automated count", "%", 25, 56, 1,
         (36, 50), "laboratory"),
    Loinc("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 2, 25, 1,
         (4, 10.5), "laboratory"),
    Loinc("789-8", "Erythrocytes [#/volume] in Blood by Automated count", "10*6/uL", 3, 6.2, 2,
         (4.2, 5.9), "laboratory"),
    Loinc("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 60, 520, 0,
         (150, 400), "laboratory"),
    Loinc("787-2", "MCV [Entitic volume] by Automated count", "fL", 70, 110, 1, (80, 100),
         "laboratory"),
    Loinc("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.4, 4.5, 2,
         (0.6, 1.2), "laboratory"),
    Loinc("3094-0", "Urea nitrogen [Mass/volume] in Serum or Plasma", "mg/dL", 5, 60, 0, (7, 20),
         "laboratory"),
    Loinc("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum "
         "or Plasma by Creatinine-based formula (MDRD)", "mL/min/{1.73_m2}", 12, 130, 0,
         (60, 130), "laboratory"),
    Loinc("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 125, 152, 0, (135, 145),
         "laboratory"),
    Loinc("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 2.9, 6.2, 1,
         (3.5, 5.1), "laboratory"),
    Loinc("2075-0", "Chloride [Moles/volume] in Serum or Plasma", "mmol/L", 92, 112, 0, (98, 107),
         "laboratory"),
    Loinc("2028-9", "Carbon dioxide, total [Moles/volume] in Serum or Plasma", "mmol/L", 16, 34, 0,
         (22, 29), "laboratory"),
    Loinc("17861-6", "Calcium [Mass/volume] in Serum or Plasma", "mg/dL", 7.5, 11.5, 1,
         (8.6, 10.3), "laboratory"),
    Loinc("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL", 1.3, 3, 1, (1.7, 2.2),
         "laboratory"),
    Loinc("2777-1", "Phosphate [Mass/volume] in Serum or Plasma", "mg/dL", 1.8, 6, 1, (2.5, 4.5),
         "laboratory"),
    Loinc("3084-1", "Urate [Mass/volume] in Serum or Plasma", "mg/dL", 2.5, 11, 1, (3.5, 7.2),
         "laboratory"),
    Loinc("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 110, 320, 0,
         (125, 200), "laboratory"),
    Loinc("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", 22, 95, 0,
         (40, 90), "laboratory"),
    Loinc("13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation", "mg/dL",
         40, 220, 0, (50, 130), "laboratory"),
    Loinc("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", 40, 450, 0,
         (40, 150), "laboratory"),
    Loinc("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
         "U/L", 5, 180, 0, (7, 56), "laboratory"),
    Loinc("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
         "U/L", 5, 160, 0, (10, 40), "laboratory"),
    Loinc("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L",
         30, 260, 0, (44, 147), "laboratory"),
    Loinc("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma", "mg/dL", 0.1, 4, 1,
         (0.1, 1.2), "laboratory"),
    Loinc("2885-2", "Protein [Mass/volume] in Serum or Plasma", "g/dL", 5, 9, 1, (6, 8.3),
         "laboratory"),
    Loinc("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 2.2, 5.4, 1, (3.4, 5.4),
         "laboratory"),
    Loinc("2532-0", "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma", "U/L",
         90, 700, 0, (140, 280), "laboratory"),
    Loinc("2157-6", "Creatine kinase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 20,
         900, 0, (22, 198), "laboratory"),
    Loinc("10839-9", "Troponin I.cardiac [Mass/volume] in Serum or Plasma", "ng/mL", 0.001, 3, 3,
         (0, 0.04), "laboratory"),
    Loinc("30934-4", "Natriuretic peptide B [Mass/volume] in Serum or Plasma", "pg/mL", 5, 1800, 0,
         (0, 100), "laboratory"),
    Loinc("33762-6", "Natriuretic peptide.B prohormone N-Terminal [Mass/volume] in Serum or Plasma",
         "pg/mL", 10, 9000, 0, (0, 125), "laboratory"),
    Loinc("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0.1, 220, 1,
         (0, 10), "laboratory"),
    Loinc("30341-2", "Erythrocyte sedimentation rate", "mm/h", 1, 90, 0, (0, 20), "laboratory"),
    Loinc("5902-2", "Prothrombin time (PT)", "s", 9, 35, 1, (11, 13.5), "laboratory"),
    Loinc("6301-6", "INR in Platelet poor plasma by Coagulation assay", "{INR}", 0.8, 4.5, 2,
         (0.8, 1.1), "laboratory"),
    Loinc("3173-2", "aPTT in Blood by Coagulation assay", "s", 20, 70, 1, (25, 35), "laboratory"),
    Loinc("48065-7", "Fibrin D-dimer FEU [Mass/volume] in Platelet poor plasma", "ng/mL{FEU}", 100,
         4000, 0, (0, 500), "laboratory"),
    Loinc("2276-4", "Ferritin [Mass/volume] in Serum or Plasma", "ng/mL", 5, 800, 0, (24, 336),
         "laboratory"),
    Loinc("2498-4", "Iron [Mass/volume] in Serum or Plasma", "ug/dL", 20, 220, 0, (60, 170),
         "laboratory"),
    Loinc("2132-9", "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma", "pg/mL", 120, 1300,
         0, (200, 900), "laboratory"),
    Loinc("1989-3", "Calcidiol [Mass/volume] in Serum or Plasma", "ng/mL", 5, 90, 0, (30, 100),
         "laboratory"),
    Loinc("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.05, 12, 2,
         (0.4, 4), "laboratory"),
    Loinc("3024-7", "Thyroxine (T4) free [Mass/volume] in Serum or Plasma", "ng/dL", 0.4, 3, 2,
         (0.8, 1.8), "laboratory"),
    Loinc("2524-7", "Lactate [Moles/volume] in Serum or Plasma", "mmol/L", 0.4, 8, 1, (0.5, 2.2),
         "laboratory"),
    Loinc("2744-1", "pH of Arterial blood", "[pH]", 7.15, 7.6, 2, (7.35, 7.45), "laboratory"),
    Loinc("2019-8", "Carbon dioxide [Partial pressure] in Arterial blood", "mm[Hg]", 25, 70, 0,
         (35, 45), "laboratory"),
    Loinc("2703-7", "Oxygen [Partial pressure] in Arterial blood", "mm[Hg]", 50, 120, 0, (75, 100),
         "laboratory"),
)  # fmt: skip
# Measurements a radiologist or sonographer reports from the images.
IMAGING_MEASURES = (
    Loinc("10230-1", "Left ventricular Ejection fraction", "%", 15, 75, 0, (52, 72), "imaging"),
    Loinc("21889-1", "Size Tumor", "mm", 3, 95, 0, (0, 0), "imaging"),
    Loinc("33728-7", "Size.maximum dimension in Tumor", "mm", 4, 110, 0, (0, 0), "imaging"),
)  # fmt: skip
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_SYSTOLIC = Loinc("8480-6", "Systolic blood pressure", "mm[Hg]", 90, 190, 0, (90, 130),
                   "vital-signs")  # fmt: skip
BP_DIASTOLIC = Loinc("8462-4", "Diastolic blood pressure", "mm[Hg]", 50, 115, 0, (60, 85),
                    "vital-signs")  # fmt: skip
RADIOLOGY_NARRATIVE = ("18782-3", "Radiology Study observation (narrative)")
IMAGING_FINDING = ("59776-5", "Procedure findings Narrative")

# SNOMED CT findings with the body site they are usually seen in.
FINDINGS = (
    ("17621005", "Normal", "No acute abnormality."),
    ("233604007", "Pneumonia", "Consolidation of the right lower lobe consistent with pneumonia."),
    ("36118008", "Pneumothorax", "Small left apical pneumothorax, no mediastinal shift."),
    ("60046008", "Pleural effusion", "Moderate right pleural effusion with basal atelectasis."),
    ("125605004", "Fracture of bone", "Non-displaced fracture, cortical disruption visible."),
    ("230690007", "Cerebrovascular accident", "Hypodense area in the left MCA territory."),
    ("274100004", "Cerebral hemorrhage", "Acute intraparenchymal hemorrhage, 2 cm."),
    ("59282003", "Pulmonary embolism", "Filling defects in segmental pulmonary arteries."),
    ("95570007", "Kidney stone", "Non-obstructing calculus in the lower pole of the kidney."),
    ("197321007", "Steatosis of liver", "Diffusely increased liver echogenicity."),
    ("126713003", "Neoplasm of lung", "Spiculated nodule in the right upper lobe."),
)  # fmt: skip


class Modality(NamedTuple):
    code: str
    display: str
    procedure: tuple[str, str]  # SNOMED procedure for ServiceRequest.code
    sop_class: str  # storage SOP class UID
    body_sites: tuple[tuple[str, str], ...]  # SNOMED body structures


_CHEST = ("51185008", "Thoracic structure")
_HEAD = ("69536005", "Head structure")
_ABDOMEN = ("818983003", "Abdomen")
_KNEE = ("72696002", "Knee region structure")
_SPINE = ("421060004", "Structure of vertebral column")
_PELVIS = ("12921003", "Pelvis")
_HEART = ("80891009", "Heart structure")
MODALITIES = (
    Modality("CT", "Computed Tomography", ("77477000", "Computerized axial tomography"),
             "1.2.840.10008.5.1.4.1.1.2", (_CHEST, _HEAD, _ABDOMEN, _SPINE, _PELVIS)),
    Modality("MR", "Magnetic Resonance", ("113091000", "Magnetic resonance imaging"),
             "1.2.840.10008.5.1.4.1.1.4", (_HEAD, _SPINE, _KNEE, _ABDOMEN, _PELVIS)),
    Modality("CR", "Computed Radiography", ("363680008", "Radiographic imaging procedure"),
             "1.2.840.10008.5.1.4.1.1.1", (_CHEST, _KNEE, _SPINE, _PELVIS)),
    Modality("DX", "Digital Radiography", ("363680008", "Radiographic imaging procedure"),
             "1.2.840.10008.5.1.4.1.1.1.1", (_CHEST, _KNEE, _SPINE)),
    Modality("US", "Ultrasound", ("16310003", "Diagnostic ultrasonography"),
             "1.2.840.10008.5.1.4.1.1.6.1", (_ABDOMEN, _HEART, _PELVIS)),
)  # fmt: skip
# How often each modality is read remotely (CT and radiographs dominate teleradiology).
MODALITY_WEIGHTS = (38, 22, 15, 15, 10)

# SNOMED practice-setting specialties (PractitionerRole.specialty).
RADIOLOGY = ("394914008", "Radiology")
NUCLEAR_MEDICINE = ("394649004", "Nuclear medicine")
CLINICAL_SPECIALTIES = (
    ("394579002", "Cardiology"), ("394591006", "Neurology"), ("394802001", "General medicine"),
    ("394583002", "Endocrinology"), ("394584008", "Gastroenterology"),
    ("394609007", "General surgery"), ("394592004", "Clinical oncology"),
    ("394537008", "Pediatric specialty"), ("394801008", "Trauma & orthopedics"),
    ("418112009", "Pulmonary medicine"), ("394589003", "Nephrology"),
    ("394814009", "General practice"),
)  # fmt: skip

CONSULT_REASONS = (
    ("38341003", "Hypertensive disorder"), ("44054006", "Diabetes mellitus type 2"),
    ("84114007", "Heart failure"), ("49436004", "Atrial fibrillation"),
    ("13645005", "Chronic obstructive lung disease"), ("709044004", "Chronic kidney disease"),
    ("363346000", "Malignant neoplastic disease"), ("230690007", "Cerebrovascular accident"),
    ("69896004", "Rheumatoid arthritis"), ("235595009", "Gastroesophageal reflux disease"),
)  # fmt: skip
IMAGING_REASONS = (
    ("29857009", "Chest pain"), ("25064002", "Headache"), ("21522001", "Abdominal pain"),
    ("49727002", "Cough"), ("267036007", "Dyspnea"), ("161891005", "Backache"),
    ("417163006", "Traumatic or non-traumatic injury"), ("386661006", "Fever"),
)  # fmt: skip

SERVICES = {
    "remote-consultation": "Remote consultation between institutions",
    "remote-diagnosis": "Remote diagnosis by an invited upper-level institution",
    "teleradiology": "Teleradiology reading",
}
PURPOSES = (
    ("primary-interpretation", "Primary interpretation"),
    ("second-opinion", "Re-interpretation for a second opinion"),
    ("tele-expertise", "Tele-expertise between several radiologists"),
)  # fmt: skip
PURPOSE_WEIGHTS = (80, 15, 5)
LANGUAGES = {"ro": ("ro-RO", "Romanian"), "cn": ("zh-CN", "Chinese (China)"),
             "other": ("en-GB", "English (United Kingdom)")}  # fmt: skip
