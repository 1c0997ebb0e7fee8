"""$lookup and $validate-code (http://hl7.org/fhir/R4/codesystem-operation-lookup.html,
valueset-operation-validate-code.html, codesystem-operation-validate-code.html) on a small
fixture and on R4 core content."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.conformance import Conformance
from fhir_server.core.errors import ResourceNotFound
from fhir_server.terminology import Coding, TerminologyService
from fhir_server.terminology.errors import UnknownCodeSystem
from tests.unit.terminology.fixtures import SHAPES, SHAPES_CS, include, value_set

GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
GENDER = "http://hl7.org/fhir/administrative-gender"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ALL = value_set("all", include(system=SHAPES))


def values(parameters: dict[str, Any], name: str) -> list[Any]:
    out = []
    for p in parameters["parameter"]:
        if p["name"] == name:
            out.append(next((v for k, v in p.items() if k.startswith("value")), p.get("part")))
    return out


def properties(parameters: dict[str, Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for part in values(parameters, "property"):
        code = part[0]["valueCode"]
        value = next(v for k, v in part[1].items() if k.startswith("value"))
        out.setdefault(code, []).append(value)
    return out


@pytest.fixture(scope="module")
def core() -> TerminologyService:
    return TerminologyService(Conformance.core())


def small() -> TerminologyService:
    return TerminologyService(Conformance.of([SHAPES_CS, ALL]))


def test_lookup_gives_display_designations_and_hierarchy() -> None:
    found = small().lookup(SHAPES, "square")
    assert values(found, "name") == ["Shapes"]
    assert values(found, "version") == ["1.0"]
    assert values(found, "display") == ["Square"]
    assert values(found, "designation") == [
        [{"name": "language", "valueCode": "fr"}, {"name": "value", "valueString": "Carré"}]
    ]
    assert properties(found) == {"sides": [4], "parent": ["polygon"]}
    assert properties(small().lookup(SHAPES, "round", properties=["child"])) == {
        "child": ["circle", "ellipse"]
    }


def test_lookup_errors_name_system_or_code() -> None:
    with pytest.raises(UnknownCodeSystem, match="http://nowhere") as unknown:
        small().lookup("http://nowhere", "x")
    assert unknown.value.issues[0].expression == ("system",)
    with pytest.raises(ResourceNotFound, match="Code 'hexagon'"):
        small().lookup(SHAPES, "hexagon")


def test_lookup_on_r4_core_hierarchy(core: TerminologyService) -> None:
    found = core.lookup(ACT_CODE, "_ActAccountCode")
    props = properties(found)
    assert props["notSelectable"] == [True]
    assert "PBILLACCT" in props["child"]
    assert properties(core.lookup(ACT_CODE, "PBILLACCT"))["parent"] == ["_ActAccountCode"]


def verdict(parameters: dict[str, Any]) -> tuple[bool, str | None]:
    messages = values(parameters, "message")
    return values(parameters, "result")[0], messages[0] if messages else None


def test_validate_code_in_value_set(core: TerminologyService) -> None:
    ok = core.validate_code(value_set=GENDER_VS, codings=[Coding(GENDER, "male")])
    assert verdict(ok) == (True, None) and values(ok, "display") == ["Male"]
    wrong = core.validate_code(value_set=GENDER_VS, codings=[Coding(GENDER, "m")])
    assert verdict(wrong)[0] is False and "'m'" in str(verdict(wrong)[1])
    display = core.validate_code(value_set=GENDER_VS, codings=[Coding(GENDER, "male", "Man")])
    result, message = verdict(display)
    assert result is True and "should be 'Male'" in str(message)
    assert verdict(core.validate_code(value_set=GENDER_VS, codings=[Coding(None, "female")]))[0]
    concept = [Coding("urn:other", "x"), Coding(GENDER, "other")]
    assert verdict(core.validate_code(value_set=GENDER_VS, codings=concept))[0] is True
    status = "http://hl7.org/fhir/ValueSet/observation-status"
    final = Coding("http://hl7.org/fhir/observation-status", "final")
    assert verdict(core.validate_code(value_set=status, codings=[final]))[0] is True


def test_validate_code_abstract_inactive_and_code_system() -> None:
    ts = small()
    polygon = [Coding(SHAPES, "polygon")]
    assert verdict(ts.validate_code(value_set=ALL["url"], codings=polygon))[0] is True
    refused = ts.validate_code(value_set=ALL["url"], codings=polygon, abstract=False)
    assert verdict(refused)[0] is False and "abstract" in str(verdict(refused)[1])
    blob = verdict(ts.validate_code(code_system=SHAPES, codings=[Coding(SHAPES, "blob")]))
    assert blob == (True, "The code 'blob' is inactive")
    missing = ts.validate_code(code_system=SHAPES, codings=[Coding(None, "hexagon")])
    assert verdict(missing)[0] is False
    with_resource = ts.validate_code(value_set=ALL, codings=[Coding(SHAPES, "circle")])
    assert verdict(with_resource)[0] is True


def test_contains_r4_required_bindings(core: TerminologyService) -> None:
    status = "http://hl7.org/fhir/ValueSet/observation-status"
    system = "http://hl7.org/fhir/observation-status"
    assert core.contains(status, system, "final") is True
    assert core.contains(status, system, "bogus") is False
    assert core.contains("http://hl7.org/fhir/ValueSet/nope", system, "final") is None
    # SNOMED CT in full: the server cannot tell
    assert core.contains("http://hl7.org/fhir/ValueSet/clinical-findings", None, "1") is None
