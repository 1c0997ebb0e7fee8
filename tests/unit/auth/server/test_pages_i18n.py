"""Language negotiation by ``Accept-Language`` (RFC 9110 §12.5.4) and the completeness of the
English, Simplified Chinese and Romanian texts of the authorization pages."""

from __future__ import annotations

import re
from string import Formatter

import pytest

from fhir_server.auth.server import pages_i18n
from fhir_server.auth.server.pages_i18n import LANGUAGES, localize, message, negotiate_language


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("", "en"),
        ("ro", "ro"),
        ("ro-RO,ro;q=0.9,en-US;q=0.8", "ro"),
        ("RO-md", "ro"),
        ("zh-CN,zh;q=0.9", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-Hans", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        ("zh-SG", "zh-CN"),
        ("zh-TW", "en"),  # Traditional script: not served Simplified unasked
        ("zh-Hant-HK,zh;q=0.5", "zh-CN"),  # ... but a bare zh later is asked
        ("zh-TW,ro;q=0.8", "ro"),
        ("fr-FR,fr;q=0.9,ro;q=0.8,en;q=0.7", "ro"),
        ("en;q=0.5, ro;q=0.9", "ro"),
        ("en-GB;q=0.8, zh-CN;q=0.8", "en"),  # equal weights: header order
        ("zh-CN;q=0.8, en-GB;q=0.8", "zh-CN"),
        ("ro;q=0, en", "en"),  # q=0: not acceptable
        ("ro;q=0", "en"),
        ("de-DE, fr", "en"),
        ("*", "en"),
        ("de, *;q=0.1", "en"),
        ("ro;q=abc, zh;q=0.5", "zh-CN"),  # malformed weight: that range is ignored
        ("ro;q=1.5, en;q=0.2", "en"),
        ("ro ; q=0.7 , zh ; q=0.9", "zh-CN"),
        (",,;q=1,ro", "ro"),
    ],
)
def test_negotiate_language(header: str | None, lang: str) -> None:
    assert negotiate_language(header) == lang


def test_a_huge_header_is_cut_not_parsed_whole() -> None:
    assert negotiate_language("de;q=0.5," * 100_000 + "ro") == "en"


_TABLES = (
    "MESSAGES",
    "VERBS",
    "SCOPE_PHRASES",
    "RESOURCE_NOUNS",
    "RESOURCE_HINTS",
    "CATEGORY_LABELS",
)
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _entries() -> list[tuple[str, str, tuple[str, str, str]]]:
    return [
        (table, key, texts)
        for table in _TABLES
        for key, texts in getattr(pages_i18n, table).items()
    ]


@pytest.mark.parametrize(("table", "key", "texts"), _entries())
def test_every_text_exists_in_every_language(
    table: str, key: str, texts: tuple[str, str, str]
) -> None:
    en, zh, ro = texts
    assert len(texts) == len(LANGUAGES)
    assert all(t.strip() for t in texts)
    words = re.sub(r"\{\w+\}", "", en)
    if re.search("[A-Za-z]", words):  # not a punctuation-only template
        assert _CJK.search(zh), f"{table}[{key}] zh-CN is not Chinese"
    assert not _CJK.search(en + ro)
    fields = [{f for _, f, _, _ in Formatter().parse(t) if f} for t in texts]
    assert fields[0] == fields[1] == fields[2], f"{table}[{key}] placeholders differ"


def test_romanian_uses_comma_below_diacritics() -> None:
    romanian = " ".join(texts[2] for _, _, texts in _entries())
    for letter in "șțăîâ":
        assert letter in romanian
    assert not set("şţŞŢ") & set(romanian), "cedilla letters instead of ș/ț"


def test_localize_translates_keys_and_keeps_text() -> None:
    assert localize(pages_i18n.ERROR_INVALID_CREDENTIALS, "ro") == message(
        "invalid_credentials", "ro"
    )
    assert localize("Account locked", "zh-CN") == "Account locked"
