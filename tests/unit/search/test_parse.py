"""The search parser: request parameters -> query AST, against the real R4 registry.

Rules of http://hl7.org/fhir/R4/search.html; the choices R4 leaves open are in parse.py.
Here: parameter types, modifiers and prefixes. Chains, _has, _include and _sort are in
test_parse_chains.py; result parameters, lenient mode and errors in test_parse_results.py.
"""

from __future__ import annotations

import pytest

from fhir_server.search.model import (
    CompositeValue,
    DateValue,
    NumberValue,
    ParamTest,
    QuantityValue,
    ReferenceValue,
    StringValue,
    TokenValue,
    UriValue,
)
from fhir_server.search.parse import (
    parse_search,
)
from fhir_server.search.registry import SearchRegistry
from fhir_server.search.values import date_bounds
from tests.unit.search.parse_helpers import BASE, LOINC, UCUM, error, param_test, parse

# --- string ------------------------------------------------------------------------------------


def test_string(registry: SearchRegistry) -> None:
    test = param_test(registry, "Patient", "name", "Smith")
    assert test.param.code == "name"
    assert test.param.resource_type == "Patient"
    assert test.modifier is None
    assert test.values == (StringValue("Smith"),)


@pytest.mark.parametrize("modifier", ["exact", "contains"])
def test_string_modifiers(registry: SearchRegistry, modifier: str) -> None:
    test = param_test(registry, "Patient", f"name:{modifier}", "Ev")
    assert test.modifier == modifier
    assert test.values == (StringValue("Ev"),)


def test_comma_is_or_and_repetition_is_and(registry: SearchRegistry) -> None:
    parsed = parse(registry, "Patient", ("name", "a,b"), ("name", "c"))
    first, second = parsed.criteria.tests
    assert isinstance(first, ParamTest) and isinstance(second, ParamTest)
    assert first.values == (StringValue("a"), StringValue("b"))
    assert second.values == (StringValue("c"),)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"a\,b", ["a,b"]),
        (r"a\\,b", ["a\\", "b"]),
        (r"a\$b\|c", ["a$b|c"]),
        (r"back\slash", ["back\\slash"]),
        ("a,,b,", ["a", "b"]),
    ],
)
def test_escapes(registry: SearchRegistry, raw: str, expected: list[str]) -> None:
    test = param_test(registry, "Patient", "name", raw)
    assert test.values == tuple(StringValue(v) for v in expected)


def test_empty_value_is_ignored(registry: SearchRegistry) -> None:
    parsed = parse(registry, "Patient", ("name", ""), ("gender", ","), ("family", "x"))
    assert [t.param.code for t in parsed.criteria.tests if isinstance(t, ParamTest)] == ["family"]
    assert parsed.applied == (("family", "x"),)


def test_bad_string_modifier_names_parameter_and_modifier(registry: SearchRegistry) -> None:
    message = error(registry, "Patient", ("name:text", "x")).diagnostics
    assert "'name:text'" in message
    assert ":text" in message
    assert ":exact" in message  # says what is allowed


# --- token ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("male", TokenValue(None, "male")),
        (f"{LOINC}|1234-5", TokenValue(LOINC, "1234-5")),
        ("|1234-5", TokenValue("", "1234-5")),
        (f"{LOINC}|", TokenValue(LOINC, None)),
        (r"a\|b", TokenValue(None, "a|b")),
        (r"sys|a\,b", TokenValue("sys", "a,b")),
    ],
)
def test_token_forms(registry: SearchRegistry, raw: str, expected: TokenValue) -> None:
    assert param_test(registry, "Observation", "code", raw).values == (expected,)


def test_token_text_and_not(registry: SearchRegistry) -> None:
    text = param_test(registry, "Observation", "code:text", "blood|pressure")
    assert text.modifier == "text"
    assert text.values == (TokenValue(None, "blood|pressure"),)
    negated = param_test(registry, "Patient", "gender:not", "male,female")
    assert negated.modifier == "not"
    assert negated.values == (TokenValue(None, "male"), TokenValue(None, "female"))


def test_token_of_type(registry: SearchRegistry) -> None:
    v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    test = param_test(registry, "Patient", "identifier:of-type", f"{v2}|MR|12345")
    assert test.modifier == "of-type"
    assert test.values == (TokenValue(v2, "MR", "12345"),)


@pytest.mark.parametrize("raw", ["sys|MR", "|MR|1", "a|b|c|d"])
def test_token_of_type_needs_three_parts(registry: SearchRegistry, raw: str) -> None:
    message = error(registry, "Patient", ("identifier:of-type", raw)).diagnostics
    assert "'identifier:of-type'" in message
    assert "system|code|value" in message


@pytest.mark.parametrize("raw", ["|", "a|b|c"])
def test_token_malformed(registry: SearchRegistry, raw: str) -> None:
    assert "'code'" in error(registry, "Observation", ("code", raw)).diagnostics


@pytest.mark.parametrize("modifier", ["in", "not-in", "above", "below"])
def test_token_terminology_modifiers_are_not_supported_yet(
    registry: SearchRegistry, modifier: str
) -> None:
    message = error(registry, "Observation", (f"code:{modifier}", "http://vs")).diagnostics
    assert f"'code:{modifier}'" in message
    assert f":{modifier}" in message
    assert "not supported yet" in message


def test_id(registry: SearchRegistry) -> None:
    test = param_test(registry, "Patient", "_id", "a1,b-2.c")
    assert test.param.code == "_id"
    assert test.param.expression is None
    assert test.values == (TokenValue(None, "a1"), TokenValue(None, "b-2.c"))
    assert param_test(registry, "Patient", "_id:not", "x").modifier == "not"


@pytest.mark.parametrize(
    ("name", "value"),
    [("_id", "a/b"), ("_id", "x" * 65), ("_id:exact", "a"), ("_id:missing", "true")],
)
def test_id_errors(registry: SearchRegistry, name: str, value: str) -> None:
    assert "'_id" in error(registry, "Patient", (name, value)).diagnostics


# --- date, number, quantity --------------------------------------------------------------------

PREFIXES = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_date_prefixes(registry: SearchRegistry, prefix: str) -> None:
    test = param_test(registry, "Patient", "birthdate", f"{prefix}2020-02")
    low, high = date_bounds("2020-02")
    assert test.values == (DateValue(prefix, low, high),)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text", ["2020", "2020-02", "2020-02-29", "2020-02-29T10:00", "2020-02-29T10:00:00.123+02:00"]
)
def test_date_precision(registry: SearchRegistry, text: str) -> None:
    low, high = date_bounds(text)
    test = param_test(registry, "Observation", "date", text)
    assert test.values == (DateValue("eq", low, high),)


def test_last_updated(registry: SearchRegistry) -> None:
    test = param_test(registry, "Patient", "_lastUpdated", "gt2021-01-01T00:00:00Z")
    assert test.param.expression == "Patient.meta.lastUpdated"
    [value] = test.values
    assert isinstance(value, DateValue) and value.prefix == "gt"


@pytest.mark.parametrize("raw", ["2020-13", "yesterday", "ge", "2020-02-30", "xx2020"])
def test_bad_date(registry: SearchRegistry, raw: str) -> None:
    message = error(registry, "Patient", ("birthdate", raw)).diagnostics
    assert "'birthdate'" in message
    assert "not a date" in message


@pytest.mark.parametrize("prefix", PREFIXES)
def test_number_prefixes(registry: SearchRegistry, prefix: str) -> None:
    test = param_test(registry, "RiskAssessment", "probability", f"{prefix}0.5")
    assert test.values == (NumberValue(prefix, 0.5, 0.45, 0.55),)  # type: ignore[arg-type]


def test_number_implicit_precision(registry: SearchRegistry) -> None:
    test = param_test(registry, "RiskAssessment", "probability", "100")
    assert test.values == (NumberValue("eq", 100.0, 99.5, 100.5),)


def test_bad_number(registry: SearchRegistry) -> None:
    message = error(registry, "RiskAssessment", ("probability", "gtabc")).diagnostics
    assert "'probability'" in message and "not a number" in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"5.4|{UCUM}|mg", QuantityValue("eq", 5.4, 5.35, 5.45, UCUM, "mg")),
        ("5.4||mg", QuantityValue("eq", 5.4, 5.35, 5.45, None, "mg")),
        ("lt5.4", QuantityValue("lt", 5.4, 5.35, 5.45, None, None)),
        (f"ap5.4|{UCUM}|", QuantityValue("ap", 5.4, 5.35, 5.45, UCUM, None)),
        ("ge1e2||g", QuantityValue("ge", 100.0, 50.0, 150.0, None, "g")),
    ],
)
def test_quantity(registry: SearchRegistry, raw: str, expected: QuantityValue) -> None:
    assert param_test(registry, "Observation", "value-quantity", raw).values == (expected,)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_quantity_prefixes(registry: SearchRegistry, prefix: str) -> None:
    [value] = param_test(registry, "Observation", "value-quantity", f"{prefix}5||mg").values
    assert isinstance(value, QuantityValue) and value.prefix == prefix


@pytest.mark.parametrize("raw", ["5.4|mg", "five||mg", "5|a|b|c"])
def test_bad_quantity(registry: SearchRegistry, raw: str) -> None:
    assert "'value-quantity'" in error(registry, "Observation", ("value-quantity", raw)).diagnostics


def test_prefix_modifier_on_date_is_refused(registry: SearchRegistry) -> None:
    message = error(registry, "Patient", ("birthdate:exact", "2020")).diagnostics
    assert "'birthdate:exact'" in message and ":missing" in message


# --- reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Patient/123", ReferenceValue("Patient", "123")),
        ("123", ReferenceValue(None, "123")),
        (f"{BASE}/Patient/123", ReferenceValue("Patient", "123")),
        ("Patient/123/_history/4", ReferenceValue("Patient", "123")),
        (
            "http://other.org/fhir/Patient/1",
            ReferenceValue(None, None, "http://other.org/fhir/Patient/1"),
        ),
        ("urn:uuid:1234", ReferenceValue(None, None, "urn:uuid:1234")),
    ],
)
def test_reference_forms(registry: SearchRegistry, raw: str, expected: ReferenceValue) -> None:
    assert param_test(registry, "Observation", "subject", raw).values == (expected,)


def test_base_url_with_trailing_slash(registry: SearchRegistry) -> None:
    parsed = parse_search(
        registry, ("Observation",), [("subject", f"{BASE}/Patient/1")], base_url=BASE + "/"
    )
    [test] = parsed.criteria.tests
    assert isinstance(test, ParamTest)
    assert test.values == (ReferenceValue("Patient", "1"),)


def test_canonical_reference(registry: SearchRegistry) -> None:
    url = "http://example.org/PlanDefinition/p"
    test = param_test(registry, "CarePlan", "instantiates-canonical", f"{url}|1.0,{url}")
    assert test.values == (ReferenceValue(None, None, url, "1.0"), ReferenceValue(None, None, url))


def test_reference_type_modifier(registry: SearchRegistry) -> None:
    test = param_test(registry, "Observation", "subject:Patient", "123,Patient/456")
    assert test.modifier == "Patient"
    assert test.values == (ReferenceValue("Patient", "123"), ReferenceValue("Patient", "456"))


def test_reference_identifier(registry: SearchRegistry) -> None:
    test = param_test(registry, "Observation", "subject:identifier", "http://ids|A1,B2")
    assert test.modifier == "identifier"
    assert test.values == (
        ReferenceValue(None, None, identifier_system="http://ids", identifier_value="A1"),
        ReferenceValue(None, None, identifier_value="B2"),
    )


@pytest.mark.parametrize(
    ("name", "raw", "says"),
    [
        ("subject", "Nope/1", "is not a resource type"),
        ("subject", "a b", "not a resource id"),
        ("subject:Patient", "Group/1", "names Group but the modifier :Patient"),
        ("subject:Medication", "1", "Medication is not a target of subject"),
        ("subject:nope", "1", "'nope' is not a modifier of subject"),
        ("subject", "Patient/1|2", "only an absolute (canonical) URL may carry a |version"),
        ("subject:identifier", "a|b|c", ":identifier takes system|value"),
    ],
)
def test_reference_errors(registry: SearchRegistry, name: str, raw: str, says: str) -> None:
    message = error(registry, "Observation", (name, raw)).diagnostics
    assert f"'{name}'" in message
    assert says in message


# --- uri, composite, missing -------------------------------------------------------------------


@pytest.mark.parametrize("modifier", [None, "above", "below"])
def test_uri(registry: SearchRegistry, modifier: str | None) -> None:
    name = "url" if modifier is None else f"url:{modifier}"
    test = param_test(registry, "ValueSet", name, "http://acme.org/fhir/ValueSet/x")
    assert test.modifier == modifier
    assert test.values == (UriValue("http://acme.org/fhir/ValueSet/x"),)


def test_composite(registry: SearchRegistry) -> None:
    test = param_test(
        registry, "Observation", "code-value-quantity", f"{LOINC}|8480-6$gt120||mm[Hg]"
    )
    assert test.param.type == "composite"
    assert test.values == (
        CompositeValue(
            (TokenValue(LOINC, "8480-6"), QuantityValue("gt", 120.0, 119.5, 120.5, None, "mm[Hg]"))
        ),
    )


def test_composite_with_date_and_escapes(registry: SearchRegistry) -> None:
    test = param_test(registry, "Observation", "code-value-date", r"a\$b$ge2020,c$2021")
    low, high = date_bounds("2020")
    low2, high2 = date_bounds("2021")
    assert test.values == (
        CompositeValue((TokenValue(None, "a$b"), DateValue("ge", low, high))),
        CompositeValue((TokenValue(None, "c"), DateValue("eq", low2, high2))),
    )


@pytest.mark.parametrize("raw", ["a", "a$b$c", "$5"])
def test_composite_part_count(registry: SearchRegistry, raw: str) -> None:
    message = error(registry, "Observation", ("code-value-quantity", raw)).diagnostics
    assert "'code-value-quantity'" in message


@pytest.mark.parametrize(
    ("resource_type", "name"),
    [
        ("Patient", "name"),
        ("Patient", "gender"),
        ("Patient", "birthdate"),
        ("Patient", "organization"),
        ("RiskAssessment", "probability"),
        ("Observation", "value-quantity"),
        ("ValueSet", "url"),
        ("Observation", "code-value-quantity"),
    ],
)
@pytest.mark.parametrize("value", [True, False])
def test_missing(registry: SearchRegistry, resource_type: str, name: str, value: bool) -> None:
    test = param_test(registry, resource_type, f"{name}:missing", str(value).lower())
    assert test.modifier == "missing"
    assert test.values == ()
    assert test.missing is value


def test_missing_needs_true_or_false(registry: SearchRegistry) -> None:
    message = error(registry, "Patient", ("name:missing", "yes")).diagnostics
    assert "'name:missing'" in message and "true or false" in message
