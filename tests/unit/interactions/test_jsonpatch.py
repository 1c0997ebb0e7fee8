"""JSON Patch (RFC 6902): Appendix A, the json-patch-tests suite, and FHIR-specific edge cases."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.core.errors import FhirError, InvalidRequest, UnprocessableResource
from fhir_server.core.fhirjson import FhirDecimal, dumps, loads
from fhir_server.interactions.jsonpatch import (
    Operation,
    apply_operations,
    apply_patch,
    check_identity,
    json_equal,
    parse_patch,
    parse_pointer,
)

DATA = Path(__file__).parent / "data"


def patched(document: Any, patch: object) -> Any:
    return apply_operations(document, parse_patch(patch))


def canonical(value: Any) -> str:
    """Strict comparison text: distinguishes true from 1 and ignores member order."""
    return json.dumps(value, sort_keys=True, default=str)


# --- RFC 6902 Appendix A -----------------------------------------------------------------------

APPENDIX_A: list[tuple[str, Any, list[Any], Any]] = [
    (
        "A.1",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    ("A.3", {"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),
    (
        "A.4",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.9",
        {"baz": "qux"},
        [{"op": "test", "path": "/baz", "value": "bar"}],
        UnprocessableResource,
    ),
    (
        "A.10",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    (
        "A.12",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
        UnprocessableResource,
    ),
    ("A.14", {"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),
    (
        "A.15",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
        UnprocessableResource,
    ),
    (
        "A.16",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
]


@pytest.mark.parametrize(
    ("doc", "patch", "expected"), [c[1:] for c in APPENDIX_A], ids=[c[0] for c in APPENDIX_A]
)
def test_rfc6902_appendix_a(doc: Any, patch: list[Any], expected: Any) -> None:
    if isinstance(expected, type):
        with pytest.raises(expected):
            patched(doc, patch)
    else:
        assert canonical(patched(doc, patch)) == canonical(expected)


def test_rfc6902_a13_two_op_members() -> None:
    # JSON parsing keeps the last 'op' (fhirjson.loads does not reject duplicate names), so this
    # becomes a 'remove' of the missing '/baz' and fails while applying, not while parsing.
    patch = loads('[{"op": "add", "path": "/baz", "value": "qux", "op": "remove"}]')
    with pytest.raises(UnprocessableResource, match="'remove' at '/baz'"):
        patched({"foo": "bar"}, patch)


# --- json-patch-tests suite (see data/SOURCE.md) -----------------------------------------------


def _suite() -> list[Any]:
    cases = []
    for name in ("json-patch-tests-spec_tests.json", "json-patch-tests-tests.json"):
        records = json.loads((DATA / name).read_text(encoding="utf-8"))
        for number, record in enumerate(records):
            label = f"{name.removeprefix('json-patch-tests-')}#{number}: {record.get('comment')}"
            marks = [pytest.mark.skip(reason="disabled upstream")] if record.get("disabled") else []
            cases.append(pytest.param(record, id=label, marks=marks))
    return cases


@pytest.mark.parametrize("record", _suite())
def test_json_patch_tests_suite(record: dict[str, Any]) -> None:
    doc, patch = record["doc"], record["patch"]
    before = copy.deepcopy(doc)
    if "error" in record:
        with pytest.raises((InvalidRequest, UnprocessableResource)):
            patched(doc, patch)
    elif "expected" in record:
        assert canonical(patched(doc, patch)) == canonical(record["expected"])
    else:
        patched(doc, patch)
    assert canonical(doc) == canonical(before)


# --- Parsing the patch document ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"op": "add"}, "must be a JSON array"),
        ([["add"]], "patch operation 0: an operation must be a JSON object"),
        ([{"path": "/a"}], "patch operation 0: 'op' is required"),
        ([{"op": "delete", "path": "/a"}], "patch operation 0: 'op' must be one of add, remove"),
        ([{"op": 1, "path": "/a"}], "'op' must be one of"),
        ([{"op": "remove"}], "patch operation 0: 'path' is required for 'remove'"),
        ([{"op": "remove", "path": 3}], "'path' must be a string"),
        ([{"op": "remove", "path": "a"}], "'path' is not a valid JSON Pointer: it must be empty"),
        ([{"op": "remove", "path": "/a~2"}], "'~' must be followed by '0' or '1'"),
        ([{"op": "remove", "path": "/a~"}], "'~' must be followed by '0' or '1'"),
        ([{"op": "move", "path": "/a", "from": "b"}], "'from' is not a valid JSON Pointer"),
        (
            [{"op": "test", "path": "/a", "value": 1}, {"op": "add", "path": "/b"}] * 2,
            "patch operation 1: 'value' is required for 'add'",
        ),
        ([{"op": "copy", "path": "/a"}], "patch operation 0: 'from' is required for 'copy'"),
        ([{"op": "move", "path": "/a", "from": None}], "'from' must be a string"),
    ],
)
def test_invalid_patch_documents(patch: object, message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_patch(patch)
    assert message in caught.value.diagnostics


def test_required_value_message_names_index_and_member() -> None:
    patch = [{"op": "test", "path": "/a", "value": 1}] * 2 + [{"op": "replace", "path": "/a"}]
    with pytest.raises(InvalidRequest) as caught:
        parse_patch(patch)
    assert caught.value.diagnostics == "patch operation 2: 'value' is required for 'replace'"
    assert caught.value.issues[0].expression == ()


def test_unknown_op_is_not_echoed() -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_patch([{"op": "Jane Doe", "path": "/a"}])
    assert "Jane" not in caught.value.diagnostics


def test_parse_keeps_members_and_ignores_others() -> None:
    (op,) = parse_patch([{"op": "move", "from": "/a~1b", "path": "/c~0d", "value": 1, "x": 2}])
    assert op == Operation(0, "move", parse_pointer("/c~0d"), 1, parse_pointer("/a~1b"))
    assert op.path.tokens == ("c~d",) and op.from_ is not None and op.from_.tokens == ("a/b",)
    assert parse_patch([{"op": "add", "path": "/a", "value": None}])[0].value is None


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", ()),
        ("/", ("",)),
        ("/a/", ("a", "")),
        ("/~01", ("~1",)),
        ("/~10", ("/0",)),
        ("/a~1b/m~0n", ("a/b", "m~n")),
    ],
)
def test_pointer_escapes(text: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(text).tokens == tokens


# --- Applying -----------------------------------------------------------------------------------


def test_dash_appends_and_index_rules() -> None:
    doc = {"a": [1, 2]}
    assert patched(doc, [{"op": "add", "path": "/a/-", "value": 3}]) == {"a": [1, 2, 3]}
    assert patched(doc, [{"op": "add", "path": "/a/2", "value": 3}]) == {"a": [1, 2, 3]}
    for bad in (
        {"op": "replace", "path": "/a/2", "value": 3},
        {"op": "replace", "path": "/a/-", "value": 3},
        {"op": "remove", "path": "/a/-"},
        {"op": "test", "path": "/a/-", "value": 3},
        {"op": "add", "path": "/a/01", "value": 3},
        {"op": "add", "path": "/a/-1", "value": 3},
        {"op": "add", "path": "/a/+1", "value": 3},
        {"op": "add", "path": "/a/\u0661", "value": 3},  # ARABIC-INDIC DIGIT ONE
        {"op": "add", "path": "/a/0/x", "value": 3},  # a number is not a container
    ):
        with pytest.raises(UnprocessableResource):
            patched(doc, [bad])


def test_move_rules() -> None:
    doc = {"a": {"b": 1}, "c": [1, 2]}
    with pytest.raises(UnprocessableResource, match="into one of its children"):
        patched(doc, [{"op": "move", "from": "/a", "path": "/a/b/c"}])
    assert patched(doc, [{"op": "move", "from": "/a", "path": "/a"}]) == doc
    with pytest.raises(UnprocessableResource, match="'/x' does not exist"):
        patched(doc, [{"op": "move", "from": "/x", "path": "/x"}])
    assert patched(doc, [{"op": "move", "from": "/a", "path": "/ab"}]) == {
        "ab": {"b": 1},
        "c": [1, 2],
    }
    assert patched(doc, [{"op": "move", "from": "/c/0", "path": "/c/-"}])["c"] == [2, 1]


def test_root_operations() -> None:
    with pytest.raises(UnprocessableResource, match="whole document cannot be removed"):
        patched({"a": 1}, [{"op": "remove", "path": ""}])
    assert patched({"a": 1}, [{"op": "test", "path": "", "value": {"a": 1}}]) == {"a": 1}
    with pytest.raises(UnprocessableResource, match="not a JSON object"):
        apply_patch({"a": 1}, parse_patch([{"op": "replace", "path": "", "value": []}]))


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (FhirDecimal("1.50"), FhirDecimal("1.5"), True),
        (1, FhirDecimal("1.0"), True),
        (1.5, FhirDecimal("1.50"), True),
        (FhirDecimal("1e2"), 100, True),
        (True, 1, False),
        (False, 0, False),
        (1, True, False),
        (None, False, False),
        ("1", 1, False),
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": None}, False),
        ([1, 2], [2, 1], False),
        ([{"a": True}], [{"a": True}], True),
        ([], {}, False),
    ],
)
def test_json_equality(left: Any, right: Any, equal: bool) -> None:
    assert json_equal(left, right) is equal
    assert json_equal(right, left) is equal


def test_input_is_never_mutated_and_result_shares_nothing() -> None:
    resource = {"resourceType": "Patient", "id": "p1", "name": [{"given": ["A"]}]}
    before = copy.deepcopy(resource)
    ops = parse_patch(
        [
            {"op": "add", "path": "/name/0/given/-", "value": "B"},
            {"op": "add", "path": "/telecom", "value": [{"system": "phone"}]},
        ]
    )
    first = apply_patch(resource, ops)
    assert resource == before
    first["name"][0]["given"].append("C")
    first["telecom"][0]["system"] = "email"
    second = apply_patch(resource, ops)
    assert resource == before
    assert second["telecom"] == [{"system": "phone"}]
    assert second["name"][0]["given"] == ["A", "B"]


def test_atomicity_failing_third_operation_applies_nothing() -> None:
    resource = {"resourceType": "Patient", "id": "p1", "active": True, "name": [{"family": "X"}]}
    before = copy.deepcopy(resource)
    ops = parse_patch(
        [
            {"op": "replace", "path": "/active", "value": False},
            {"op": "remove", "path": "/name/0"},
            {"op": "remove", "path": "/birthDate"},
        ]
    )
    with pytest.raises(UnprocessableResource) as caught:
        apply_patch(resource, ops)
    assert caught.value.diagnostics.startswith("patch operation 2 ('remove' at '/birthDate')")
    assert resource == before


def test_decimal_precision_survives_patch_and_serialisation() -> None:
    resource = loads(
        b'{"resourceType": "Observation", "id": "o1", "valueQuantity": {"value": 1.50}}'
    )
    patch = loads(
        b'[{"op": "test", "path": "/valueQuantity/value", "value": 1.5},'
        b' {"op": "copy", "from": "/valueQuantity/value", "path": "/note"},'
        b' {"op": "replace", "path": "/valueQuantity/value", "value": 2.500},'
        b' {"op": "add", "path": "/component", "value": [{"valueQuantity": {"value": 1.0e-3}}]}]'
    )
    out = dumps(apply_patch(resource, parse_patch(patch)))
    assert b'"valueQuantity":{"value":2.500}' in out
    assert b'"note":1.50' in out
    assert b'"value":1.0e-3' in out


def test_diagnostics_never_echo_resource_or_patch_values() -> None:
    resource = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Secretname"}],
        "birthDate": "1970-01-01",
    }
    failing = [
        [{"op": "test", "path": "/name/0/family", "value": "Othername"}],
        [{"op": "test", "path": "/birthDate", "value": "1980-02-02"}],
        [{"op": "add", "path": "/birthDate/x", "value": "Othername"}],
        [{"op": "remove", "path": "/name/0/family/0"}],
        [{"op": "replace", "path": "/name/1", "value": "Othername"}],
        [{"op": "copy", "from": "/name/0/given", "path": "/x"}],
    ]
    for patch in failing:
        with pytest.raises(UnprocessableResource) as caught:
            apply_patch(resource, parse_patch(patch))
        shown = json.dumps([issue.to_fhir() for issue in caught.value.issues])
        for secret in ("Secretname", "1970", "Othername", "1980"):
            assert secret not in shown
        assert caught.value.diagnostics.startswith("patch operation 0 (")


def test_diagnostics_name_op_and_pointers() -> None:
    with pytest.raises(UnprocessableResource) as caught:
        patched({"a": 1}, [{"op": "copy", "from": "/b~1c", "path": "/d"}])
    assert caught.value.diagnostics == (
        "patch operation 0 ('copy' from '/b~1c' to '/d'): '/b~1c' does not exist"
    )
    with pytest.raises(UnprocessableResource) as long_pointer:
        patched({"a": 1}, [{"op": "remove", "path": "/" + "x" * 5000}])
    assert len(long_pointer.value.diagnostics) < 600


def test_check_identity() -> None:
    original = {"resourceType": "Patient", "id": "p1"}
    check_identity(original, {"resourceType": "Patient", "id": "p1", "active": True})
    for changed in (
        {"resourceType": "Person", "id": "p1"},
        {"resourceType": "Patient"},
        {"resourceType": "Patient", "id": "p2"},
    ):
        with pytest.raises(UnprocessableResource, match="must not change"):
            check_identity(original, changed)


def test_errors_are_fhir_errors_with_invalid_code() -> None:
    for error in (InvalidRequest, UnprocessableResource):
        assert issubclass(error, FhirError) and error.code == "invalid"
