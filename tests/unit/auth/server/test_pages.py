"""The login, consent and error pages (issue 7.5; checklist S20 clickjacking, S25 consent UI):
the form contract the POST handlers read, accessibility structure, escaping, the three
languages and the security headers."""

# ruff: noqa: RUF001

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from fhir_server.auth.server.pages import (
    ERROR_INVALID_CREDENTIALS,
    ERROR_PATIENT_REQUIRED,
    LANGUAGES,
    AppInfo,
    PatientChoice,
    consent_choices,
    consent_page,
    error_page,
    login_page,
    page_headers,
    redirect_source,
)
from tests.unit.auth.server.html_checks import Form, Page, assert_accessible, read_page

APP = AppInfo(client_id="growth-chart", name="Growth Chart")
REQUESTED = "launch openid fhirUser offline_access patient/Observation.rs patient/Condition.read "
REQUESTED += "user/*.cruds"
EVIL = '<script>alert(1)</script>" onfocus="x'
PATIENTS = [
    PatientChoice("p1", "Ana Popescu", "1970-01-31"),
    PatientChoice("p2", "王小明", None),
]

# Words a reader of each language must find (written out, not looked up, to catch mistakes).
LOGIN_WORDS = {
    "en": ("Sign in", "User name", "Password", "Growth Chart wants to access"),
    "zh-CN": ("登录", "用户名", "密码", "请求访问本服务器上的健康记录"),
    "ro": ("Autentificare", "Nume de utilizator", "Parolă", "solicită acces la datele medicale"),
}
CONSENT_WORDS = {
    "en": (
        "Allow Growth Chart to access your data?",
        "Signed in as",
        "Access requested by the app",
        "Read and search the patient's observations (test results, vital signs…)",
        "Laboratory results only",
        "Choose a patient",
        "born 1970-01-31",
        "Allow",
        "Deny",
    ),
    "zh-CN": (
        "是否允许Growth Chart访问您的数据？",
        "当前登录用户：",
        "应用请求的访问权限",
        "读取和搜索患者的观察结果（检验结果、生命体征等）",
        "仅限检验结果",
        "选择患者",
        "出生日期 1970-01-31",
        "允许",
        "拒绝",
    ),
    "ro": (
        "Permiteți aplicației Growth Chart accesul la datele dumneavoastră?",
        "Utilizator conectat:",
        "Accesul solicitat de aplicație",
        "Citește și caută observațiile din dosarul pacientului (rezultate de analize",
        "Doar rezultatele de laborator",
        "Alegeți pacientul",
        "data nașterii 1970-01-31",
        "Permiteți",
        "Refuzați",
    ),
}
OFFLINE_WORDS = {
    "en": "it will keep access to the data you allow, even when you are not using it",
    "zh-CN": "此应用请求离线访问",
    "ro": "va păstra accesul la datele pe care le permiteți",
}


def _login(lang: str = "en", **overrides: object) -> str:
    args: dict[str, object] = {
        "app": APP,
        "action": "/auth/login",
        "request_id": "req-1",
        "csrf": "tok-1",
    }
    args.update(overrides)
    return login_page(lang, **args)  # type: ignore[arg-type]


def _consent(lang: str = "en", **overrides: object) -> str:
    args: dict[str, object] = {
        "app": APP,
        "user": "alice",
        "choices": consent_choices(REQUESTED.split(), lang),
        "action": "/auth/authorize",
        "request_id": "req-1",
        "csrf": "tok-1",
        "patients": PATIENTS,
        "picker_action": "/auth/patients",
        "offline": True,
    }
    args.update(overrides)
    return consent_page(lang, **args)  # type: ignore[arg-type]


def _post_form(page: Page) -> Form:
    [form] = [f for f in page.forms if f.attrs.get("method") == "post"]
    return form


# ---------------------------------------------------------------------------- login


def test_login_form_contract() -> None:
    page = assert_accessible(_login(username="bob"), "en")
    form = _post_form(page)
    assert form.attrs["action"] == "/auth/login"
    assert form.submitted() == [
        ("request", "req-1"),
        ("csrf", "tok-1"),
        ("username", "bob"),
        ("password", ""),
    ]
    [password] = [c for c in form.controls if c.get("name") == "password"]
    assert password.get("type") == "password"
    assert password.get("autocomplete") == "current-password"
    assert [c.get("type") for c in form.controls if c.tag == "button"] == ["submit"]
    assert page.alerts == []


def test_login_error_is_an_alert_tied_to_the_inputs() -> None:
    html = _login(error=ERROR_INVALID_CREDENTIALS)
    page = assert_accessible(html, "en")
    [alert] = page.alerts
    for control in _post_form(page).controls:
        if control.get("name") in ("username", "password"):
            assert control.get("aria-describedby") == alert
            assert control.get("aria-invalid") == "true"
    assert "The user name or password is incorrect." in page.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_login_page_in_each_language(lang: str) -> None:
    page = assert_accessible(_login(lang, error=ERROR_INVALID_CREDENTIALS), lang)
    for words in LOGIN_WORDS[lang]:
        assert words in page.text
    assert "growth-chart" in page.text
    assert page.title.startswith(LOGIN_WORDS[lang][0])


# ---------------------------------------------------------------------------- consent


def test_consent_default_submission_grants_what_was_requested() -> None:
    page = assert_accessible(_consent(), "en")
    form = _post_form(page)
    assert form.attrs["action"] == "/auth/authorize"
    assert form.values("request") == ["req-1"]
    assert form.values("csrf") == ["tok-1"]
    assert form.values("scope") == REQUESTED.split()
    assert form.values("patient") == []  # two patients: none preselected
    decisions = [(c.get("name"), c.get("value")) for c in form.controls if c.tag == "button"]
    assert decisions == [("decision", "approve"), ("decision", "deny")]


def test_required_scopes_are_disabled_boxes_plus_hidden_fields() -> None:
    page = read_page(_consent())
    form = _post_form(page)
    disabled = [c for c in form.controls if c.has("disabled")]
    assert len(disabled) == 3  # launch, openid, fhirUser
    assert all(c.has("checked") and c.get("name") is None for c in disabled)
    hidden = [c.get("value") for c in form.controls if c.get("type") == "hidden"]
    assert hidden == ["req-1", "tok-1", "launch", "openid", "fhirUser"]


def test_every_requested_scope_and_category_can_be_chosen() -> None:
    form = _post_form(read_page(_consent()))
    boxes = {c.get("value"): c for c in form.controls if c.get("type") == "checkbox"}
    assert "offline_access" in boxes and not boxes["offline_access"].has("disabled")
    lab = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
    lab += "observation-category|laboratory"
    assert boxes[lab].get("name") == "scope" and not boxes[lab].has("checked")
    health_concern = "patient/Condition.rs?category=http://hl7.org/fhir/us/core/CodeSystem/"
    health_concern += "condition-category|health-concern"
    assert health_concern in boxes


def test_single_patient_is_preselected() -> None:
    form = _post_form(read_page(_consent(patients=PATIENTS[:1])))
    assert form.values("patient") == ["p1"]


def test_patient_picker_search_form() -> None:
    page = assert_accessible(_consent(patient_query="Ana"), "en")
    [search] = [f for f in page.forms if f.attrs.get("method") == "get"]
    assert search.attrs["action"] == "/auth/patients"
    assert search.submitted() == [("request", "req-1"), ("q", "Ana")]
    radios = [c for c in _post_form(page).controls if c.get("type") == "radio"]
    assert [(r.get("name"), r.get("value")) for r in radios] == [
        ("patient", "p1"),
        ("patient", "p2"),
    ]


def test_no_patient_matches() -> None:
    page = assert_accessible(_consent(patients=[]), "en")
    assert "No patients match your search." in page.text
    assert not [c for c in page.controls if c.get("type") == "radio"]


def test_without_picker() -> None:
    page = assert_accessible(_consent(patients=None, picker_action=None, offline=False), "en")
    assert len(page.forms) == 1
    assert not [c for c in page.controls if c.get("name") in ("patient", "q")]
    assert "offline access" not in page.text


def test_offline_notice_only_when_offline() -> None:
    assert OFFLINE_WORDS["en"] in read_page(_consent(offline=True)).text
    assert OFFLINE_WORDS["en"] not in read_page(_consent(offline=False)).text


def test_consent_error_is_an_alert_describing_the_groups() -> None:
    page = assert_accessible(_consent(error=ERROR_PATIENT_REQUIRED), "en")
    [alert] = page.alerts
    assert page.described_by.count(alert) == 2  # the patient and the scope fieldsets
    assert "Choose a patient before allowing access." in page.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_consent_page_in_each_language(lang: str) -> None:
    page = assert_accessible(_consent(lang, error=ERROR_PATIENT_REQUIRED), lang)
    for words in CONSENT_WORDS[lang]:
        assert words in page.text
    assert OFFLINE_WORDS[lang] in page.text
    assert "growth-chart" in page.text and "alice" in page.text
    assert page.title.startswith(CONSENT_WORDS[lang][0])


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("lang", "title", "message"),
    [
        ("en", "Unknown app", "is not registered with this server"),
        ("zh-CN", "未知应用", "未在本服务器注册"),
        ("ro", "Aplicație necunoscută", "nu este înregistrată pe acest server"),
    ],
)
def test_error_page_from_keys(lang: str, title: str, message: str) -> None:
    html = error_page(lang, title="unknown_client_title", message="unknown_client_message")
    page = assert_accessible(html, lang)
    assert page.h1 == [title]
    assert message in page.text
    assert page.forms == []


def test_error_page_with_given_text_is_escaped() -> None:
    page = assert_accessible(error_page("en", title="Bad <b>", message=EVIL), "en")
    assert page.h1 == ["Bad <b>"]
    assert "<script>" not in error_page("en", title="Bad <b>", message=EVIL)


# ---------------------------------------------------------------------------- escaping


def test_user_strings_are_escaped_everywhere() -> None:
    evil_app = AppInfo(client_id=EVIL, name=EVIL)
    login = _login(app=evil_app, username=EVIL, error=EVIL, request_id=EVIL, csrf=EVIL)
    consent = _consent(
        app=evil_app,
        user=EVIL,
        patients=[PatientChoice(EVIL, EVIL, EVIL)],
        patient_query=EVIL,
        error=EVIL,
        request_id=EVIL,
        csrf=EVIL,
        choices=consent_choices([EVIL, "patient/Observation.rs"], "en"),
    )
    for html, lang in ((login, "en"), (consent, "en")):
        assert "<script>" not in html
        assert 'onfocus="x' not in html
        page = assert_accessible(html, lang)  # no stray attributes or elements
        assert page.text.count("<script>alert(1)</script>") >= 3
    assert _post_form(read_page(login)).values("username") == [EVIL]
    assert _post_form(read_page(consent)).values("patient") == [EVIL]


# ---------------------------------------------------------------------------- headers


def test_page_headers() -> None:
    headers = page_headers()
    policy = dict(d.split(" ", 1) for d in headers["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert "script-src" not in policy
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Pragma"] == "no-cache"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    # The one inline stylesheet is the one the policy allows, on every page.
    for html in (_login(), _consent(), error_page("en", title="t", message="m")):
        [css] = re.findall(r"<style>(.*?)</style>", html, re.S)
        digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
        assert policy["style-src"] == f"'sha256-{digest}'"
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in html


def test_form_action_admits_the_redirect_target() -> None:
    policy = page_headers(["https://app.example:8443", "com.example.app:"])
    assert (
        "form-action 'self' https://app.example:8443 com.example.app:;"
        in (policy["Content-Security-Policy"])
    )


@pytest.mark.parametrize(
    "target", ["https://a.example; script-src *", "javascript:", "https://a.example\r\nX: y", ""]
)
def test_form_action_refuses_what_is_not_a_source(target: str) -> None:
    assert "form-action 'self';" in page_headers([target])["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://app.example/callback?x=1", "https://app.example"),
        ("https://App.Example:8443/cb", "https://app.example:8443"),
        ("http://127.0.0.1:53123/", "http://127.0.0.1:53123"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("com.example.app:/oauth2redirect", "com.example.app:"),
        ("javascript:alert(1)", None),
        ("data:text/html,x", None),
        ("https:///nohost", None),
        ("https://a.example:99999/", None),
        ("/relative", None),
    ],
)
def test_redirect_source(uri: str, source: str | None) -> None:
    assert redirect_source(uri) == source
