"""The server-rendered pages of the SMART authorization server: login, consent (with the patient
picker) and the errors that must not redirect (issue 7 point 5; checklist S20, S25).

Pure functions returning HTML strings and header dicts, so the Starlette routes stay thin and
the pages can be tested without a server. No JavaScript at all (the policy forbids scripts),
no template engine: every value that did not come from this module goes through
:func:`html.escape`. The one stylesheet is inline and allowed by its hash, so the pages need no
static-file route. Form field names are a contract with the POST handlers: ``username``,
``password``, ``request``, ``csrf`` (login); ``request``, ``csrf``, ``scope`` (repeated),
``patient``, ``decision`` = ``approve`` | ``deny`` (consent); ``q``, ``request`` (picker GET).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from fhir_server.auth.server.pages_i18n import (
    ERROR_CSRF,
    ERROR_INVALID_CREDENTIALS,
    ERROR_NO_SCOPE,
    ERROR_PATIENT_REQUIRED,
    LANGUAGES,
    localize,
    message,
    negotiate_language,
)
from fhir_server.auth.server.scope_text import ScopeChoice, consent_choices, describe_scope

__all__ = [
    "ERROR_CSRF",
    "ERROR_INVALID_CREDENTIALS",
    "ERROR_NO_SCOPE",
    "ERROR_PATIENT_REQUIRED",
    "LANGUAGES",
    "AppInfo",
    "PatientChoice",
    "ScopeChoice",
    "consent_choices",
    "consent_page",
    "describe_scope",
    "error_page",
    "login_page",
    "negotiate_language",
    "page_headers",
    "redirect_source",
]


@dataclass(frozen=True)
class AppInfo:
    """The client asking for access, as shown to the user."""

    client_id: str
    name: str


@dataclass(frozen=True)
class PatientChoice:
    """One row of the patient picker; ``birth_date`` as FHIR gives it (``1970-01-31``)."""

    id: str
    name: str
    birth_date: str | None = None


# Contrast: text #1a1a1a and links/buttons #0b4f8a on white are above 7:1 (WCAG AAA).
_STYLE = (
    "body{margin:0;font:1rem/1.5 system-ui,-apple-system,'Segoe UI','PingFang SC',"
    "'Microsoft YaHei','Noto Sans CJK SC',sans-serif;color:#1a1a1a;background:#eef0f3}"
    "main{max-width:40rem;margin:0 auto;padding:1.5rem 1rem;background:#fff;min-height:100vh;"
    "box-sizing:border-box}"
    "h1{font-size:1.5rem;line-height:1.3;margin:0 0 1rem}h2{font-size:1.15rem;margin:0 0 .5rem}"
    ".app{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:0 0 1rem}"
    "dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}"
    ".field{margin:0 0 1rem}.field label{display:block;font-weight:600;margin:0 0 .25rem}"
    "input[type=text],input[type=password],input[type=search]{width:100%;box-sizing:border-box;"
    "padding:.5rem;font:inherit;color:inherit;border:2px solid #5a5a5a;border-radius:4px}"
    "input[type=checkbox],input[type=radio]{width:1.25rem;height:1.25rem;margin:0 .5rem 0 0;"
    "vertical-align:middle}"
    "fieldset{border:1px solid #6b6b6b;border-radius:4px;margin:0 0 1rem;padding:.5rem 1rem}"
    "legend{font-weight:600;padding:0 .25rem}"
    ".choices{list-style:none;margin:0;padding:0}.choices li{margin:.5rem 0}"
    ".categories{margin:.5rem 0 0 1.75rem;border-style:dashed}"
    "code{font-size:.85em;color:#333;overflow-wrap:anywhere}.muted{color:#474747}"
    ".error{border-left:4px solid #b00020;background:#fdecee;color:#5c0011;padding:.5rem 1rem;"
    "margin:0 0 1rem}"
    ".notice{border-left:4px solid #8a5300;background:#fff4e0;padding:.5rem 1rem;margin:0 0 1rem}"
    ".search{margin:0 0 1rem}.actions{display:flex;flex-wrap:wrap;gap:.75rem;margin:1rem 0}"
    "button{font:inherit;padding:.6rem 1.25rem;border-radius:4px;border:2px solid #0b4f8a;"
    "background:#0b4f8a;color:#fff;cursor:pointer}"
    "button.secondary{background:#fff;color:#0b4f8a}"
    ":focus-visible{outline:3px solid #1a1a1a;outline-offset:2px}"
)

_SOURCE = re.compile(r"[a-z][a-z0-9+.\-]*:(//[A-Za-z0-9.\-\[\]:]+)?")
_ERROR_ID = "page-error"
#: Schemes that must never become form targets, whatever a registration says.
_UNSAFE_SCHEMES = frozenset(("javascript", "data", "blob", "filesystem", "about", "vbscript"))


def _style_hash() -> str:
    digest = hashlib.sha256(_STYLE.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def redirect_source(redirect_uri: str) -> str | None:
    """The CSP source that admits ``redirect_uri`` as a form target: its origin
    (``https://app.example:8443``), or ``scheme:`` for a native app's private-use scheme.

    Chrome and Safari apply ``form-action`` to the redirect that answers a form submission, so
    the consent page must name the app's redirect target or the final 302 is silently blocked
    (w3c/webappsec-csp#8). None when the URI has no usable origin."""
    try:
        parts = urlsplit(redirect_uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not scheme or scheme in _UNSAFE_SCHEMES:
        return None
    if scheme in ("http", "https"):
        if not parts.hostname:
            return None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        source = f"{scheme}://{host}" + (f":{port}" if port is not None else "")
    else:
        source = f"{scheme}:"
    return source if _SOURCE.fullmatch(source) else None


def page_headers(form_targets: Iterable[str] = ()) -> dict[str, str]:
    """The response headers of every page: nothing may load but the inline style, forms post
    only to this server (plus ``form_targets``, see :func:`redirect_source`), no framing
    (clickjacking, S20), no caching (the pages carry CSRF tokens and personal data)."""
    targets = " ".join(
        t for t in form_targets if _SOURCE.fullmatch(t) and t.split(":")[0] not in _UNSAFE_SCHEMES
    )
    form_action = f"'self' {targets}".strip()
    policy = (
        f"default-src 'none'; style-src {_style_hash()}; form-action {form_action}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def _text(lang: str, key: str, **fragments: str) -> str:
    """Message ``key`` escaped, its placeholders filled with already-escaped HTML fragments."""
    return escape(message(key, lang)).format(**fragments)


def _document(lang: str, title: str, body: str) -> str:
    site = escape(message("site_name", lang))
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(title)} — {site}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}</main>\n</body>\n</html>\n"
    )


def _app_block(lang: str, app: AppInfo) -> str:
    return (
        '<dl class="app">'
        f"<dt>{_text(lang, 'app_label')}</dt><dd>{escape(app.name)}</dd>"
        f"<dt>{_text(lang, 'client_id_label')}</dt><dd><code>{escape(app.client_id)}</code></dd>"
        "</dl>\n"
    )


def _error_block(lang: str, error: str | None) -> str:
    if not error:
        return ""
    return (
        f'<div class="error" role="alert" id="{_ERROR_ID}">'
        f"<h2>{_text(lang, 'error_heading')}</h2><p>{escape(localize(error, lang))}</p></div>\n"
    )


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{name}" value="{escape(value)}">'


def _described(*ids: str | None) -> str:
    present = " ".join(i for i in ids if i)
    return f' aria-describedby="{present}"' if present else ""


# --------------------------------------------------------------------------------------------
# Login
# --------------------------------------------------------------------------------------------


def login_page(
    lang: str,
    *,
    app: AppInfo,
    action: str,
    request_id: str,
    csrf: str,
    error: str | None = None,
    username: str = "",
) -> str:
    """The sign-in form (POST ``username``, ``password``, ``request``, ``csrf`` to ``action``).
    ``error``: a message key (:data:`ERROR_INVALID_CREDENTIALS`…) or text in ``lang``."""
    invalid = ' aria-invalid="true"' + _described(_ERROR_ID) if error else ""
    app_name = f"<strong>{escape(app.name)}</strong>"
    body = (
        f"<h1>{_text(lang, 'login_title')}</h1>\n"
        f"<p>{_text(lang, 'login_intro', app=app_name)}</p>\n"
        f"{_app_block(lang, app)}{_error_block(lang, error)}"
        f'<form method="post" action="{escape(action)}">\n'
        f"{_hidden('request', request_id)}{_hidden('csrf', csrf)}\n"
        f'<div class="field"><label for="username">{_text(lang, "username_label")}</label>'
        f'<input type="text" id="username" name="username" value="{escape(username)}" '
        f'autocomplete="username" autocapitalize="none" spellcheck="false" required{invalid}>'
        "</div>\n"
        f'<div class="field"><label for="password">{_text(lang, "password_label")}</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" '
        f"required{invalid}></div>\n"
        f'<div class="actions"><button type="submit">{_text(lang, "sign_in_button")}</button>'
        "</div>\n</form>\n"
    )
    return _document(lang, message("login_title", lang), body)


# --------------------------------------------------------------------------------------------
# Consent
# --------------------------------------------------------------------------------------------


def _choice_item(lang: str, choice: ScopeChoice, element_id: str, child: bool = False) -> str:
    label = escape(choice.label)
    if choice.required:
        control = (
            f'<input type="checkbox" id="{element_id}" checked disabled>'
            f"{_hidden('scope', choice.value)}"
        )
        label += f' <span class="muted">{_text(lang, "required_note")}</span>'
    else:
        checked = " checked" if choice.checked else ""
        control = (
            f'<input type="checkbox" id="{element_id}" name="scope" '
            f'value="{escape(choice.value)}"{checked}>'
        )
    if not child:
        label += f" <code>{escape(choice.value)}</code>"
    children = ""
    if choice.children:
        items = "".join(
            _choice_item(lang, c, f"{element_id}-{n}", child=True)
            for n, c in enumerate(choice.children, 1)
        )
        children = (
            f'<fieldset class="categories"><legend>{_text(lang, "categories_legend")}</legend>'
            f'<ul class="choices">{items}</ul></fieldset>'
        )
    return f'<li>{control}<label for="{element_id}">{label}</label>{children}</li>\n'


def _scopes_fieldset(lang: str, choices: list[ScopeChoice], error_id: str | None) -> str:
    items = "".join(_choice_item(lang, c, f"scope-{n}") for n, c in enumerate(choices, 1))
    return (
        f"<fieldset{_described('scope-help', error_id)}>"
        f"<legend>{_text(lang, 'scopes_legend')}</legend>\n"
        f'<p id="scope-help" class="muted">{_text(lang, "scopes_help")}</p>\n'
        f'<ul class="choices">\n{items}</ul>\n</fieldset>\n'
    )


def _patient_label(lang: str, patient: PatientChoice) -> str:
    details = []
    if patient.birth_date:
        details.append(_text(lang, "born", date=escape(patient.birth_date)))
    details.append(_text(lang, "patient_id", id=escape(patient.id)))
    joined = _text(lang, "list_separator").join(details)
    details_html = _text(lang, "patient_details", details=joined)
    return f'{escape(patient.name)} <span class="muted">{details_html}</span>'


def _patients_fieldset(lang: str, patients: list[PatientChoice], error_id: str | None) -> str:
    if not patients:
        rows = f'<p role="status">{_text(lang, "no_patients")}</p>\n'
    else:
        only = len(patients) == 1
        rows = '<ul class="choices">\n'
        for n, patient in enumerate(patients, 1):
            checked = " checked" if only else ""
            rows += (
                f'<li><input type="radio" id="patient-{n}" name="patient" '
                f'value="{escape(patient.id)}" required{checked}>'
                f'<label for="patient-{n}">{_patient_label(lang, patient)}</label></li>\n'
            )
        rows += "</ul>\n"
    return (
        f"<fieldset{_described(error_id)}><legend>{_text(lang, 'patient_legend')}</legend>\n"
        f"{rows}</fieldset>\n"
    )


def _picker_search(lang: str, picker_action: str, request_id: str, query: str) -> str:
    return (
        '<section aria-labelledby="patient-heading">'
        f'<h2 id="patient-heading">{_text(lang, "patient_heading")}</h2>\n'
        f'<form method="get" action="{escape(picker_action)}" class="search" role="search">'
        f"{_hidden('request', request_id)}"
        f'<div class="field"><label for="patient-q">{_text(lang, "patient_search_label")}</label>'
        f'<input type="search" id="patient-q" name="q" value="{escape(query)}" '
        'autocomplete="off"></div>'
        f'<button type="submit" class="secondary">{_text(lang, "patient_search_button")}</button>'
        "</form>\n</section>\n"
    )


def _offline_notice(lang: str) -> str:
    return (
        '<section class="notice" aria-labelledby="offline-heading">'
        f'<h2 id="offline-heading">{_text(lang, "offline_heading")}</h2>'
        f"<p>{_text(lang, 'offline_notice')}</p></section>\n"
    )


def consent_page(
    lang: str,
    *,
    app: AppInfo,
    user: str,
    choices: list[ScopeChoice],
    action: str,
    request_id: str,
    csrf: str,
    patients: list[PatientChoice] | None = None,
    patient_query: str = "",
    picker_action: str | None = None,
    offline: bool = False,
    error: str | None = None,
) -> str:
    """The authorization form: who is signed in, which app, the requested access as ticked
    checkboxes the user may untick (with category alternatives), the patient picker when
    ``patients`` is given, the offline-access notice, and Allow / Deny."""
    error_id = _ERROR_ID if error else None
    picker = ""
    if patients is not None and picker_action is not None:
        picker = _picker_search(lang, picker_action, request_id, patient_query)
    patient_rows = "" if patients is None else _patients_fieldset(lang, patients, error_id)
    body = (
        f"<h1>{_text(lang, 'consent_title', app=escape(app.name))}</h1>\n"
        f"{_app_block(lang, app)}"
        f"<p>{_text(lang, 'signed_in_as', user=f'<strong>{escape(user)}</strong>')}</p>\n"
        f"{_error_block(lang, error)}{picker}"
        f'<form method="post" action="{escape(action)}">\n'
        f"{_hidden('request', request_id)}{_hidden('csrf', csrf)}\n"
        f"{patient_rows}{_scopes_fieldset(lang, choices, error_id)}"
        f"{_offline_notice(lang) if offline else ''}"
        '<div class="actions">'
        '<button type="submit" name="decision" value="approve">'
        f"{_text(lang, 'approve_button')}</button>"
        '<button type="submit" name="decision" value="deny" class="secondary" formnovalidate>'
        f"{_text(lang, 'deny_button')}</button></div>\n</form>\n"
    )
    return _document(lang, message("consent_title", lang).format(app=app.name), body)


# --------------------------------------------------------------------------------------------
# Errors that must not redirect
# --------------------------------------------------------------------------------------------


def error_page(lang: str, *, title: str, message: str) -> str:
    """A page for errors that must not go back to the app (unknown client, unregistered
    ``redirect_uri``: RFC 6749 §4.1.2.1). ``title``/``message``: message keys
    (``unknown_client_title``…) or text in ``lang``."""
    heading = localize(title, lang)
    body = (
        f"<h1>{escape(heading)}</h1>\n<p>{escape(localize(message, lang))}</p>\n"
        f'<p class="muted">{_text(lang, "error_hint")}</p>\n'
    )
    return _document(lang, heading, body)
