"""Self-find over the whole official R4 example package (npm hl7.fhir.r4.examples@4.0.1, CC0).

Every example is indexed and stored; then, for every search parameter of its type that extracts
a value from it, a query built from that value — written as a client would write it and parsed by
the real parser — must find the example. The query is ANDed with ``_id`` so each search is small;
the parameter's own test still has to match for the example to come back.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from fhir_server.core import fhirjson
from fhir_server.core.errors import InvalidRequest
from fhir_server.core.ids import is_valid_id
from fhir_server.search.extract import Indexer
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    CompositeEntry,
    DateEntry,
    IndexEntry,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    SearchParamDef,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.search.parse import parse_search
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ResourceVersion, SearchQuery
from fhir_server.storage.sqlite import SqliteStore
from tests.r4_examples import iter_parsed_examples

pytestmark = pytest.mark.examples

BASE = "http://testserver/fhir"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 1, 1, tzinfo=UTC)

Query = list[tuple[str, str]]


def escape(value: str) -> str:
    """search.html#escaping: backslash before , $ | and backslash."""
    for char in ("\\", ",", "$", "|"):
        value = value.replace(char, "\\" + char)
    return value


def instant(micros: int) -> str:
    moment = EPOCH + timedelta(microseconds=micros)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def number(value: float) -> str:
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def token_value(entry: TokenEntry) -> tuple[str, str] | None:
    if entry.code is not None:
        system = "" if entry.system is None else escape(entry.system)
        return "", f"{system}|{escape(entry.code)}"
    if entry.text:
        return ":text", escape(entry.text)
    return None


def reference_value(entry: ReferenceEntry) -> tuple[str, str] | None:
    if entry.url is not None:
        version = f"|{entry.version}" if entry.version else ""
        return "", escape(entry.url) + version
    if entry.target_type is not None and entry.target_id is not None:
        return "", f"{entry.target_type}/{entry.target_id}"
    if entry.identifier_value is not None:
        system = escape(entry.identifier_system or "")
        return ":identifier", f"{system}|{escape(entry.identifier_value)}"
    return None


def quantity_values(entry: QuantityEntry) -> list[tuple[str, str]]:
    unit = entry.code if entry.code is not None else entry.unit
    suffix = "" if unit is None else f"|{escape(entry.system or '')}|{escape(unit)}"
    out = []
    if math.isfinite(entry.low):
        out.append(("", f"ge{number(entry.low)}{suffix}"))
    if math.isfinite(entry.high):
        out.append(("", f"le{number(entry.high)}{suffix}"))
    return out


def simple_values(entry: IndexEntry) -> list[tuple[str, str]]:
    """(modifier, value) pairs to AND that all match ``entry``."""
    if isinstance(entry, StringEntry):
        return [("", escape(entry.exact)), (":exact", escape(entry.exact))]
    if isinstance(entry, TokenEntry):
        found = token_value(entry)
        out = [found] if found is not None else []
        if entry.type_code is not None and entry.code is not None:
            kind = f"{escape(entry.type_system or '')}|{escape(entry.type_code)}"
            out.append((":of-type", f"{kind}|{escape(entry.code)}"))
        return out
    if isinstance(entry, DateEntry):
        out = []
        if entry.low != MIN_INSTANT:
            out.append(("", f"ge{instant(entry.low)}"))
        if entry.high != MAX_INSTANT:
            out.append(("", f"le{instant(entry.high)}"))
        return out
    if isinstance(entry, NumberEntry):
        return [("", number(entry.value))]
    if isinstance(entry, QuantityEntry):
        return quantity_values(entry)
    if isinstance(entry, ReferenceEntry):
        found = reference_value(entry)
        return [found] if found is not None else []
    if isinstance(entry, UriEntry):
        return [("", escape(entry.uri))]
    raise AssertionError(f"unexpected entry {entry!r}")


def composite_value(param: SearchParamDef, entry: CompositeEntry) -> str | None:
    parts = []
    for component, entries in zip(param.components, entry.parts, strict=True):
        candidates = [v for e in entries for m, v in simple_values(e) if m == ""]
        if component.param.type == "date":
            candidates = [v for v in candidates if v.startswith("ge")]
        if not candidates:
            return None
        parts.append(candidates[0])
    return "$".join(parts)


def queries(param: SearchParamDef, entries: tuple[object, ...]) -> list[Query]:
    out: list[Query] = []
    for entry in entries:
        if isinstance(entry, CompositeEntry):
            value = composite_value(param, entry)
            if value is not None:
                out.append([(param.code, value)])
            continue
        assert not isinstance(entry, CompositeEntry)
        pairs = simple_values(entry)  # type: ignore[arg-type]
        plain = [(param.code + m, v) for m, v in pairs if not m or m == ":exact"]
        if plain:
            out.append(plain)
        out += [[(param.code + m, v)] for m, v in pairs if m and m != ":exact"]
    return out


async def finds(store: SqliteStore, query: SearchQuery, id: str) -> bool:
    """Whether ``id`` is among the matches, following next pages."""
    while True:
        page = await store.search(query)
        if any(v.id == id for v in page.entries):
            return True
        if page.next_cursor is None:
            return False
        query = SearchQuery(query.criteria, count=query.count, cursor=page.next_cursor)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    instance = SqliteStore(tmp_path / "store", synchronous="OFF")
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


async def test_every_example_is_found_by_every_parameter_it_has(store: SqliteStore) -> None:
    registry = SearchRegistry.load()
    indexer = Indexer(registry.params(), registry.compartments())
    versions: dict[tuple[str, str], int] = {}
    stored: dict[tuple[str, str], tuple[str, dict[str, object]]] = {}
    async with store.unit_of_work() as uow:
        for name, resource in iter_parsed_examples():
            rtype, rid = str(resource["resourceType"]), str(resource.get("id", ""))
            if not rid:
                continue
            number_ = versions.get((rtype, rid), 0) + 1
            versions[(rtype, rid)] = number_
            body = fhirjson.dumps(resource)
            version = ResourceVersion(rtype, rid, number_, T0, "PUT", body)
            uow.put(
                version,
                expected_version=number_ - 1,
                interaction="update",
                index=indexer.index(resource),
            )
            stored[(rtype, rid)] = (name, resource)
    assert len(stored) > 2500

    checked = 0
    failures: list[str] = []
    for (rtype, rid), (name, resource) in stored.items():
        params = registry.for_type(rtype)
        index = indexer.index(resource)
        for code, entries in index.entries.items():
            param = params[code]
            for query in queries(param, entries):
                shown = f"{name}: {rtype}?{'&'.join(f'{k}={v}' for k, v in query)}"
                # An id R4 does not allow (one example has 67 characters) cannot be searched by
                # _id: that example is looked for among all the query's matches instead.
                by_id = [("_id", rid)] if is_valid_id(rid) else []
                try:
                    parsed = parse_search(registry, (rtype,), [*query, *by_id], base_url=BASE)
                except InvalidRequest as error:
                    failures.append(f"{shown} -> refused: {error}")
                    continue
                checked += 1
                if not await finds(store, SearchQuery(parsed.criteria, count=1000), rid):
                    failures.append(shown)
    print(f"self-find: {checked} searches over {len(stored)} examples")
    assert checked > 20_000
    assert not failures, f"{len(failures)} searches missed their example:\n" + "\n".join(
        failures[:40]
    )
