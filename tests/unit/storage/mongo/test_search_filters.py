"""Compilation of the search AST to MongoDB filters, as pure data (no server is contacted)."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from fhir_server.core.errors import FeatureNotSupported, InvalidRequest
from fhir_server.search.model import (
    Component,
    CompositeValue,
    Criteria,
    NumberValue,
    ParamTest,
    ParamType,
    QuantityValue,
    SearchParamDef,
    SearchValue,
    SortKey,
    StringValue,
    TokenValue,
)
from fhir_server.storage.cursors import KeysetPosition
from fhir_server.storage.mongo.search_filters import NEVER, FilterCompiler
from fhir_server.storage.mongo.search_index import SEP
from fhir_server.storage.mongo.search_paging import after, columns, sort_value
from fhir_server.storage.mongo.search_values import number_conditions

LOINC = "http://loinc.org"


def sp(code: str, type_: ParamType, *components: SearchParamDef) -> SearchParamDef:
    return SearchParamDef(
        code,
        "Observation",
        type_,
        f"Observation.{code}",
        f"urn:sp:{code}",
        components=tuple(Component(c, c.expression or "") for c in components),
    )


CODE = sp("code", "token")
VALUE = sp("value-quantity", "quantity")
CODE_VALUE = sp("code-value-quantity", "composite", CODE, VALUE)


async def compile_test(param: SearchParamDef, *values: SearchValue, **kw: Any) -> dict[str, Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        "mongodb://127.0.0.1:9", connect=False
    )  # never contacted: no chain, no _has
    compiler = FilterCompiler(client["db"]["resources"], now=0)
    test = ParamTest(param, kw.get("modifier"), values, kw.get("missing"))
    return await compiler.criteria(Criteria(("Observation",), (test,)))


async def test_token_values_are_one_in_over_prefixed_keys() -> None:
    where = await compile_test(
        CODE, TokenValue(LOINC, "1"), TokenValue("", "2"), TokenValue(None, "3")
    )
    assert where == {
        "$and": [
            {"deleted": False},
            {"type": "Observation"},
            {
                "ixt": {
                    "$in": [
                        f"code{SEP}s{SEP}{LOINC}{SEP}1",
                        f"code{SEP}n{SEP}2",
                        f"code{SEP}c{SEP}3",
                    ]
                }
            },
        ]
    }
    negated = await compile_test(CODE, TokenValue(None, "3"), modifier="not")
    assert negated["$and"][2] == {"$nor": [{"ixt": f"code{SEP}c{SEP}3"}]}


async def test_a_value_that_cannot_match_short_cuts_the_query() -> None:
    assert await compile_test(CODE, TokenValue("", None)) == NEVER  # '|' alone
    assert (await compile_test(CODE, TokenValue("", None), modifier="not"))["$and"] == [
        {"deleted": False},
        {"type": "Observation"},
    ]


async def test_composite_components_meet_in_one_element() -> None:
    value = CompositeValue(
        (TokenValue(None, "8480-6"), QuantityValue("gt", 100.0, 99.5, 100.5, None, None))
    )
    where = await compile_test(CODE_VALUE, value)
    assert where["$and"][2] == {
        "ixc": {
            "$elemMatch": {
                "p": "code-value-quantity",
                "t0": f"c{SEP}8480-6",
                "q1": {"$elemMatch": {"h": {"$gt": 100.0}}},
            }
        }
    }
    with pytest.raises(InvalidRequest):
        await compile_test(CODE_VALUE, CompositeValue((TokenValue(None, "x"),)))


async def test_strings_are_anchored_regexes_with_escaped_text() -> None:
    name = sp("name", "string")
    where = await compile_test(name, StringValue("A.(b)"))
    assert where["$and"][2] == {"ixs": {"$regex": f"^name{SEP}a\\.\\(b\\)"}}
    contains = await compile_test(name, StringValue("B"), modifier="contains")
    assert contains["$and"][2] == {"ixs": {"$regex": f"^name{SEP}.*b"}}
    with pytest.raises(FeatureNotSupported):
        await compile_test(name, StringValue("b"), modifier="text")


async def test_missing_and_the_wrong_kind_of_value() -> None:
    assert (await compile_test(CODE, modifier="missing", missing=True))["$and"][2] == {
        "ixp": {"$ne": "code"}
    }
    with pytest.raises(InvalidRequest):
        await compile_test(CODE, modifier="missing")
    with pytest.raises(InvalidRequest):
        await compile_test(CODE, StringValue("x"))


def test_number_ap_bounds_follow_the_floating_point_rule() -> None:
    rng = random.Random(7)
    for _ in range(300):
        v = rng.choice([1.0, 0.3, 100.0, 1e-7, -2.5]) * rng.uniform(0.5, 2)
        margin = 0.1 * abs(v)
        [condition] = number_conditions(NumberValue("ap", v, v, v))
        low, high = condition["v"]["$gte"], condition["v"]["$lte"]
        for t in (low, high):
            assert abs(t - v) <= margin
        for t in (math.nextafter(low, -math.inf), math.nextafter(high, math.inf)):
            assert abs(t - v) > margin


def test_keyset_after_a_missing_value_stays_in_the_missing_group() -> None:
    sort = (SortKey(CODE), SortKey(sp("date", "date"), True))
    order = columns(sort)
    assert [c.field for c in order] == ["m0", "v0", "m1", "v1", "rid"]
    position = KeysetPosition(("a", None), 7)
    assert after(order, position, backward=False) == {
        "$or": [
            {"m0": {"$gt": 0}},
            {"m0": 0, "v0": {"$gt": "a"}},
            {"m0": 0, "v0": "a", "m1": {"$gt": 1}},
            {"m0": 0, "v0": "a", "m1": 1, "v1": None, "rid": {"$gt": 7}},
        ]
    }
    inclusive = KeysetPosition((), 7, backward=True, inclusive=True)
    assert after(columns(()), inclusive, backward=True) == {"rid": {"$lte": 7}}


def test_composites_do_not_sort() -> None:
    with pytest.raises(FeatureNotSupported):
        sort_value(SortKey(CODE_VALUE))
