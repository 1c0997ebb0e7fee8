"""R4 primitive types: JSON kind and lexical rules (datatypes.html#primitive, json.html)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fhir_server.core.fhirjson import FhirDecimal
from fhir_server.validation.primitives import PRIMITIVES, primitive

VALID: dict[str, list[object]] = {
    "boolean": [True, False],
    "integer": [0, -5, 2**31 - 1, -(2**31)],
    "unsignedInt": [0, 7],
    "positiveInt": [1, 2**31 - 1],
    "decimal": [0, -1, 1.5, FhirDecimal("1.50"), FhirDecimal("1e-3"), Decimal("2")],
    "string": ["a", " ", "\u00a0", "line\nbreak"],
    "markdown": ["# x"],
    "xhtml": ["<div/>"],
    "code": ["a", "a b", "CHEST\u00a0", "\u00a0"],
    "id": ["a", "A-1.b", "a" * 64],
    "uri": ["http://x", "urn:oid:1.2", "#p1"],
    "url": ["http://x/y?z=1"],
    "canonical": ["http://x|1.0"],
    "oid": ["urn:oid:1.2.840"],
    "uuid": ["urn:uuid:c757873d-ec9a-1326-a141-556f43239520"],
    "base64Binary": ["aGVsbG8=", "aGVs bG8=", " aGVsbG8= "],
    "date": ["2020", "2020-02", "2020-02-29"],
    "dateTime": ["2020", "2020-02-29", "2020-02-29T10:00:00Z", "2020-02-29T10:00:00.123+14:00"],
    "instant": ["2020-02-29T10:00:00Z", "2020-02-29T10:00:00.1-05:00"],
    "time": ["00:00:00", "23:59:60", "10:00:00.5"],
}

INVALID: dict[str, list[object]] = {
    "boolean": ["true", 1, 0, None],
    "integer": ["1", 1.0, FhirDecimal("1.0"), True, 2**31, "", None],
    "unsignedInt": [-1, "0"],
    "positiveInt": [0, -1],
    "decimal": ["1.5", True, float("nan"), Decimal("Infinity"), None],
    "string": ["", 5, None],
    "markdown": [""],
    "xhtml": [""],
    "code": ["", " a", "a ", "a  b", "a\tb ", 1],
    "id": ["", "a" * 65, "a b", "a_b", "é"],
    "uri": ["", "http://a b", "a\tb"],
    "url": [""],
    "canonical": ["a b"],
    "oid": ["1.2.3", "urn:oid:3.1"],
    "uuid": [
        "c757873d-ec9a-4326-a141-556f43239520",
        "urn:uuid:C757873D-EC9A-4326-A141-556F43239520",
    ],
    "base64Binary": ["", "abc", "a*cd", "ab cd"],
    "date": ["", "20", "2020-13", "2020-02-30", "2020-02-29T10:00:00Z", "0000"],
    "dateTime": ["2020-02-29T10:00:00", "2020-02-29T10:00Z", "2021-02-29", "2020-01-01T25:00:00Z"],
    "instant": ["2020-02-29", "2020-02-29T10:00:00"],
    "time": ["24:00:00", "10:00", "10:00:00Z"],
}


@pytest.mark.parametrize(("code", "value"), [(c, v) for c, vs in VALID.items() for v in vs])
def test_valid_values(code: str, value: object) -> None:
    prim = primitive(code)
    assert prim is not None and prim.is_valid(value)


@pytest.mark.parametrize(("code", "value"), [(c, v) for c, vs in INVALID.items() for v in vs])
def test_invalid_values(code: str, value: object) -> None:
    prim = primitive(code)
    assert prim is not None and not prim.is_valid(value)


def test_every_r4_primitive_is_known_and_described() -> None:
    assert set(PRIMITIVES) == set(VALID)
    assert primitive("CodeableConcept") is None
    assert PRIMITIVES["date"].describe() == "expected a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD)"


def test_base64_check_is_linear_on_large_invalid_input() -> None:
    prim = PRIMITIVES["base64Binary"]
    assert not prim.is_valid("QUJD " * 200_000 + "!")
