"""SMART scopes in plain language and the consent choices built from a request (checklist S25:
scopes can be deselected, offline_access is disclosed, granular categories are offered)."""

# ruff: noqa: RUF001

from __future__ import annotations

import pytest

from fhir_server.auth.server.pages_i18n import LANGUAGES
from fhir_server.auth.server.scope_text import consent_choices, describe_scope, is_required

OBS = "http://terminology.hl7.org/CodeSystem/observation-category"
US_CORE = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
COND = "http://terminology.hl7.org/CodeSystem/condition-category"
US_CORE_COND = "http://hl7.org/fhir/us/core/CodeSystem/condition-category"
LAB = f"patient/Observation.rs?category={OBS}|laboratory"


@pytest.mark.parametrize(
    ("scope", "lang", "text"),
    [
        (
            "patient/Observation.rs",
            "en",
            "Read and search the patient's observations (test results, vital signs…)",
        ),
        ("patient/Observation.rs", "zh-CN", "读取和搜索患者的观察结果（检验结果、生命体征等）"),
        (
            "patient/Observation.rs",
            "ro",
            "Citește și caută observațiile din dosarul pacientului (rezultate de analize, semne "
            "vitale…)",
        ),
        (
            "user/*.cruds",
            "en",
            "Create, read, update, delete and search all records you can access",
        ),
        ("user/*.cruds", "zh-CN", "创建、读取、更新、删除和搜索您有权访问的所有记录"),
        (
            "user/*.cruds",
            "ro",
            "Creează, citește, actualizează, șterge și caută toate datele la care aveți acces",
        ),
        ("patient/*.rs", "en", "Read and search all of the patient's records"),
        ("system/Patient.rs", "en", "Read and search all demographic details on this server"),
        (
            "user/MedicationRequest.c",
            "en",
            "Create prescriptions and medication orders you can access",
        ),
        (
            "offline_access",
            "en",
            "Keep access when you are not using the app (until you revoke it)",
        ),
        ("offline_access", "zh-CN", "在您不使用该应用时继续保有访问权限（直到您撤销）"),
        ("offline_access", "ro", "Păstrează accesul când nu folosiți aplicația (până îl revocați)"),
        ("openid", "en", "Know who you are"),
        ("launch/patient", "en", "Choose a patient"),
        ("launch/patient", "ro", "Vă cere să alegeți un pacient"),
        (LAB, "en", "Read and search the patient's observations — laboratory results only"),
        (LAB, "zh-CN", "读取和搜索患者的观察结果（仅限检验结果）"),
        (
            LAB,
            "ro",
            "Citește și caută observațiile din dosarul pacientului — doar rezultatele de laborator",
        ),
        (
            f"user/Condition.rs?category={US_CORE_COND}|health-concern",
            "en",
            "Read and search conditions you can access — health concerns only",
        ),
        (
            "patient/Observation.rs?code=http://loinc.org|1234-5",
            "en",
            "Read and search the patient's observations — only records where code is "
            "http://loinc.org|1234-5",
        ),
        ("user/Foo.cud", "en", "Create, update and delete Foo records you can access"),
        ("user/Foo.cud", "zh-CN", "创建、更新和删除您有权访问的Foo记录"),
        (
            "user/Foo.cud",
            "ro",
            "Creează, actualizează și șterge înregistrările de tip Foo la care aveți acces",
        ),
        ("patient/Observation.sr", "en", "Other access: patient/Observation.sr"),
        ("weird", "ro", "Alt acces: weird"),
        (
            "openid fhirUser",
            "en",
            "Know who you are; Know who you are: your own record (as a patient or practitioner)",
        ),
    ],
)
def test_describe_scope(scope: str, lang: str, text: str) -> None:
    assert describe_scope(scope, lang) == text


@pytest.mark.parametrize(
    ("v1", "v2"),
    [
        ("patient/*.read", "patient/*.rs"),
        ("user/Observation.write", "user/Observation.cud"),
        ("system/Patient.*", "system/Patient.cruds"),
    ],
)
@pytest.mark.parametrize("lang", LANGUAGES)
def test_v1_scopes_read_as_their_v2_letters(v1: str, v2: str, lang: str) -> None:
    assert describe_scope(v1, lang) == describe_scope(v2, lang)


REQUESTED = [
    "launch",
    "openid",
    "fhirUser",
    "offline_access",
    "patient/Observation.rs",
    "patient/Condition.read",
    "user/*.cruds",
    "launch/patient",
    "patient/Observation.rs",
]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_consent_choices_for_a_realistic_request(lang: str) -> None:
    choices = consent_choices(REQUESTED, lang)
    assert [c.value for c in choices] == REQUESTED[:-1]  # the duplicate is dropped
    assert [c.value for c in choices if c.required] == [
        "launch",
        "openid",
        "fhirUser",
        "launch/patient",
    ]
    assert all(c.checked for c in choices)
    assert [c.label for c in choices] == [describe_scope(c.value, lang) for c in choices]
    by_value = {c.value: c for c in choices}
    observation = by_value["patient/Observation.rs"].children
    assert [c.value for c in observation] == [
        f"patient/Observation.rs?category={OBS}|laboratory",
        f"patient/Observation.rs?category={OBS}|vital-signs",
        f"patient/Observation.rs?category={OBS}|social-history",
        f"patient/Observation.rs?category={OBS}|survey",
        f"patient/Observation.rs?category={US_CORE}|clinical-test",
        f"patient/Observation.rs?category={US_CORE}|sdoh",
    ]
    condition = by_value["patient/Condition.read"].children
    assert [c.value for c in condition] == [
        f"patient/Condition.rs?category={COND}|problem-list-item",
        f"patient/Condition.rs?category={COND}|encounter-diagnosis",
        f"patient/Condition.rs?category={US_CORE_COND}|health-concern",
    ]
    for child in observation + condition:
        assert not child.checked and not child.required and not child.children
    for value in ("user/*.cruds", "offline_access", "launch"):
        assert by_value[value].children == ()


def test_category_child_labels() -> None:
    [observation] = consent_choices(["user/Observation.rs"], "en")
    assert [c.label for c in observation.children][:2] == [
        "Laboratory results only",
        "Vital signs only",
    ]
    [condition] = consent_choices(["user/Condition.rs"], "zh-CN")
    assert condition.children[0].label == "仅限问题清单"
    [condition] = consent_choices(["user/Condition.rs"], "ro")
    assert condition.children[2].label == "Doar preocupările de sănătate"


@pytest.mark.parametrize(
    "scope",
    [LAB, "system/Observation.rs", "patient/Observation.sr", "patient/Encounter.rs", "user/*.rs"],
)
def test_no_category_children(scope: str) -> None:
    [choice] = consent_choices([scope], "en")
    assert choice.children == ()


@pytest.mark.parametrize(
    ("scope", "required"),
    [
        ("openid", True),
        ("fhirUser", True),
        ("launch", True),
        ("launch/encounter", True),
        ("offline_access", False),
        ("online_access", False),
        ("profile", False),
        ("patient/*.rs", False),
    ],
)
def test_required_scopes(scope: str, required: bool) -> None:
    assert is_required(scope) is required
