"""``_include`` and ``_revinclude`` (http://hl7.org/fhir/R4/search.html#include).

Forward includes follow the references the indexer extracts for the named parameter (``*``: every
reference parameter of the type); reverse includes are ordinary searches on the source type for
references to the matches. ``:iterate`` repeats on what was included, up to
:data:`MAX_ITERATIONS` rounds. At most :data:`MAX_INCLUDED` resources are added to one page; past
that the Bundle carries an OperationOutcome entry saying the includes were cut, never silently.
References to other servers (absolute URLs not under this server's base) are not followed.
With ``keep`` (the caller's scopes, interactions/authorize.py) a resource it may not read is
left out silently, and not followed further by ``:iterate``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from fhir_server.core import fhirjson
from fhir_server.core.context import RequestContext
from fhir_server.search.extract import Indexer
from fhir_server.search.model import (
    Criteria,
    ParamTest,
    ReferenceEntry,
    ReferenceValue,
    SearchParamDef,
    TokenValue,
)
from fhir_server.search.parse import Include, ParsedSearch
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ResourceStore, ResourceVersion, SearchQuery

MAX_INCLUDED = 1000
MAX_ITERATIONS = 4
_CHUNK = 200

T = TypeVar("T")

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Included:
    versions: list[ResourceVersion]
    outcome: dict[str, Any] | None = None


async def included(
    store: ResourceStore,
    registry: SearchRegistry,
    indexer: Indexer,
    ctx: RequestContext,
    matches: Sequence[ResourceVersion],
    parsed: ParsedSearch,
    keep: Callable[[ResourceVersion], bool] | None = None,
) -> Included:
    if not parsed.includes and not parsed.revincludes:
        return Included([])
    seen: set[Key] = {(v.resource_type, v.id) for v in matches}
    found: list[ResourceVersion] = []
    frontier = list(matches)
    truncated = False
    for round_ in range(MAX_ITERATIONS):
        forward = [i for i in parsed.includes if round_ == 0 or i.iterate]
        reverse = [i for i in parsed.revincludes if round_ == 0 or i.iterate]
        if not frontier or not (forward or reverse):
            break
        budget = MAX_INCLUDED - len(found)
        batch = await _forward(store, registry, indexer, ctx, frontier, forward, seen, budget)
        batch += await _reverse(store, registry, frontier, reverse, seen, budget - len(batch))
        if keep is not None:
            batch = [v for v in batch if keep(v)]
        if len(found) + len(batch) >= MAX_INCLUDED:
            truncated = True
            batch = batch[: MAX_INCLUDED - len(found)]
        found += batch
        frontier = batch
        if truncated:
            break
    outcome = _truncation_outcome() if truncated else None
    return Included(found, outcome)


async def _forward(
    store: ResourceStore,
    registry: SearchRegistry,
    indexer: Indexer,
    ctx: RequestContext,
    sources: Sequence[ResourceVersion],
    includes: Sequence[Include],
    seen: set[Key],
    budget: int,
) -> list[ResourceVersion]:
    wanted: dict[str, list[str]] = {}
    for version in sources:
        rules = [i for i in includes if i.source_type in (version.resource_type, "*")]
        if not rules or version.body is None:
            continue
        resource = fhirjson.loads(version.body)
        for rule in rules:
            for code in _reference_codes(registry, rule, version.resource_type):
                for entry in indexer.entries(resource, code):
                    key = _local_target(entry, ctx.base_url, rule.target_type)
                    if key is not None and key not in seen:
                        seen.add(key)
                        wanted.setdefault(key[0], []).append(key[1])
    out: list[ResourceVersion] = []
    for resource_type, ids in wanted.items():
        for chunk in _chunks(ids):
            if len(out) > budget:
                return out
            out += await _by_ids(store, registry, resource_type, chunk)
    return out


async def _reverse(
    store: ResourceStore,
    registry: SearchRegistry,
    targets: Sequence[ResourceVersion],
    revincludes: Sequence[Include],
    seen: set[Key],
    budget: int,
) -> list[ResourceVersion]:
    out: list[ResourceVersion] = []
    for rule in revincludes:
        for param in _reverse_params(registry, rule, {v.resource_type for v in targets}):
            values = [
                ReferenceValue(v.resource_type, v.id)
                for v in targets
                if not param.targets or v.resource_type in param.targets
            ]
            if rule.target_type is not None:
                values = [v for v in values if v.target_type == rule.target_type]
            for chunk in _chunks(values):
                if len(out) > budget:
                    return out
                test = ParamTest(param, None, tuple(chunk))
                criteria = Criteria((param.resource_type,), (test,))
                page = await store.search(SearchQuery(criteria, count=budget - len(out) + 1))
                for version in page.entries:
                    key = (version.resource_type, version.id)
                    if key not in seen:
                        seen.add(key)
                        out.append(version)
    return out


def _reference_codes(registry: SearchRegistry, rule: Include, source_type: str) -> list[str]:
    if rule.param is not None:
        return [rule.param.code]
    params = registry.for_type(source_type).values()
    return [p.code for p in params if p.type == "reference" and p.expression]


def _reverse_params(
    registry: SearchRegistry, rule: Include, target_types: set[str]
) -> list[SearchParamDef]:
    """The reference parameters a reverse include follows: the named one, or for ``*`` every
    reference parameter of the source type (of every type for ``_revinclude=*``) that can point
    at one of the target types."""
    if rule.param is not None:
        return [rule.param]
    sources = (
        registry.params()
        if rule.source_type == "*"
        else {rule.source_type: registry.for_type(rule.source_type)}
    )
    return [
        p
        for by_code in sources.values()
        for p in by_code.values()
        if p.type == "reference"
        and p.expression
        and (not p.targets or target_types & set(p.targets))
    ]


def _local_target(entry: object, base_url: str, target_type: str | None) -> Key | None:
    if not isinstance(entry, ReferenceEntry):
        return None
    if entry.target_type is None or entry.target_id is None:
        return None
    if entry.url is not None and not entry.url.startswith(base_url.rstrip("/") + "/"):
        return None  # another server's resource
    if target_type is not None and entry.target_type != target_type:
        return None
    return entry.target_type, entry.target_id


async def _by_ids(
    store: ResourceStore, registry: SearchRegistry, resource_type: str, ids: Sequence[str]
) -> list[ResourceVersion]:
    id_param = registry.for_type(resource_type)["_id"]
    test = ParamTest(id_param, None, tuple(TokenValue(None, i) for i in ids))
    page = await store.search(SearchQuery(Criteria((resource_type,), (test,)), count=len(ids)))
    return list(page.entries)


def _chunks(items: Iterable[T]) -> Iterable[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == _CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _truncation_outcome() -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "warning",
                "code": "too-costly",
                "diagnostics": (
                    f"_include/_revinclude stopped after {MAX_INCLUDED} resources on this page; "
                    "use a smaller _count or fewer includes to get them all"
                ),
            }
        ],
    }
