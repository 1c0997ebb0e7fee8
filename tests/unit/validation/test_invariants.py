"""Invariants: the natives (ele-1, ext-1, dom-*, txt-1, txt-2), context variables, choice types,
primitives with extensions, contained resources, errors, and the cost of an evaluation."""

from __future__ import annotations

import time
from typing import Any

import pytest

from fhir_server.validation.invariants import Constraint, Primitive, compile_invariant


def inv(key: str, expression: str) -> Any:
    return compile_invariant(Constraint(key, "error", "", expression, "test"))


ELE_1 = inv("ele-1", "hasValue() or (children().count() > id.count())")
TXT_1 = inv("txt-1", "htmlChecks()")
TXT_2 = inv("txt-2", "htmlChecks()")
PATIENT: dict[str, Any] = {"resourceType": "Patient", "id": "p"}
DIV = '<div xmlns="http://www.w3.org/1999/xhtml">{}</div>'


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"system": "s"}, True),
        ({"id": "x"}, False),
        ({"id": "x", "extension": [{"url": "u", "valueString": "v"}]}, True),
        (Primitive("1970-01-01"), True),
        (Primitive(None, {"id": "x"}), False),
        (Primitive(None, {"extension": [{"url": "u", "valueCode": "unknown"}]}), True),
        (Primitive(False), True),
        ("bare value", True),
    ],
)
def test_ele_1(node: Any, expected: bool) -> None:
    assert ELE_1.how == "native"
    assert ELE_1.holds(node, "Patient.birthDate", PATIENT) is expected


def test_ele_1_agrees_with_hasvalue_in_a_larger_expression() -> None:
    """hasValue() is also a FHIRPath function here (not in fhirpathpy), on primitives only."""
    per_1 = inv("per-1", "start.hasValue().not() or end.hasValue().not() or (start <= end)")
    assert per_1.holds({"start": "2020-01-02", "end": "2020-01-01"}, "Period", PATIENT) is False
    assert per_1.holds({"start": "2020-01-01", "end": "2020-01-02"}, "Period", PATIENT) is True
    assert per_1.holds({"start": "2020-01-02"}, "Period", PATIENT) is True


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ({"url": "u", "valueString": "v"}, True),
        ({"url": "u", "extension": [{"url": "a", "valueString": "v"}]}, True),
        ({"url": "u"}, False),
        ({"url": "u", "valueString": "v", "extension": [{"url": "a", "valueInteger": 1}]}, False),
        ({"url": "u", "_valueCode": {"extension": [{"url": "a", "valueString": "v"}]}}, True),
    ],
)
def test_ext_1(node: dict[str, Any], expected: bool) -> None:
    ext_1 = inv("ext-1", "extension.exists() != value.exists()")
    assert ext_1.holds(node, "Extension", PATIENT) is expected


@pytest.mark.parametrize(
    ("div", "txt_1", "txt_2"),
    [
        (DIV.format("<p>Hello <b>world</b></p>"), True, True),
        (DIV.format('<table border="0"><tr><td colspan="2">x</td></tr></table>'), True, True),
        (DIV.format('<img src="#a" alt="x"/>'), True, True),
        (DIV.format("   \n  "), True, False),
        (DIV.format("<script>alert(1)</script>"), False, True),
        (DIV.format('<p onclick="alert(1)">x</p>'), False, True),
        (DIV.format('<form action="x"><p>x</p></form>'), False, True),
        (DIV.format('<iframe src="http://x"/>'), False, False),
        ('<div xmlns="http://www.w3.org/1999/xhtml" xml:lang="en">x</div>', True, True),
        ("<div>no namespace</div>", False, False),
        ('<p xmlns="http://www.w3.org/1999/xhtml">not a div</p>', False, False),
        (DIV.format("<p>unclosed"), False, False),
        (
            '<!DOCTYPE div [<!ENTITY x "y">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>',
            False,
            False,
        ),
    ],
)
def test_txt_1_and_txt_2(div: str, txt_1: bool, txt_2: bool) -> None:
    assert TXT_1.holds(Primitive(div), "Narrative.div", PATIENT) is txt_1
    assert TXT_2.holds(div, "Narrative.div", PATIENT) is txt_2


def test_html_checks_inside_an_expression_is_both_checks() -> None:
    checks = inv("x-1", "`div`.htmlChecks()")
    good = {"status": "generated", "div": DIV.format("<p>x</p>")}
    assert checks.holds(good, "Narrative", PATIENT) is True
    assert checks.holds({"div": DIV.format(" ")}, "Narrative", PATIENT) is False


def test_dom_natives_on_contained_resources() -> None:
    dom_3 = inv(
        "dom-3",
        "contained.where((('#'+id in (%resource.descendants().reference | "
        "%resource.descendants().as(canonical) | %resource.descendants().as(uri) | "
        "%resource.descendants().as(url))) or descendants().where(reference = '#').exists() or "
        "descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = "
        "'#').exists()).not()).trace('unmatched', id).empty()",
    )
    dom_2 = inv("dom-2", "contained.contained.empty()")
    org = {"resourceType": "Organization", "id": "org"}
    referenced = {**PATIENT, "contained": [org], "managingOrganization": {"reference": "#org"}}
    orphan = {**PATIENT, "contained": [org]}
    back = {**PATIENT, "contained": [{**org, "partOf": {"reference": "#"}}]}
    nested = {**referenced, "contained": [{**org, "contained": [{"resourceType": "Basic"}]}]}
    assert dom_3.how == "native"
    assert dom_3.holds(referenced, "Patient", referenced) is True
    assert dom_3.holds(orphan, "Patient", orphan) is False
    assert dom_3.holds(back, "Patient", back) is True
    assert dom_2.holds(referenced, "Patient", referenced) is True
    assert dom_2.holds(nested, "Patient", nested) is False


def test_dom_3_cannot_run_on_fhirpathpy() -> None:
    """Why dom-3 is native: fhirpathpy's as() raises on a collection."""
    from fhir_server.validation.invariants import DOM_3
    from fhir_server.validation.invariants_fhirpath import evaluate, parse_expression

    org = {"resourceType": "Organization", "id": "o"}
    patient = {**PATIENT, "contained": [org], "managingOrganization": {"reference": "#o"}}
    with pytest.raises(ValueError, match="singleton"):
        evaluate(parse_expression(DOM_3), patient, "Patient", patient, patient)


def test_context_variables_resource_root_and_context() -> None:
    ref_1 = inv(
        "ref-1",
        "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
        "%rootResource.contained.id.trace('ids'))",
    )
    container = {**PATIENT, "contained": [{"resourceType": "Organization", "id": "o1"}]}
    contained = container["contained"][0]
    assert ref_1.holds({"reference": "#o1"}, "Reference", container) is True
    assert ref_1.holds({"reference": "#nope"}, "Reference", container) is False
    # a Reference inside the contained resource: %resource is it, %rootResource the container
    assert ref_1.holds({"reference": "#o1"}, "Reference", contained, container) is True
    assert ref_1.holds({"reference": "#o1"}, "Reference", contained) is False
    obs_7 = inv(
        "obs-7",
        "value.empty() or component.code.where(coding.intersect(%resource.code.coding)"
        ".exists()).empty()",
    )
    code = {"coding": [{"system": "http://loinc.org", "code": "1"}]}
    obs = {"resourceType": "Observation", "code": code, "component": [{"code": code}]}
    assert obs_7.holds(obs, "Observation", obs) is True
    assert obs_7.holds({**obs, "valueString": "x"}, "Observation", obs) is False
    ig_2 = inv("ig-2", "definition.resource.fhirVersion.all(%context.fhirVersion contains $this)")
    ig = {"fhirVersion": ["4.0.1"], "definition": {"resource": [{"fhirVersion": ["4.0.1"]}]}}
    assert ig_2.holds(ig, "ImplementationGuide", ig) is True
    bad = {**ig, "definition": {"resource": [{"fhirVersion": ["3.0.2"]}]}}
    assert ig_2.holds(bad, "ImplementationGuide", bad) is False


def test_choice_types_with_the_concrete_type_in_the_base() -> None:
    ras_2 = inv("ras-2", "probability is decimal implies (probability as decimal) <= 100")
    base = "RiskAssessment.prediction"
    assert ras_2.holds({"probabilityDecimal": 20}, base, PATIENT) is True
    assert ras_2.holds({"probabilityDecimal": 120}, base, PATIENT) is False
    assert ras_2.holds({"probabilityRange": {"low": {"value": 1}}}, base, PATIENT) is True
    que_7 = inv("que-7", "operator = 'exists' implies (answer is Boolean)")
    enable = {"question": "q", "operator": "exists", "answerBoolean": True}
    assert que_7.holds(enable, "Questionnaire.item.enableWhen", PATIENT) is True
    assert (
        que_7.holds(
            {**enable, "answerBoolean": None, "answerString": "x"},
            "Questionnaire.item.enableWhen",
            PATIENT,
        )
        is False
    )
    vs_1 = inv("vs-1", "($this as dateTime).toString().length() >= 8")
    assert vs_1.holds(Primitive("2020-01-01"), "Observation.effectiveDateTime", PATIENT) is True
    assert vs_1.holds(Primitive("2020"), "Observation.effectiveDateTime", PATIENT) is False


def test_range_in_the_same_unit_is_compared_by_value() -> None:
    rng_2 = inv("rng-2", "low.empty() or high.empty() or (low <= high)")
    ucum = {"system": "http://unitsofmeasure.org", "code": "Cel"}
    ok = {"low": {"value": 2, **ucum}, "high": {"value": 8, **ucum}}
    assert rng_2.how == "fhirpath"
    assert rng_2.holds(ok, "Range", PATIENT) is True
    assert rng_2.holds({"low": ok["high"], "high": ok["low"]}, "Range", PATIENT) is False
    assert rng_2.holds({"low": ok["high"]}, "Range", PATIENT) is True


def test_primitives_with_extensions() -> None:
    eld_3 = inv("eld-3", "empty() or ($this = '*') or (toInteger() >= 0)")
    assert eld_3.holds(Primitive("*"), "ElementDefinition.max", PATIENT) is True
    assert eld_3.holds(Primitive("-1"), "ElementDefinition.max", PATIENT) is False
    absent = Primitive(None, {"extension": [{"url": "u", "valueCode": "unknown"}]})
    assert eld_3.holds(absent, "ElementDefinition.max", PATIENT) is True
    has_ext = inv("x-2", "birthDate.extension.exists()")
    patient = {**PATIENT, "birthDate": "1970", "_birthDate": {"extension": [{"url": "u"}]}}
    assert has_ext.holds(patient, "Patient", patient) is True


def test_errors_and_unknown_functions_give_none_never_raise() -> None:
    unknown = inv("x-3", "code.memberOf('http://example.org/vs')")
    assert unknown.error is None
    assert unknown.holds({"code": "a"}, "Coding", PATIENT) is None
    answer = unknown.holds({"code": "a"}, "Coding", PATIENT, member_of=lambda c, vs: c == "a")
    assert answer is True
    conforms = inv("x-4", "conformsTo('http://example.org/sd')")
    assert conforms.error is not None and "conformsTo" in conforms.error
    assert conforms.holds({}, "Patient", PATIENT) is None
    bad_syntax = inv("x-5", "name.where(")
    assert bad_syntax.error is not None
    assert bad_syntax.holds({}, "Patient", PATIENT) is None
    type_error = inv("x-6", "name.given + 1 > 0")
    assert type_error.holds({"name": [{"given": ["a", "b"]}]}, "Patient", PATIENT) is None


def test_trace_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    traced = inv("x-7", "name.trace('names', given).exists()")
    assert traced.holds({"name": [{"given": ["a"]}]}, "Patient", PATIENT) is True
    assert capsys.readouterr() == ("", "")


def test_compiled_once_per_constraint() -> None:
    a = Constraint("pat-1", "error", "h", "name.exists() or telecom.exists()", "u")
    assert compile_invariant(a) is compile_invariant(
        Constraint(*[getattr(a, f) for f in a.__slots__])
    )


def test_cost_of_an_evaluation() -> None:
    """Prints the cost (no time assertion): native ele-1 and txt-1, fhirpathpy pat-1."""
    pat_1 = inv(
        "pat-1", "name.exists() or telecom.exists() or address.exists() or organization.exists()"
    )
    contact = {"name": {"family": "x"}}
    div = DIV.format("<p>Hello <b>world</b></p>" * 20)
    for label, fn in (
        ("ele-1 (native)", lambda: ELE_1.holds(contact, "Patient.contact", PATIENT)),
        ("txt-1 (native, 20 paragraphs)", lambda: TXT_1.holds(div, "Narrative.div", PATIENT)),
        ("pat-1 (fhirpathpy)", lambda: pat_1.holds(contact, "Patient.contact", PATIENT)),
    ):
        n = 2000
        start = time.perf_counter()
        for _ in range(n):
            fn()
        print(f"\n{label}: {(time.perf_counter() - start) / n * 1e6:.1f} µs")
