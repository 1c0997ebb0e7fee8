"""SMART scope grammar, v1 compatibility and the granted subset (scopes-and-launch-context.html)."""

from __future__ import annotations

import pytest

from fhir_server.auth.scopes import (
    InvalidScope,
    access_scopes,
    grant,
    parse_scope,
    parse_scopes,
    scope_text,
)
from fhir_server.core.access import ResourceScope

LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def resource(text: str) -> ResourceScope:
    parsed = parse_scope(text)
    assert isinstance(parsed, ResourceScope)
    return parsed


@pytest.mark.parametrize(
    ("text", "level", "type_", "letters"),
    [
        ("patient/Observation.rs", "patient", "Observation", "rs"),
        ("user/*.cruds", "user", "*", "cruds"),
        ("system/Patient.c", "system", "Patient", "c"),
        ("patient/*.read", "patient", "*", "rs"),
        ("user/Observation.write", "user", "Observation", "cud"),
        ("system/*.*", "system", "*", "cruds"),
        ("system/Admin.cruds", "system", "Admin", "cruds"),
        ("system/Launch.c", "system", "Launch", "c"),
        ("http://smarthealthit.org/fhir/scopes/patient/Condition.rs", "patient", "Condition", "rs"),
    ],
)
def test_resource_scopes_v2_v1_and_uri_form(
    text: str, level: str, type_: str, letters: str
) -> None:
    scope = resource(text)
    assert (scope.level, scope.resource_type) == (level, type_)
    assert scope.interactions == frozenset(letters)
    assert scope.query == ()
    assert scope.text == text


def test_granular_query_is_url_decoded() -> None:
    scope = resource(f"patient/Observation.rs?category={LAB.replace('|', '%7C')}")
    assert scope.query == (("category", LAB),)
    two = resource(f"user/Condition.rs?category={LAB}&clinical-status=active")
    assert two.query == (("category", LAB), ("clinical-status", "active"))


@pytest.mark.parametrize(
    "text",
    ["launch", "launch/patient", "launch/encounter", "launch/practitioner", "openid",
     "fhirUser", "profile", "offline_access", "online_access"],
)  # fmt: skip
def test_context_scopes(text: str) -> None:
    assert parse_scope(text) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("patient/Observation.dus", "cruds in that order"),
        ("patient/Observation.rr", "cruds in that order"),
        ("patient/Observation.", "not a SMART scope"),
        ("patient/Foo.rs", "not an R4 resource type"),
        ("bogus", "not a SMART scope"),
        ("admin/Patient.rs", "patient, user or system"),
        ("patient/Admin.rs", "only at system level"),
        ("user/Launch.c", "only at system level"),
        ("patient/Observation.rs?", "name=value"),
        ("patient/Observation.rs?category", "name=value"),
        ("patient/Observation.rs?category=", "non-empty"),
        ("launch/Patient", "not a SMART scope"),
    ],
)
def test_invalid_scopes_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidScope) as raised:
        parse_scope(text)
    assert reason in raised.value.reason


def test_parse_scopes_sorts_kinds_and_drops_duplicates() -> None:
    parsed = parse_scopes("openid fhirUser launch/patient patient/*.rs bogus patient/*.rs  x/y.z")
    assert [s.text for s in parsed.resources] == ["patient/*.rs"]
    assert parsed.context == ("openid", "fhirUser", "launch/patient")
    assert [r for r, _ in parsed.rejected] == ["bogus", "x/y.z"]
    assert access_scopes("openid patient/Observation.rs bogus") == (
        resource("patient/Observation.rs"),
    )


def test_scope_text_orders_letters_and_encodes_the_query() -> None:
    assert scope_text("user", "*", {"s", "r", "c"}) == "user/*.crs"
    text = scope_text("patient", "Observation", {"r"}, (("category", LAB),))
    assert text == f"patient/Observation.r?category={LAB}"
    assert resource(text).query == (("category", LAB),)


@pytest.mark.parametrize(
    ("requested", "allowed", "granted"),
    [
        # covered whole: echoed as written (v1 stays v1)
        ("patient/*.read", "patient/*.cruds", "patient/*.read"),
        ("patient/Observation.rs", "patient/*.rs", "patient/Observation.rs"),
        ("user/*.*", "user/*.cruds", "user/*.*"),
        # partly covered: narrowed, in v2
        ("patient/*.read", "patient/*.r", "patient/*.r"),
        ("user/Observation.cruds", "user/*.rs", "user/Observation.rs"),
        ("patient/*.rs", "patient/Observation.rs patient/Condition.r",
         "patient/Observation.rs patient/Condition.r"),
        # levels never mix; unknown and unallowed dropped
        ("user/*.rs", "patient/*.rs", ""),
        ("patient/Observation.cu", "patient/Observation.rs", ""),
        ("bogus patient/Foo.rs", "patient/*.rs", ""),
        # granular
        (f"patient/Observation.rs?category={LAB}", "patient/*.rs",
         f"patient/Observation.rs?category={LAB}"),
        (f"patient/Observation.rs?category={LAB}", f"patient/Observation.rs?category={LAB}",
         f"patient/Observation.rs?category={LAB}"),
        (f"patient/Observation.rs?category={LAB}", "patient/Observation.rs?category=x", ""),
        ("patient/Observation.rs", f"patient/Observation.rs?category={LAB}",
         f"patient/Observation.rs?category={LAB}"),
        # Admin/Launch are never reached through *
        ("system/Admin.r", "system/*.cruds", ""),
        ("system/*.rs", "system/Admin.cruds", ""),
        ("system/Admin.r system/Launch.c", "system/Admin.cruds system/Launch.c",
         "system/Admin.r system/Launch.c"),
        # context scopes kept when allowed
        ("openid fhirUser launch/patient offline_access patient/*.rs",
         "openid fhirUser launch/patient patient/*.rs",
         "patient/*.rs openid fhirUser launch/patient"),
    ],
)  # fmt: skip
def test_grant(requested: str, allowed: str, granted: str) -> None:
    assert grant(requested, allowed) == granted


def test_granted_scopes_parse_back() -> None:
    granted = grant(
        "user/*.cruds patient/*.read", f"user/Observation.rs?category={LAB} patient/*.r"
    )
    parsed = parse_scopes(granted)
    assert not parsed.rejected
    assert {s.text for s in parsed.resources} == {
        f"user/Observation.rs?category={LAB}",
        "patient/*.r",
    }
