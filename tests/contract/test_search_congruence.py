"""Randomised congruence: every storage backend answers searches exactly like the oracle.

The qdrant-client pattern: a seeded random corpus (Patient, Encounter, Observation and
RiskAssessment, ~200 resources over small value domains so that queries hit) is written through
the storage port *and* into :class:`~fhir_server.search.matcher.MemoryIndex`; then ~300 random
criteria (every test kind, modifier and prefix, OR lists, ANDs, chains, ``_has``, compartments,
``:missing``) must give the same set (paged with ``count=37``), the same ``count`` and, under a
random ``_sort``, the same sequence of sort values (resources with equal sort values may come in
any order). Only the port is used, so a new backend runs this unchanged
(tests/contract/conftest.py). Every disagreement of a seed is collected and shown as the query in
URL form with a small diff.

``FHIR_CONGRUENCE_SEEDS`` runs other seeds: a number N (seeds 1..N) or a comma list.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.search.matcher import MemoryIndex, SortValue
from fhir_server.search.model import (
    MAX_INSTANT,
    MIN_INSTANT,
    ChainTest,
    CompartmentTest,
    CompositeValue,
    Criteria,
    DateValue,
    HasTest,
    NumberValue,
    ParamTest,
    QuantityValue,
    ReferenceValue,
    SearchValue,
    SortKey,
    StringValue,
    Test,
    TokenValue,
    UriValue,
)
from fhir_server.storage.port import ResourceStore, SearchQuery
from tests.contract.search_corpus import COUNTS, Key, write_corpus
from tests.contract.search_queries import Queries

QUERIES = 300
PAGE = 37
DEFAULT_SEEDS = (1, 2, 3, 4, 5)


def seeds() -> list[int]:
    text = os.environ.get("FHIR_CONGRUENCE_SEEDS", "").strip()
    if not text:
        return list(DEFAULT_SEEDS)
    if text.isdigit():
        return list(range(1, int(text) + 1))
    return [int(part) for part in text.split(",")]


def iso(us: int) -> str:
    if us <= MIN_INSTANT:
        return "-inf"
    if us >= MAX_INSTANT:
        return "+inf"
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


# --- the query in URL form, for failure messages ------------------------------------------------


def render_value(value: SearchValue, modifier: str | None) -> str:
    match value:
        case TokenValue(system, code, identifier) if modifier == "of-type":
            return f"{system or ''}|{code}|{identifier}"
        case TokenValue(None, code):
            return f"{code}"
        case TokenValue(system, code):
            return f"{system}|{code or ''}"
        case StringValue(text):
            return text
        case DateValue(prefix, low, high):
            return f"{prefix}[{iso(low)}..{iso(high)}]"
        case NumberValue(prefix, number):
            return f"{prefix}{number:g}"
        case QuantityValue(prefix, number, _, _, system, code):
            return f"{prefix}{number:g}|{system or ''}|{code or ''}"
        case ReferenceValue(_, _, _, _, system, identifier) if modifier == "identifier":
            return f"{system or ''}|{identifier}"
        case ReferenceValue(target_type, target_id, None):
            return f"{target_type}/{target_id}" if target_type else f"{target_id}"
        case ReferenceValue(_, _, url, version):
            return f"{url}|{version}" if version else f"{url}"
        case UriValue(uri):
            return uri
        case CompositeValue(parts):
            return "$".join(render_value(part, None) for part in parts)
    raise AssertionError(value)


def render_test(test: Test) -> str:
    match test:
        case ParamTest(param, "missing", _, missing):
            return f"{param.code}:missing={str(missing).lower()}"
        case ParamTest(param, modifier, values):
            suffix = f":{modifier}" if modifier else ""
            return f"{param.code}{suffix}=" + ",".join(render_value(v, modifier) for v in values)
        case ChainTest(param, targets, inner):
            return f"{param.code}:{'|'.join(targets)}.{render_test(inner)}"
        case HasTest(source, param, inner):
            return f"_has:{source}:{param.code}:{render_test(inner)}"
        case CompartmentTest(kind, id):
            return f"[compartment {kind}/{id}]"
    raise AssertionError(test)


def render(criteria: Criteria, sort: tuple[SortKey, ...] = ()) -> str:
    parts = [render_test(t) for t in criteria.tests]
    if sort:
        parts.append(
            "_sort=" + ",".join(("-" if k.descending else "") + k.param.code for k in sort)
        )
    return f"{'|'.join(criteria.types) or '*'}?{'&'.join(parts)}"


def short(keys: set[Key] | list[Key], most: int = 8) -> str:
    listed = sorted(f"{t}/{i}" for t, i in keys)
    return ", ".join(listed[:most]) + (f" ... ({len(listed)} in all)" if len(listed) > most else "")


# --- comparing a backend with the oracle --------------------------------------------------------


async def fetch_all(
    store: ResourceStore, criteria: Criteria, sort: tuple[SortKey, ...]
) -> tuple[list[Key], list[str]]:
    """Every page of the search (following next cursors), and the paging problems seen: a page
    over ``count``, a loop, or a previous cursor that does not give back the page before."""
    pages: list[list[Key]] = []
    cursors: list[str | None] = []
    problems: list[str] = []
    cursor: str | None = None
    while True:
        page = await store.search(SearchQuery(criteria, sort, count=PAGE, cursor=cursor))
        keys = [(v.resource_type, v.id) for v in page.entries]
        if len(keys) > PAGE:
            problems.append(f"page {len(pages) + 1} has {len(keys)} entries (> {PAGE})")
        pages.append(keys)
        cursors.append(page.previous_cursor)
        if page.next_cursor is None or not keys:
            break
        if len(pages) > 2 * sum(COUNTS.values()) // PAGE + 2:
            problems.append("next cursors never end")
            break
        cursor = page.next_cursor
    if len(pages) >= 2 and cursors[-1] is not None:
        back = await store.search(SearchQuery(criteria, sort, count=PAGE, cursor=cursors[-1]))
        if [(v.resource_type, v.id) for v in back.entries] != pages[-2]:
            problems.append("the last page's previous cursor does not give back the page before")
    elif len(pages) >= 2:
        problems.append("a page after the first has no previous cursor")
    return [key for keys in pages for key in keys], problems


def groups(
    memory: MemoryIndex, keys: list[Key], sort: tuple[SortKey, ...]
) -> list[tuple[tuple[SortValue | None, ...], set[Key]]]:
    """Consecutive resources with the same sort values, as (values, resources)."""
    out: list[tuple[tuple[SortValue | None, ...], set[Key]]] = []
    for key in keys:
        values = memory.sort_values(key, sort)
        if out and out[-1][0] == values:
            out[-1][1].add(key)
        else:
            out.append((values, {key}))
    return out


async def disagreement(
    store: ResourceStore, memory: MemoryIndex, criteria: Criteria, sort: tuple[SortKey, ...]
) -> str | None:
    """None when the backend agrees with the oracle, else what differs (a few lines)."""
    query = render(criteria, sort)
    try:
        found, problems = await fetch_all(store, criteria, sort)
        counted = await store.count(criteria)
    except Exception as error:  # a crash is a disagreement to report like the others
        return f"{query}\n    raised {type(error).__name__}: {str(error)[:200]}"
    expected_order = memory.search(criteria, sort)
    expected = set(expected_order)
    lines = list(problems)
    if len(found) != len(set(found)):
        lines.append(f"duplicates: {short([k for k, n in Counter(found).items() if n > 1])}")
    if set(found) != expected:
        lines.append(f"only backend ({len(set(found) - expected)}): {short(set(found) - expected)}")
        lines.append(f"only oracle ({len(expected - set(found))}): {short(expected - set(found))}")
    if counted != len(expected):
        lines.append(f"count {counted}, oracle {len(expected)}")
    if sort and not lines:
        mine, theirs = groups(memory, found, sort), groups(memory, expected_order, sort)
        if mine != theirs:
            at = next(i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b)
            lines.append(
                f"order differs at sort group {at}: backend {mine[at][0]} {short(mine[at][1], 4)}"
                f" / oracle {theirs[at][0]} {short(theirs[at][1], 4)}"
            )
    return f"{query}\n    " + "\n    ".join(lines) if lines else None


def summary(failures: list[str], total: int) -> str:
    """The first failures in full, then how often each kind of crash happened."""
    crashes = Counter(f.split("raised ", 1)[1] for f in failures if "\n    raised " in f)
    head = "\n".join(failures[:15])
    kinds = "\n".join(f"  {n} x {what}" for what, n in crashes.most_common(5))
    return f"{len(failures)} of {total} queries disagree with the oracle:\n{head}\n" + (
        f"crashes by kind:\n{kinds}" if crashes else ""
    )


@pytest.mark.parametrize("seed", seeds())
async def test_backend_search_agrees_with_the_oracle(store: ResourceStore, seed: int) -> None:
    rng = random.Random(seed)
    corpus = await write_corpus(store, rng)
    queries = Queries(corpus.world)
    failures: list[str] = []
    hits = 0
    for _ in range(QUERIES):
        criteria, sort = queries.criteria()
        hits += bool(corpus.memory.matches(criteria))
        failure = await disagreement(store, corpus.memory, criteria, sort)
        if failure:
            failures.append(failure)
    assert hits > QUERIES // 3, (
        f"only {hits} of {QUERIES} queries match anything: widen the domains"
    )
    assert not failures, summary(failures, QUERIES)
