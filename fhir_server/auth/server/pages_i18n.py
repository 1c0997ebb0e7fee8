"""The words of the login, consent and error pages in English, Simplified Chinese and Romanian,
and the choice between them by ``Accept-Language`` (issue 7 point 5).

Kept as plain data beside one negotiation function so that a missing translation is a test
failure (every key must exist in every language), not a page that silently falls back to
English. Templates hold no HTML: :mod:`.pages` escapes them and fills ``{placeholders}`` with
already-escaped fragments. Romanian uses the comma-below letters ș and ț (U+0219, U+021B).
"""

# The Chinese strings rightly use full-width punctuation (comma, colon, brackets).
# ruff: noqa: RUF001

from __future__ import annotations

#: The page languages, in the tags used for ``<html lang>`` (BCP 47).
LANGUAGES = ("en", "zh-CN", "ro")
DEFAULT_LANGUAGE = "en"

# Error keys the server may pass as ``error=`` / ``title=`` / ``message=``: translated here.
ERROR_INVALID_CREDENTIALS = "invalid_credentials"
ERROR_CSRF = "csrf_failed"
ERROR_PATIENT_REQUIRED = "patient_required"
ERROR_NO_SCOPE = "no_scope_selected"

#: ``key -> (en, zh-CN, ro)``.
MESSAGES: dict[str, tuple[str, str, str]] = {
    "site_name": ("FHIR server", "FHIR 服务器", "Server FHIR"),
    "login_title": ("Sign in", "登录", "Autentificare"),
    "login_intro": (
        "{app} wants to access health records on this server. Sign in to continue.",
        "{app}请求访问本服务器上的健康记录。请登录以继续。",
        "{app} solicită acces la datele medicale de pe acest server. Autentificați-vă pentru a "
        "continua.",
    ),
    "app_label": ("Application", "应用", "Aplicație"),
    "client_id_label": ("Client ID", "客户端 ID", "ID client"),
    "username_label": ("User name", "用户名", "Nume de utilizator"),
    "password_label": ("Password", "密码", "Parolă"),
    "sign_in_button": ("Sign in", "登录", "Autentificare"),
    "error_heading": ("There is a problem", "出现问题", "A apărut o problemă"),
    "consent_title": (
        "Allow {app} to access your data?",
        "是否允许{app}访问您的数据？",
        "Permiteți aplicației {app} accesul la datele dumneavoastră?",
    ),
    "signed_in_as": ("Signed in as {user}", "当前登录用户：{user}", "Utilizator conectat: {user}"),
    "scopes_legend": (
        "Access requested by the app",
        "应用请求的访问权限",
        "Accesul solicitat de aplicație",
    ),
    "scopes_help": (
        "Untick anything you do not want to share. To share only some categories of a record "
        "type, untick the type and tick the categories you want.",
        "取消勾选您不想共享的内容。如只想共享某类记录中的部分类别，请取消勾选该类记录，"
        "再勾选您想共享的类别。",
        "Debifați tot ce nu doriți să partajați. Pentru a partaja doar anumite categorii dintr-un "
        "tip de date, debifați tipul și bifați categoriile dorite.",
    ),
    "required_note": ("(always needed)", "（必需）", "(obligatoriu)"),
    "categories_legend": (
        "Or share only these categories:",
        "或仅共享以下类别：",
        "Sau partajați doar aceste categorii:",
    ),
    "scope_other": ("Other access: {scope}", "其他访问：{scope}", "Alt acces: {scope}"),
    "scope_only": ("{base} — {only}", "{base}（{only}）", "{base} — {only}"),
    "scope_only_matching": (
        "only records where {param} is {value}",
        "仅限{param}为{value}的记录",
        "doar datele în care {param} este {value}",
    ),
    "category_only": ("{category} only", "仅限{category}", "doar {category}"),
    "patient_heading": ("Choose a patient", "选择患者", "Alegeți pacientul"),
    "patient_legend": ("Patient", "患者", "Pacient"),
    "patient_search_label": ("Find a patient by name", "按姓名查找患者", "Căutați după nume"),
    "patient_search_button": ("Search", "搜索", "Căutare"),
    "no_patients": (
        "No patients match your search.",
        "没有符合搜索条件的患者。",
        "Niciun pacient nu corespunde căutării.",
    ),
    "born": ("born {date}", "出生日期 {date}", "data nașterii {date}"),
    "patient_id": ("ID {id}", "编号 {id}", "ID {id}"),
    "patient_details": ("({details})", "（{details}）", "({details})"),
    "list_separator": (", ", "，", ", "),
    "offline_heading": ("Lasting access", "长期访问", "Acces de durată"),
    "offline_notice": (
        "This app asks for offline access: it will keep access to the data you allow, even when "
        "you are not using it, until you revoke it.",
        "此应用请求离线访问：即使您没有在使用它，它也会一直保有您所允许数据的访问权限，"
        "直到您撤销为止。",
        "Această aplicație solicită acces offline: va păstra accesul la datele pe care le "
        "permiteți, chiar și când nu o folosiți, până când îl revocați.",
    ),
    "approve_button": ("Allow", "允许", "Permiteți"),
    "deny_button": ("Deny", "拒绝", "Refuzați"),
    "error_hint": (
        "Go back to the app and try again, or contact the app's developer.",
        "请返回应用重试，或联系该应用的开发者。",
        "Reveniți la aplicație și încercați din nou sau contactați dezvoltatorul aplicației.",
    ),
    ERROR_INVALID_CREDENTIALS: (
        "The user name or password is incorrect.",
        "用户名或密码不正确。",
        "Numele de utilizator sau parola sunt incorecte.",
    ),
    ERROR_CSRF: (
        "This form could not be verified. Go back to the app and start again.",
        "无法验证此表单。请返回应用重新开始。",
        "Formularul nu a putut fi verificat. Reveniți la aplicație și începeți din nou.",
    ),
    ERROR_PATIENT_REQUIRED: (
        "Choose a patient before allowing access.",
        "允许访问前，请先选择患者。",
        "Alegeți un pacient înainte de a permite accesul.",
    ),
    ERROR_NO_SCOPE: (
        "Tick at least one kind of access, or choose Deny.",
        "请至少勾选一项访问权限，或选择“拒绝”。",
        "Bifați cel puțin un tip de acces sau alegeți „Refuzați”.",
    ),
    "unknown_client_title": ("Unknown app", "未知应用", "Aplicație necunoscută"),
    "unknown_client_message": (
        "The app that sent you here is not registered with this server, so it cannot be given "
        "access.",
        "将您引导至此的应用未在本服务器注册，因此无法获得访问权限。",
        "Aplicația care v-a trimis aici nu este înregistrată pe acest server, deci nu poate primi "
        "acces.",
    ),
    "invalid_redirect_title": (
        "Unrecognised return address",
        "无法识别的返回地址",
        "Adresă de întoarcere necunoscută",
    ),
    "invalid_redirect_message": (
        "The app asked to send you back to an address that is not registered for it. For your "
        "safety, you have not been sent there.",
        "该应用要求将您转回一个未为其注册的地址。为了您的安全，系统没有将您转到该地址。",
        "Aplicația a cerut să fiți trimis înapoi la o adresă care nu este înregistrată pentru ea. "
        "Pentru siguranța dumneavoastră, nu ați fost trimis acolo.",
    ),
    "expired_title": ("Request expired", "请求已过期", "Cerere expirată"),
    "expired_message": (
        "This sign-in request has expired or was already used.",
        "此登录请求已过期或已被使用。",
        "Această cerere de autentificare a expirat sau a fost deja folosită.",
    ),
    "invalid_request_title": ("Invalid request", "无效请求", "Cerere nevalidă"),
    "invalid_request_message": (
        "The app's authorization request is missing information or is malformed.",
        "该应用的授权请求缺少信息或格式错误。",
        "Cererea de autorizare a aplicației este incompletă sau greșit formată.",
    ),
}


def message(key: str, lang: str) -> str:
    """The text of ``key`` in ``lang`` (one of :data:`LANGUAGES`); KeyError if unknown."""
    return MESSAGES[key][LANGUAGES.index(lang)]


def localize(key_or_text: str, lang: str) -> str:
    """A message key translated, or any other text as given (already in the user's language)."""
    return message(key_or_text, lang) if key_or_text in MESSAGES else key_or_text


# --------------------------------------------------------------------------------------------
# The words of scopes (used by :mod:`.scope_text`), each ``(en, zh-CN, ro)``
# --------------------------------------------------------------------------------------------

#: The SMART interaction letters as verbs (Romanian: 3rd person, "the app reads…").
VERBS: dict[str, tuple[str, str, str]] = {
    "c": ("create", "创建", "creează"),
    "r": ("read", "读取", "citește"),
    "u": ("update", "更新", "actualizează"),
    "d": ("delete", "删除", "șterge"),
    "s": ("search", "搜索", "caută"),
}

#: Scopes that are not resource scopes.
SCOPE_PHRASES: dict[str, tuple[str, str, str]] = {
    "openid": ("Know who you are", "知道您是谁", "Află cine sunteți"),
    "fhirUser": (
        "Know who you are: your own record (as a patient or practitioner)",
        "知道您是谁：您本人的记录（患者或医务人员）",
        "Află cine sunteți: propria dumneavoastră fișă (de pacient sau de medic)",
    ),
    "profile": ("See your name and profile", "查看您的姓名和个人资料", "Vede numele și profilul"),
    "launch": (
        "Use the patient and visit the app was opened from",
        "使用打开该应用时所在的患者和就诊",
        "Folosește pacientul și consultația din care a fost deschisă",
    ),
    "launch/patient": ("Choose a patient", "选择患者", "Vă cere să alegeți un pacient"),
    "launch/encounter": (
        "Choose an encounter (visit)",
        "选择一次就诊",
        "Vă cere să alegeți o consultație",
    ),
    "offline_access": (
        "Keep access when you are not using the app (until you revoke it)",
        "在您不使用该应用时继续保有访问权限（直到您撤销）",
        "Păstrează accesul când nu folosiți aplicația (până îl revocați)",
    ),
    "online_access": (
        "Keep access while you are using the app",
        "在您使用该应用期间保有访问权限",
        "Păstrează accesul cât timp folosiți aplicația",
    ),
}

#: Resource types as plural nouns (Romanian with the definite article: "observațiile").
RESOURCE_NOUNS: dict[str, tuple[str, str, str]] = {
    "AllergyIntolerance": ("allergies and intolerances", "过敏和不耐受记录",
                           "alergiile și intoleranțele"),
    "Appointment": ("appointments", "预约", "programările"),
    "AuditEvent": ("audit log entries", "审计日志", "înregistrările din jurnalul de audit"),
    "Binary": ("files", "文件", "fișierele"),
    "CarePlan": ("care plans", "护理计划", "planurile de îngrijire"),
    "CareTeam": ("care teams", "护理团队", "echipele de îngrijire"),
    "Communication": ("messages", "通信记录", "comunicările"),
    "Condition": ("conditions", "健康状况", "afecțiunile"),
    "Consent": ("consents", "知情同意书", "consimțămintele"),
    "Coverage": ("insurance coverage", "保险信息", "asigurările"),
    "Device": ("devices and implants", "设备和植入物", "dispozitivele și implanturile"),
    "DiagnosticReport": ("diagnostic reports", "诊断报告", "rapoartele de diagnostic"),
    "DocumentReference": ("documents and clinical notes", "文档和临床记录",
                          "documentele și notele clinice"),
    "Encounter": ("encounters (visits and stays)", "就诊记录", "consultațiile și internările"),
    "Goal": ("goals", "健康目标", "obiectivele de sănătate"),
    "Group": ("groups", "分组", "grupurile"),
    "ImagingStudy": ("imaging studies", "影像检查", "studiile imagistice"),
    "Immunization": ("immunizations", "免疫接种记录", "vaccinările"),
    "Location": ("locations", "地点", "locațiile"),
    "Media": ("photos and media", "照片和媒体", "fotografiile și fișierele media"),
    "Medication": ("medications", "药品", "medicamentele"),
    "MedicationAdministration": ("medication administrations", "给药记录",
                                 "administrările de medicamente"),
    "MedicationDispense": ("medication dispenses", "配药记录", "eliberările de medicamente"),
    "MedicationRequest": ("prescriptions and medication orders", "处方和用药医嘱",
                          "rețetele și prescripțiile de medicamente"),
    "MedicationStatement": ("medication statements", "用药记录",
                            "declarațiile privind medicația"),
    "Observation": ("observations", "观察结果", "observațiile"),
    "Organization": ("organizations", "机构", "organizațiile"),
    "Patient": ("demographic details", "基本信息", "datele demografice"),
    "Practitioner": ("practitioners", "医务人员", "profesioniștii din sănătate"),
    "PractitionerRole": ("practitioner roles", "医务人员角色",
                         "rolurile profesioniștilor din sănătate"),
    "Procedure": ("procedures", "操作和手术", "procedurile"),
    "Provenance": ("provenance records (who changed what)", "来源记录（谁修改了什么）",
                   "înregistrările de proveniență (cine ce a modificat)"),
    "Questionnaire": ("questionnaires", "问卷", "chestionarele"),
    "QuestionnaireResponse": ("questionnaire answers", "问卷回答", "răspunsurile la chestionare"),
    "RelatedPerson": ("related people (family, caregivers)", "相关人员（家属、照护者）",
                      "persoanele apropiate (familie, îngrijitori)"),
    "Schedule": ("schedules", "排班", "programele de lucru"),
    "ServiceRequest": ("orders and referrals", "检查申请和转诊",
                       "trimiterile și solicitările de servicii"),
    "Slot": ("appointment slots", "预约时段", "intervalele de programare"),
    "Specimen": ("specimens", "标本", "probele biologice"),
    "Task": ("tasks", "任务", "sarcinile"),
    "Admin": ("users and apps of this server", "本服务器的用户和应用",
              "utilizatorii și aplicațiile acestui server"),
    "Launch": ("app launches", "应用启动上下文", "lansările de aplicații"),
}  # fmt: skip

#: What a broad type holds, shown after its noun when the scope is not narrowed.
RESOURCE_HINTS: dict[str, tuple[str, str, str]] = {
    "Observation": (
        "(test results, vital signs…)",
        "（检验结果、生命体征等）",
        "(rezultate de analize, semne vitale…)",
    ),
    "Condition": (
        "(problems, diagnoses and health concerns)",
        "（问题、诊断和健康关注）",
        "(probleme, diagnostice și preocupări de sănătate)",
    ),
}

_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
_CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_US_CORE_CONDITION_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"

#: The granular categories offered under a resource-level scope, as ``(system, code)``.
OBSERVATION_CATEGORIES: tuple[tuple[str, str], ...] = (
    (_OBSERVATION_CATEGORY, "laboratory"),
    (_OBSERVATION_CATEGORY, "vital-signs"),
    (_OBSERVATION_CATEGORY, "social-history"),
    (_OBSERVATION_CATEGORY, "survey"),
    (_US_CORE_CATEGORY, "clinical-test"),
    (_US_CORE_CATEGORY, "sdoh"),
)
CONDITION_CATEGORIES: tuple[tuple[str, str], ...] = (
    (_CONDITION_CATEGORY, "problem-list-item"),
    (_CONDITION_CATEGORY, "encounter-diagnosis"),
    (_US_CORE_CONDITION_CATEGORY, "health-concern"),
)

#: Category codes (observation-category, US Core, condition-category) in words.
CATEGORY_LABELS: dict[str, tuple[str, str, str]] = {
    "laboratory": ("laboratory results", "检验结果", "rezultatele de laborator"),
    "vital-signs": ("vital signs", "生命体征", "semnele vitale"),
    "social-history": ("social history (such as smoking)", "社会史（如吸烟情况）",
                       "istoricul social (de exemplu fumatul)"),
    "survey": ("survey and questionnaire answers", "问卷调查结果", "răspunsurile la chestionare"),
    "clinical-test": ("clinical test results", "临床检查结果", "rezultatele testelor clinice"),
    "sdoh": ("social determinants of health", "健康的社会决定因素",
             "determinanții sociali ai sănătății"),
    "imaging": ("imaging results", "影像结果", "rezultatele imagistice"),
    "procedure": ("procedure results", "操作结果", "rezultatele procedurilor"),
    "exam": ("physical examination findings", "体格检查结果", "constatările examenului fizic"),
    "therapy": ("therapy results", "治疗结果", "rezultatele terapiilor"),
    "activity": ("physical activity", "身体活动", "activitatea fizică"),
    "problem-list-item": ("problem list", "问题清单", "lista de probleme"),
    "encounter-diagnosis": ("encounter diagnoses", "就诊诊断", "diagnosticele din consultații"),
    "health-concern": ("health concerns", "健康关注问题", "preocupările de sănătate"),
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Accept-Language (RFC 9110 §12.5.4, basic filtering of RFC 4647 §3.3.1)
# --------------------------------------------------------------------------------------------

_MAX_HEADER = 4096
_TRADITIONAL_CHINESE = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")


def _match(tag: str) -> str | None:
    """Our language for one lower-cased language range, or None.

    Any ``zh`` range but the Traditional ones (``zh-Hant*``, ``zh-TW``, ``zh-HK``, ``zh-MO``)
    gets Simplified Chinese: a reader who prefers Traditional script falls through to their next
    preference (a bare ``zh`` there still matches)."""
    primary = tag.split("-", 1)[0]
    if tag == "*" or primary == "en":
        return "en"
    if primary == "ro":
        return "ro"
    if primary == "zh" and not tag.startswith(_TRADITIONAL_CHINESE):
        return "zh-CN"
    return None


def _weight(params: list[str]) -> float:
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return 0.0
            return q if 0.0 <= q <= 1.0 else 0.0
    return 1.0


def negotiate_language(accept_language: str | None) -> str:
    """The best of :data:`LANGUAGES` for an ``Accept-Language`` header; English by default.

    Ranges are tried by descending q-value, ties in header order; ``q=0`` means "not this one";
    malformed entries are ignored, as RFC 9110 lets a server do."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    ranges: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language[:_MAX_HEADER].split(",")):
        tag, *params = item.split(";")
        tag = tag.strip().lower()
        weight = _weight(params)
        if tag and weight > 0:
            ranges.append((-weight, position, tag))
    for _, _, tag in sorted(ranges):
        if (lang := _match(tag)) is not None:
            return lang
    return DEFAULT_LANGUAGE
