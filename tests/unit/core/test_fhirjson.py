"""FHIR JSON keeps numbers exactly as sent (http://hl7.org/fhir/R4/json.html#primitive: "decimal
... the precision of the value must be preserved")."""

from __future__ import annotations

import pytest

from fhir_server.core import fhirjson
from fhir_server.core.errors import InvalidRequest
from fhir_server.core.fhirjson import FhirDecimal


@pytest.mark.parametrize(
    "text",
    [
        "1.50", "0.0000001", "1e2", "1E-7", "-0.0", "3.14159265358979323846264338327950288",
        "123456789012345678901234567890", "-9223372036854775809", "100.000",
    ],
)  # fmt: skip
def test_numbers_round_trip_exactly(text: str) -> None:
    raw = f'{{"resourceType":"Observation","valueDecimal":{text},"n":[{text}]}}'.encode()
    assert fhirjson.dumps(fhirjson.loads(raw)) == raw


def test_plain_documents_stay_on_the_fast_path() -> None:
    value = fhirjson.loads(b'{"a":1,"b":"1.50 in a string","c":[true,null]}')
    assert value == {"a": 1, "b": "1.50 in a string", "c": [True, None]}
    assert type(value["a"]) is int


@pytest.mark.parametrize(
    "text",
    ["18446744073709551615", "9223372036854775808", "-9223372036854775809", "2.0", "1e0"],
)
def test_dotted_strings_beside_inexact_numbers_still_keep_them(text: str) -> None:
    """A string like urn:oid:1.2.3 alone leaves the fast path's result as it is; a decimal, an
    exponent or an integer beyond 64 bits anywhere (nested too) still goes the exact way."""
    plain = fhirjson.loads(b'{"system":"urn:oid:1.2.3","n":[{"v":7}]}')
    assert plain == {"system": "urn:oid:1.2.3", "n": [{"v": 7}]}
    raw = f'{{"system":"urn:oid:1.2.3","n":[{{"v":{text}}}]}}'.encode()
    value = fhirjson.loads(raw)
    assert isinstance(value["n"][0]["v"], FhirDecimal) and value["n"][0]["v"].text == text
    assert fhirjson.dumps(value) == raw


def test_decimal_values_compare_by_value_but_keep_text() -> None:
    value = fhirjson.loads(b'{"a":1.50,"b":9223372036854775807}')
    assert isinstance(value["a"], FhirDecimal) and value["a"] == FhirDecimal("1.5")
    assert value["a"].text == "1.50"
    assert value["b"] == 9223372036854775807 and type(value["b"]) is int


def test_byte_order_mark_is_ignored() -> None:
    assert fhirjson.loads(b'\xef\xbb\xbf{"a":1}') == {"a": 1}


@pytest.mark.parametrize("raw", [b"{", b'{"a":NaN}', b'{"a":Infinity}', b"{'a':1}", b"\xff"])
def test_invalid_json_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        fhirjson.loads(raw)


def test_loads_object_requires_an_object() -> None:
    with pytest.raises(InvalidRequest, match="empty"):
        fhirjson.loads_object(b"  ")
    with pytest.raises(InvalidRequest, match="JSON object"):
        fhirjson.loads_object(b"[1]")


def test_pretty_output_keeps_decimals() -> None:
    assert fhirjson.dumps(fhirjson.loads(b'{"a":1.50}'), pretty=True) == b'{\n  "a": 1.50\n}'
