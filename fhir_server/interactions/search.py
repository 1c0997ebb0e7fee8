"""search-type, search-system and compartment search (http://hl7.org/fhir/R4/search.html).

The parameters become an AST (:mod:`fhir_server.search.parse`), the store answers it with keyset
pages, and this module shapes the searchset Bundle: matches (subset by ``_summary``/``_elements``
and passed through PRE_SHOW), ``_include``/``_revinclude`` entries, ``total`` on request, and
self/next/previous links that carry exactly the parameters that were applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fhir_server.core import fhirjson
from fhir_server.core.clock import Clock, to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, InvalidRequest, ResourceNotFound
from fhir_server.events.hooks import Hooks
from fhir_server.interactions import bundles
from fhir_server.interactions.authorize import ScopePolicy
from fhir_server.interactions.authorize_search import Narrowed, narrow_search
from fhir_server.interactions.includes import Included, included
from fhir_server.interactions.params import DEFAULT_PAGE_SIZE, Params
from fhir_server.interactions.reading import check_id, check_type
from fhir_server.interactions.subsetting import Subsetting, SummaryMode, parse_subsetting
from fhir_server.search.extract import Indexer
from fhir_server.search.model import CompartmentTest, Criteria
from fhir_server.search.parse import ParsedSearch, parse_search
from fhir_server.search.parse_terminology import SearchTerminology
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ResourceStore, ResourceVersion, SearchQuery


@dataclass(frozen=True, slots=True)
class SearchEngine:
    """What a search needs; built once by the service."""

    store: ResourceStore
    registry: SearchRegistry
    indexer: Indexer
    hooks: Hooks
    clock: Clock
    policy: ScopePolicy
    #: Answers ``:in``/``:not-in``/``:above``/``:below`` on tokens (None: they are refused).
    terminology: SearchTerminology | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a search runs: the URL path of its links, the types it covers, and for a
    compartment search the compartment."""

    path: str
    types: tuple[str, ...]
    compartment: tuple[str, str] | None = None


def type_scope(resource_type: str) -> Scope:
    check_type(resource_type)
    return Scope(resource_type, (resource_type,))


def system_scope() -> Scope:
    return Scope("", ())


def compartment_scope(
    registry: SearchRegistry, compartment_type: str, compartment_id: str, resource_type: str
) -> Scope:
    """``GET [base]/Patient/123/Observation`` or ``…/Patient/123/*`` (search.html#compartments)."""
    check_type(compartment_type)
    check_id(compartment_type, compartment_id)
    members = registry.compartments().get(compartment_type)
    if members is None:
        known = ", ".join(sorted(registry.compartments()))
        raise ResourceNotFound(
            f"{compartment_type} is not a compartment; R4 defines compartments for {known}"
        )
    path = f"{compartment_type}/{compartment_id}/{resource_type}"
    if resource_type == "*":
        return Scope(path, tuple(sorted(members)), (compartment_type, compartment_id))
    check_type(resource_type)
    if resource_type not in members:
        raise InvalidRequest(
            f"{resource_type} resources are never in the {compartment_type} compartment "
            "(R4 CompartmentDefinition); search the type directly instead"
        )
    return Scope(path, (resource_type,), (compartment_type, compartment_id))


async def search(
    engine: SearchEngine,
    ctx: RequestContext,
    scope: Scope,
    params: Params,
    *,
    lenient: bool = False,
) -> dict[str, Any]:
    parsed = parse_search(
        engine.registry, scope.types, params, lenient=lenient, base_url=ctx.base_url,
        terminology=engine.terminology,
    )  # fmt: skip
    criteria = _scoped(parsed.criteria, scope)
    summary = _checked_subsetting(scope, criteria, parsed)
    narrowed = _authorized(engine, ctx, scope, params, criteria)
    criteria = narrowed.criteria
    self_params = list(parsed.applied)
    now = to_instant(engine.clock())
    if summary.summary is SummaryMode.COUNT:
        if narrowed.keep is not None:
            raise Forbidden(_NO_COUNT)
        counted = await engine.store.count(criteria)
        link = bundles.search_links(ctx.base_url, scope.path, self_params, None, None, None)
        return bundles.bundle("searchset", now, link, [], counted)
    count = DEFAULT_PAGE_SIZE if parsed.count is None else parsed.count
    page = await engine.store.search(SearchQuery(criteria, parsed.sort, count, parsed.cursor))
    matches = page.entries
    if narrowed.keep is not None:
        matches = [v for v in matches if narrowed.keep(v)]
    extra = await included(
        engine.store, engine.registry, engine.indexer, ctx, matches, parsed, _readable(engine, ctx)
    )
    entries = await _entries(engine, ctx, parsed, matches, extra)
    total: int | None = None
    if narrowed.keep is not None:
        pass  # a count of the unfiltered criteria would tell what the caller may not see
    elif parsed.total == "accurate":
        total = await engine.store.count(criteria)
    elif parsed.total == "estimate":
        total = await engine.store.estimate(criteria)
    link = bundles.search_links(
        ctx.base_url,
        scope.path,
        self_params,
        parsed.cursor,
        page.next_cursor,
        page.previous_cursor,
    )
    return bundles.bundle("searchset", now, link, entries, total)


_NO_COUNT = (
    "_summary=count is not available under these access token scopes (their restrictions are "
    "checked resource by resource); search without it"
)


def _authorized(
    engine: SearchEngine,
    ctx: RequestContext,
    scope: Scope,
    params: Params,
    criteria: Criteria,
) -> Narrowed:
    """The criteria narrowed to what the caller's scopes allow (authorize_search.py)."""
    if ctx.access is None:
        return Narrowed(criteria)
    policy = engine.policy
    named = any(name == "_type" for name, _ in params)
    implicit = not named and (not scope.types or scope.path.endswith("/*"))
    return narrow_search(
        policy, ctx.access, criteria, implicit_types=implicit, compartment=scope.compartment
    )


def _readable(
    engine: SearchEngine, ctx: RequestContext
) -> Callable[[ResourceVersion], bool] | None:
    """What an included resource must pass: a scope to read or search it (None: anything)."""
    access = ctx.access
    if access is None:
        return None
    policy = engine.policy
    return lambda version: policy.version_permitted(access, "rs", version)


def _scoped(criteria: Criteria, scope: Scope) -> Criteria:
    types = criteria.types or scope.types
    if scope.types and criteria.types:
        types = tuple(t for t in criteria.types if t in scope.types)
        if not types:
            raise InvalidRequest(
                "_type names no resource type this search covers", expression=["_type"]
            )
    tests = criteria.tests
    if scope.compartment is not None:
        tests = (CompartmentTest(*scope.compartment), *tests)
    return replace(criteria, types=types, tests=tests)


def _checked_subsetting(scope: Scope, criteria: Criteria, parsed: ParsedSearch) -> Subsetting:
    """Check ``_summary`` and ``_elements`` before searching, so a bad value is an error even
    when nothing matches. Over several types ``_elements`` is checked per entry instead."""
    types = criteria.types or scope.types
    if len(types) == 1:
        return parse_subsetting(types[0], parsed.summary, parsed.elements, allow_count=True)
    return parse_subsetting("Resource", parsed.summary, None, allow_count=True)


async def _entries(
    engine: SearchEngine,
    ctx: RequestContext,
    parsed: ParsedSearch,
    matches: Sequence[ResourceVersion],
    extra: Included,
) -> list[dict[str, Any]]:
    shown = [(v, "match") for v in matches] + [(v, "include") for v in extra.versions]
    bodies = await _shown_bodies(engine.hooks, ctx, parsed, shown)
    entries = [
        bundles.search_entry(ctx.base_url, version, body, mode)
        for (version, mode), body in zip(shown, bodies, strict=True)
        if body is not None
    ]
    if extra.outcome is not None:
        entries.append(bundles.outcome_entry(extra.outcome))
    return entries


async def _shown_bodies(
    hooks: Hooks,
    ctx: RequestContext,
    parsed: ParsedSearch,
    shown: list[tuple[ResourceVersion, str]],
) -> list[bytes | None]:
    """The bytes of each entry: stored as is when nothing applies (no parsing at all), else
    subset (matches only: included resources are shown whole) and filtered by PRE_SHOW, which
    may withhold a resource (None)."""
    wants_subset = parsed.summary not in (None, "false") or parsed.elements is not None
    if not wants_subset and not hooks.has_pre_show:
        return [v.body for v, _ in shown]
    resources: list[dict[str, Any]] = []
    for version, mode in shown:
        assert version.body is not None
        resource = fhirjson.loads(version.body)
        if wants_subset and mode == "match":
            subsetting = parse_subsetting(
                version.resource_type, parsed.summary, _elements_for(parsed, version)
            )
            resource = subsetting.apply(resource)
        resources.append(resource)
    if hooks.has_pre_show:
        kept = await hooks.pre_show(ctx, resources)
        allowed = {(r.get("resourceType"), r.get("id")) for r in kept}
        return [
            fhirjson.dumps(r) if (r.get("resourceType"), r.get("id")) in allowed else None
            for r in resources
        ]
    return [fhirjson.dumps(r) for r in resources]


def _elements_for(parsed: ParsedSearch, version: ResourceVersion) -> str | None:
    """``_elements`` for one matched resource. In a search over several types (system or
    compartment ``*``) a name only some types have is applied where it exists."""
    if parsed.elements is None or len(parsed.criteria.types) == 1:
        return parsed.elements
    kept = []
    for name in parsed.elements.split(","):
        try:
            parse_subsetting(version.resource_type, None, name)
        except InvalidRequest:
            continue
        kept.append(name)
    return ",".join(kept) if kept else "id"
