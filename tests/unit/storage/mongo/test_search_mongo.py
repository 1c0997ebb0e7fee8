"""MongoSearch on a running MongoDB (mongoeco here): the cases the contract suite does not reach.

Documents are written directly with the layout of documents.py and the fields of
:func:`index_fields`, so these tests need only the search side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import (
    Criteria,
    DateEntry,
    DateValue,
    HasTest,
    IndexEntry,
    ParamTest,
    ReferenceEntry,
    ResourceIndex,
    SearchParamDef,
    SortKey,
    StringEntry,
    StringValue,
    TokenEntry,
    TokenValue,
    UriEntry,
    UriValue,
)
from fhir_server.search.values import date_bounds, normalize_string
from fhir_server.storage.mongo import search_filters
from fhir_server.storage.mongo.indexes import index_models
from fhir_server.storage.mongo.search import MongoSearch
from fhir_server.storage.mongo.search_index import index_fields
from fhir_server.storage.port import SearchQuery
from tests.mongoeco.fixture import database_url

pytestmark = pytest.mark.mongo

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T1 = 1_600_000_000_000_000  # 2020-09-13T12:26:40Z, in microseconds


def sp(code: str, type_: str, resource_type: str = "Patient") -> SearchParamDef:
    return SearchParamDef(code, resource_type, type_, None, f"urn:{code}")  # type: ignore[arg-type]


NAME = sp("name", "string")
URL = sp("url", "uri")
CODE = sp("code", "token")
UPDATED = sp("_lastUpdated", "date")
SUBJECT = sp("subject", "reference", "Observation")


@pytest.fixture
async def resources(mongo_server: str) -> AsyncIterator[AsyncCollection[dict[str, Any]]]:
    url = database_url(mongo_server, "unit-search-mongo")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    db = client.get_default_database()
    await client.drop_database(db.name)
    collection = db["resources"]
    await collection.create_indexes(index_models())
    await collection.create_indexes(index_models())  # idempotent
    try:
        yield collection
    finally:
        await client.drop_database(db.name)
        await client.close()


async def add(
    resources: AsyncCollection[dict[str, Any]],
    type_: str,
    id: str,
    entries: dict[str, tuple[IndexEntry, ...]],
    *,
    updated: int = T1,
) -> None:
    rid = await resources.count_documents({}) + 1
    body = orjson.dumps({"resourceType": type_, "id": id})
    doc = {"_id": f"{type_}/{id}", "type": type_, "id": id, "version": 1, "lastUpdated": updated}
    doc |= {"method": "POST", "deleted": False, "body": body, "rid": rid}
    await resources.insert_one(doc | index_fields(ResourceIndex(entries)))


def string(text: str) -> tuple[StringEntry]:
    return (StringEntry(normalize_string(text), text),)


async def ids(search: MongoSearch, *tests: Any, sort: tuple[SortKey, ...] = ()) -> list[str]:
    page = await search.page(SearchQuery(Criteria(("Patient",), tests), sort, 100))
    return [v.id for v in page.entries]


async def test_regex_characters_are_literal(resources: AsyncCollection[dict[str, Any]]) -> None:
    await add(resources, "Patient", "a", {"name": string("A.(b)*")})
    await add(resources, "Patient", "b", {"name": string("Axxb")})
    search = MongoSearch(resources, lambda: NOW)
    assert await ids(search, ParamTest(NAME, None, (StringValue("a.(b"),))) == ["a"]
    assert await ids(search, ParamTest(NAME, "contains", (StringValue("(B)*"),))) == ["a"]
    assert await ids(search, ParamTest(NAME, "contains", (StringValue("x"),))) == ["b"]


async def test_uri_above_a_long_uri_scans(resources: AsyncCollection[dict[str, Any]]) -> None:
    base = "http://example.org/" + "p" * 1200
    await add(resources, "Patient", "a", {"url": (UriEntry(base),)})
    await add(resources, "Patient", "b", {"url": (UriEntry(base + "/x"),)})
    await add(resources, "Patient", "c", {"name": string("http://example.org/")})
    search = MongoSearch(resources, lambda: NOW)
    assert await ids(search, ParamTest(URL, "above", (UriValue(base + "/x/y"),))) == ["a", "b"]
    assert await ids(search, ParamTest(URL, "above", (UriValue(base[:-1]),))) == []
    assert await ids(search, ParamTest(URL, "below", (UriValue(base),))) == ["a", "b"]


async def test_last_updated_comes_from_the_document_without_an_entry(
    resources: AsyncCollection[dict[str, Any]],
) -> None:
    await add(resources, "Patient", "doc", {}, updated=T1)
    await add(resources, "Patient", "entry", {"_lastUpdated": (DateEntry(5, 5),)}, updated=T1)
    search = MongoSearch(resources, lambda: NOW)
    low, high = date_bounds("2020-09-13")
    day = ParamTest(UPDATED, None, (DateValue("eq", low, high),))
    assert await ids(search, day) == ["doc"]
    assert await ids(search, ParamTest(UPDATED, "missing", (), True)) == []
    assert await ids(search, sort=(SortKey(UPDATED),)) == ["entry", "doc"]
    assert await ids(search, sort=(SortKey(UPDATED, True),)) == ["doc", "entry"]


async def test_sorted_pages_both_ways(resources: AsyncCollection[dict[str, Any]]) -> None:
    for i, name in enumerate(["c", "a", None, "b", "a"]):
        await add(resources, "Patient", f"p{i}", {"name": string(name)} if name else {})
    search = MongoSearch(resources, lambda: NOW)
    sort = (SortKey(NAME),)
    seen: list[str] = []
    cursor: str | None = None
    pages = []
    while True:
        page = await search.page(SearchQuery(Criteria(("Patient",)), sort, 2, cursor))
        pages.append(page)
        seen += [v.id for v in page.entries]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == ["p1", "p4", "p3", "p0", "p2"]
    assert pages[-1].previous_cursor is not None
    back = await search.page(
        SearchQuery(Criteria(("Patient",)), sort, 2, pages[-1].previous_cursor)
    )
    assert [v.id for v in back.entries] == ["p3", "p0"]
    assert await search.count(Criteria(("Patient",))) == 5
    assert await search.estimate(Criteria(("Patient",))) == 5
    first = await search.first_matches(Criteria(("Patient",)), 2, None)
    assert [v.id for v in first] == ["p0", "p1"]


async def test_has_refuses_an_inner_query_past_the_cap(
    resources: AsyncCollection[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    await add(resources, "Patient", "p", {})
    for i in range(3):
        subject = (ReferenceEntry("Patient", "p"),)
        await add(
            resources,
            "Observation",
            f"o{i}",
            {"subject": subject, "code": (TokenEntry(None, "x"),)},
        )
    search = MongoSearch(resources, lambda: NOW)
    has = HasTest("Observation", SUBJECT, ParamTest(CODE, None, (TokenValue(None, "x"),)))
    assert await ids(search, has) == ["p"]
    monkeypatch.setattr(search_filters, "MAX_JOINED", 2)
    with pytest.raises(InvalidRequest, match="more than 2"):
        await ids(search, has)
