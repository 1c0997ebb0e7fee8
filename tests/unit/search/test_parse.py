"""The search parser: request parameters -> query AST, against the real R4 registry.

Rules of http://hl7.org/fhir/R4/search.html; the choices R4 leaves open are in parse.py.
"""

from __future__ import annotations

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import (
    ChainTest,
    CompositeValue,
    DateValue,
    HasTest,
    NumberValue,
    ParamTest,
    QuantityValue,
    ReferenceValue,
    StringValue,
    Test,
    TokenValue,
    UriValue,
)
from fhir_server.search.parse import (
    MAX_COUNT,
    Include,
    ParsedSearch,
    parse_conditional,
    parse_search,
)
from fhir_server.search.registry import SearchRegistry
from fhir_server.search.values import date_bounds

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
BASE = "https://fhir.example.org/r4"


@pytest.fixture(scope="module")
def registry() -> SearchRegistry:
    return SearchRegistry.load()


def parse(
    registry: SearchRegistry,
    resource_type: str | None,
    *params: tuple[str, str],
    lenient: bool = False,
) -> ParsedSearch:
    types = (resource_type,) if resource_type else ()
    return parse_search(registry, types, list(params), lenient=lenient, base_url=BASE)


def one(registry: SearchRegistry, resource_type: str | None, name: str, value: str) -> Test:
    [test] = parse(registry, resource_type, (name, value)).criteria.tests
    return test


def param_test(registry: SearchRegistry, resource_type: str, name: str, value: str) -> ParamTest:
    test = one(registry, resource_type, name, value)
    assert isinstance(test, ParamTest)
    return test


def error(
    registry: SearchRegistry, resource_type: str | None, *params: tuple[str, str]
) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        parse(registry, resource_type, *params)
    return caught.value


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


# --- chains and _has ---------------------------------------------------------------------------


def test_chain_with_type(registry: SearchRegistry) -> None:
    test = one(registry, "Observation", "subject:Patient.name", "peter")
    assert isinstance(test, ChainTest)
    assert test.param.code == "subject"
    assert test.target_types == ("Patient",)
    assert isinstance(test.test, ParamTest)
    assert test.test.param.resource_type == "Patient"
    assert test.test.values == (StringValue("peter"),)


def test_chain_without_type_covers_every_target_having_the_parameter(
    registry: SearchRegistry,
) -> None:
    test = one(registry, "Observation", "subject.name", "x")
    assert isinstance(test, ChainTest)
    assert test.target_types == ("Location", "Patient")  # Device and Group have no `name`


def test_chain_modifier_on_the_last_link(registry: SearchRegistry) -> None:
    test = one(registry, "Observation", "subject:Patient.name:exact", "Peter")
    assert isinstance(test, ChainTest) and isinstance(test.test, ParamTest)
    assert test.test.modifier == "exact"


def test_chain_two_and_three_levels(registry: SearchRegistry) -> None:
    two = one(registry, "Observation", "subject:Patient.organization.name", "acme")
    assert isinstance(two, ChainTest) and isinstance(two.test, ChainTest)
    assert two.test.param.code == "organization"
    assert two.test.target_types == ("Organization",)
    assert isinstance(two.test.test, ParamTest) and two.test.test.param.code == "name"
    three = one(registry, "Observation", "subject:Patient.organization.partof.name", "acme")
    assert isinstance(three, ChainTest) and isinstance(three.test, ChainTest)
    assert isinstance(three.test.test, ChainTest)
    assert three.test.test.param.code == "partof"
    assert isinstance(three.test.test.test, ParamTest)


def test_chain_too_deep(registry: SearchRegistry) -> None:
    name = "subject:Patient.organization.partof.partof.name"
    message = error(registry, "Observation", (name, "x")).diagnostics
    assert "levels deep" in message and "'subject:Patient.organization" in message


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("code.name", "only references chain"),
        ("subject:Medication.code", "Medication is not a target of subject"),
        ("subject.", "needs a parameter after"),
        ("subject:Patient.nope", "Unknown search parameter 'nope' on Patient"),
    ],
)
def test_chain_errors(registry: SearchRegistry, name: str, says: str) -> None:
    message = error(registry, "Observation", (name, "x")).diagnostics
    assert says in message
    assert name.split(".")[0] in message


def test_reverse_chain(registry: SearchRegistry) -> None:
    test = one(registry, "Patient", "_has:Observation:patient:code", f"{LOINC}|1234-5")
    assert isinstance(test, HasTest)
    assert test.source_type == "Observation"
    assert test.param.code == "patient" and test.param.resource_type == "Observation"
    assert isinstance(test.test, ParamTest)
    assert test.test.values == (TokenValue(LOINC, "1234-5"),)


def test_nested_reverse_chain(registry: SearchRegistry) -> None:
    name = "_has:Observation:patient:_has:AuditEvent:entity:agent"
    test = one(registry, "Patient", name, "Practitioner/1")
    assert isinstance(test, HasTest) and isinstance(test.test, HasTest)
    assert test.test.source_type == "AuditEvent"
    assert isinstance(test.test.test, ParamTest)
    assert test.test.test.values == (ReferenceValue("Practitioner", "1"),)


def test_reverse_chain_with_a_chain_and_a_modifier(registry: SearchRegistry) -> None:
    test = one(registry, "Patient", "_has:Observation:patient:performer:Practitioner.name", "x")
    assert isinstance(test, HasTest) and isinstance(test.test, ChainTest)
    assert test.test.target_types == ("Practitioner",)


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("_has:Observation:encounter:code", "Observation.encounter cannot refer to Patient"),
        ("_has:Observation:code:code", "'code' is not a reference parameter of Observation"),
        ("_has:Nope:patient:code", "'Nope' is not a resource type"),
        ("_has:Observation:patient", "_has takes _has:Type:parameter:parameter"),
        ("_has:Observation:patient:nope", "Unknown search parameter 'nope' on Observation"),
    ],
)
def test_reverse_chain_errors(registry: SearchRegistry, name: str, says: str) -> None:
    message = error(registry, "Patient", (name, "x")).diagnostics
    assert says in message and "'_has:" in message


def test_reverse_chain_needs_a_type(registry: SearchRegistry) -> None:
    message = error(registry, None, ("_has:Observation:patient:code", "x")).diagnostics
    assert "not a system search" in message


# --- result parameters -------------------------------------------------------------------------


def test_sort(registry: SearchRegistry) -> None:
    parsed = parse(registry, "Observation", ("_sort", "-date,code,_id"))
    assert [(k.param.code, k.descending) for k in parsed.sort] == [
        ("date", True),
        ("code", False),
        ("_id", False),
    ]
    assert parsed.sort[0].param.resource_type == "Observation"
    assert parsed.applied == (("_sort", "-date,code,_id"),)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ((("_sort", "nope"),), "cannot sort by 'nope'"),
        ((("_sort", "-code-value-quantity"),), "composite"),
        ((("_sort", "date"), ("_sort", "code")), "may appear only once"),
        ((("_sort:asc", "date"),), "takes no modifier"),
    ],
)
def test_sort_errors(
    registry: SearchRegistry, params: tuple[tuple[str, str], ...], says: str
) -> None:
    message = error(registry, "Observation", *params).diagnostics
    assert "'_sort" in message and says in message


@pytest.mark.parametrize(
    ("raw", "count"), [("10", 10), ("0", 0), ("1000", 1000), ("5000", MAX_COUNT)]
)
def test_count(registry: SearchRegistry, raw: str, count: int) -> None:
    parsed = parse(registry, "Patient", ("_count", raw))
    assert parsed.count == count
    assert parsed.applied == (("_count", str(count)),)


@pytest.mark.parametrize("raw", ["-1", "ten", "1.5", "١٢"])
def test_bad_count(registry: SearchRegistry, raw: str) -> None:
    assert "'_count'" in error(registry, "Patient", ("_count", raw)).diagnostics


def test_defaults(registry: SearchRegistry) -> None:
    parsed = parse(registry, "Patient")
    assert parsed.criteria.types == ("Patient",)
    assert parsed.criteria.tests == ()
    assert (parsed.count, parsed.cursor, parsed.total, parsed.summary, parsed.elements) == (
        None,
        None,
        "none",
        None,
        None,
    )
    assert parsed.includes == parsed.revincludes == ()
    assert parsed.applied == ()
    assert parsed.ignored == ()


def test_total_summary_elements_cursor(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        "Patient",
        ("_total", "accurate"),
        ("_summary", "count"),
        ("_elements", "name,gender"),
        ("_cursor", "opaque-token"),
        ("_format", "json"),
    )
    assert parsed.total == "accurate"
    assert parsed.summary == "count"
    assert parsed.elements == "name,gender"
    assert parsed.cursor == "opaque-token"
    assert parsed.applied == (
        ("_total", "accurate"),
        ("_summary", "count"),
        ("_elements", "name,gender"),
    )


@pytest.mark.parametrize("name", ["_total", "_summary"])
def test_bad_choice(registry: SearchRegistry, name: str) -> None:
    message = error(registry, "Patient", (name, "maybe")).diagnostics
    assert f"'{name}'" in message and "expected one of" in message


def test_includes(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        "Observation",
        ("_include", "Observation:subject"),
        ("_include", "Observation:subject:Patient"),
        ("_include:iterate", "Patient:general-practitioner"),
        ("_include:recurse", "Patient:organization"),
        ("_include", "Observation:subject"),  # a repeat adds nothing
        ("_revinclude", "Provenance:target"),
        ("_revinclude:iterate", "Observation:*"),
    )
    subject = registry.for_type("Observation")["subject"]
    patient = registry.for_type("Patient")
    assert parsed.includes == (
        Include("Observation", subject, None, False),
        Include("Observation", subject, "Patient", False),
        Include("Patient", patient["general-practitioner"], None, True),
        Include("Patient", patient["organization"], None, True),
    )
    assert parsed.revincludes == (
        Include("Provenance", registry.for_type("Provenance")["target"], None, False),
        Include("Observation", None, None, True),
    )
    assert ("_include:iterate", "Patient:general-practitioner") in parsed.applied


def test_include_wildcard(registry: SearchRegistry) -> None:
    assert parse(registry, "Observation", ("_include", "*")).includes == (
        Include("Observation", None, None, False),
    )
    assert parse(registry, None, ("_include:iterate", "*")).includes == (
        Include("*", None, None, True),
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("_include", "Observation", "expected Type:parameter"),
        ("_include", "Observation:subject:Patient:x", "expected Type:parameter"),
        ("_include", "Nope:subject", "'Nope' is not a resource type"),
        ("_include", "Observation:nope", "'nope' is not a reference parameter of Observation"),
        ("_include", "Observation:code", "'code' is not a reference parameter of Observation"),
        ("_include", "Observation:subject:Nope", "'Nope' is not a resource type"),
        ("_include", "Observation:subject:Medication", "Medication is not a target"),
        ("_include:deep", "Observation:subject", "takes :iterate"),
        ("_revinclude", "*", "name the source type"),
    ],
)
def test_include_errors(registry: SearchRegistry, name: str, value: str, says: str) -> None:
    message = error(registry, "Observation", (name, value)).diagnostics
    assert f"'{name}'" in message and says in message


# --- system search, _type ------------------------------------------------------------------------


def test_system_search_knows_the_common_parameters(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        None,
        ("_lastUpdated", "ge2020"),
        ("_tag", "a|b"),
        ("_type", "Patient,Observation"),
    )
    assert parsed.criteria.types == ("Patient", "Observation")
    assert [t.param.resource_type for t in parsed.criteria.tests if isinstance(t, ParamTest)] == [
        "Resource",
        "Resource",
    ]
    assert ("_type", "Patient,Observation") in parsed.applied
    assert "'name'" in error(registry, None, ("name", "x")).diagnostics
    assert "all types" in error(registry, None, ("name", "x")).diagnostics


def test_type_errors(registry: SearchRegistry) -> None:
    assert "'Nope' is not a resource type" in error(registry, None, ("_type", "Nope")).diagnostics
    message = error(registry, None, ("_type", "Patient"), ("_type", "Observation")).diagnostics
    assert "no type in common" in message


def test_compartment_wildcard_search_over_several_types(registry: SearchRegistry) -> None:
    parsed = parse_search(registry, ("Observation", "Condition"), [("_lastUpdated", "ge2020")])
    assert parsed.criteria.types == ("Observation", "Condition")
    assert len(parsed.criteria.tests) == 1


# --- unknown and unsupported; lenient ------------------------------------------------------------

UNSUPPORTED = ["_text", "_content", "_query", "_filter", "_list", "_contained", "_containedType"]


@pytest.mark.parametrize("name", [*UNSUPPORTED, "near"])
def test_unsupported_parameters_are_named(registry: SearchRegistry, name: str) -> None:
    resource_type = "Location" if name == "near" else "Patient"
    message = error(registry, resource_type, (name, "x")).diagnostics
    assert f"'{name}'" in message and "not supported" in message


def test_unknown_parameter(registry: SearchRegistry) -> None:
    caught = error(registry, "Patient", ("nmae", "x"))
    assert "Unknown search parameter 'nmae' on Patient" in caught.diagnostics
    assert caught.issues[0].expression == ("nmae",)


def test_lenient_drops_unknown_and_unsupported_and_reports_them(registry: SearchRegistry) -> None:
    parsed = parse(
        registry,
        "Patient",
        ("nmae", "x"),
        ("_text", "y"),
        ("gender:in", "http://vs"),
        ("subject.name", "z"),
        ("name", "ok"),
        lenient=True,
    )
    assert parsed.ignored == ("nmae", "_text", "gender:in", "subject.name")
    assert parsed.applied == (("name", "ok"),)
    assert len(parsed.criteria.tests) == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("birthdate", "not-a-date"), ("name:nope", "x"), ("_count", "x"), ("_sort", "nope")],
)
def test_lenient_still_refuses_bad_values_of_known_parameters(
    registry: SearchRegistry, name: str, value: str
) -> None:
    with pytest.raises(InvalidRequest):
        parse(registry, "Patient", (name, value), lenient=True)


def test_errors_never_echo_long_values(registry: SearchRegistry) -> None:
    secret = "S" * 500
    for params in [("birthdate", secret), ("subject", f"Patient/{secret}"), (secret, "x")]:
        message = error(registry, "Observation", params).diagnostics
        assert "S" * 61 not in message
        assert len(message) < 300


# --- conditional interactions ------------------------------------------------------------------


def test_conditional(registry: SearchRegistry) -> None:
    criteria = parse_conditional(
        registry, "Patient", "identifier=http%3A%2F%2Fids%7CA1&name=Peter+Pan", BASE
    )
    assert criteria.types == ("Patient",)
    first, second = criteria.tests
    assert isinstance(first, ParamTest) and isinstance(second, ParamTest)
    assert first.values == (TokenValue("http://ids", "A1"),)
    assert second.values == (StringValue("Peter Pan"),)


def test_conditional_resolves_this_servers_urls(registry: SearchRegistry) -> None:
    criteria = parse_conditional(registry, "Observation", f"subject={BASE}/Patient/1", BASE)
    [test] = criteria.tests
    assert isinstance(test, ParamTest) and test.values == (ReferenceValue("Patient", "1"),)


@pytest.mark.parametrize(
    "query",
    ["identifier=a&_sort=name", "_count=1", "_include=Patient:organization", "_type=Patient"],
)
def test_conditional_refuses_result_parameters(registry: SearchRegistry, query: str) -> None:
    with pytest.raises(InvalidRequest, match="conditional"):
        parse_conditional(registry, "Patient", query, BASE)


def test_conditional_is_strict(registry: SearchRegistry) -> None:
    with pytest.raises(InvalidRequest, match="nmae"):
        parse_conditional(registry, "Patient", "nmae=x", BASE)


def test_a_reference_value_outside_the_declared_targets_is_still_searched(
    registry: SearchRegistry,
) -> None:
    """Stored data holds such references (three official R4 examples do); refusing the search
    would hide them."""
    parsed = parse_search(registry, ("Observation",), [("subject", "Medication/1")])
    (test,) = parsed.criteria.tests
    assert isinstance(test, ParamTest)
    assert test.values == (ReferenceValue("Medication", "1"),)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("birthdate", "Popescu-Ionescu"),
        ("general-practitioner", "Popescu-Ionescu/1"),
        ("general-practitioner", "Popescu Ionescu"),
        ("_id", "Popescu Ionescu"),
        ("death-date", "geIonescu"),
    ],
)
def test_ro1_4_search_errors_never_echo_values(
    registry: SearchRegistry, name: str, raw: str
) -> None:
    """Search values may be personal data: errors name the parameter, never the value."""
    with pytest.raises(InvalidRequest) as caught:
        parse_search(registry, ("Patient",), [(name, raw)])
    message = str(caught.value)
    assert name in message
    assert "Popescu" not in message and "Ionescu" not in message
