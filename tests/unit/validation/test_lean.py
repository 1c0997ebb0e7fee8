"""The lean plans of the core walk (validation/lean.py) report exactly what the full visit of
every element reports, on every R4 example: as published, and with its extensions removed (the
plain case, where plans skip most) and its codes broken so that bindings fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.conformance import Conformance
from fhir_server.core.errors import Issue
from fhir_server.terminology import TerminologyService
from fhir_server.validation.lean import is_plain
from fhir_server.validation.profile_check import CORE, Walk
from fhir_server.validation.profiles import ProfileValidator
from tests.r4_examples import iter_parsed_examples

_BROKEN_KEYS = frozenset({"use", "status", "gender", "code", "type", "mode", "kind", "system"})


@pytest.fixture(scope="module")
def validator() -> ProfileValidator:
    registry = Conformance.overlay()
    return ProfileValidator(registry, TerminologyService(registry))


def _without_extensions(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_extensions(v)
            for k, v in value.items()
            if k not in ("extension", "modifierExtension")
        }
    if isinstance(value, list):
        return [_without_extensions(v) for v in value]
    return value


def _broken(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: "zz-broken" if k in _BROKEN_KEYS and isinstance(v, str) else _broken(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_broken(v) for v in value]
    return value


def _full_visit(validator: ProfileValidator, resource: dict[str, Any]) -> list[Issue]:
    core = validator.definition(CORE + resource["resourceType"])
    assert core is not None
    walk = Walk(validator.definition, validator._terminology, None, core.url, core.is_profile)
    walk.check_resource(resource, core, core.type)  # no plans: every child visited
    return walk.issues


def _lean(validator: ProfileValidator, resource: dict[str, Any]) -> list[Issue]:
    core = validator.definition(CORE + resource["resourceType"])
    assert core is not None
    return validator._run(resource, core, None, plain=is_plain(resource))


def test_lean_plans_report_what_the_full_visit_reports(validator: ProfileValidator) -> None:
    compared = plain = reported = 0
    for name, example in iter_parsed_examples():
        if validator.definition(CORE + str(example.get("resourceType"))) is None:
            continue
        for resource in (example, _broken(_without_extensions(example))):
            before = copy.deepcopy(resource)
            expected = _full_visit(validator, resource)
            assert _lean(validator, resource) == expected, name
            assert resource == before
            compared += 1
            plain += is_plain(resource)
            reported += bool(expected)
    assert compared > 10_000 and plain > 4_500 and reported > 3_000, (compared, plain, reported)


def test_a_resource_with_an_extension_anywhere_is_not_plain() -> None:
    assert is_plain({"resourceType": "Patient", "name": [{"family": "x"}]})
    assert not is_plain({"resourceType": "Patient", "extension": [{"url": "u"}]})
    assert not is_plain({"resourceType": "Patient", "name": [{"modifierExtension": []}]})
    assert not is_plain({"resourceType": "Patient", "_birthDate": {"extension": []}})
    assert not is_plain({"resourceType": "Patient", "x": object()})
