"""Processing a batch or transaction Bundle (http://hl7.org/fhir/R4/http.html#transaction).

**transaction**: every write goes into one unit of work, so all of them are stored or none.
Writes are planned in the order of the specification (DELETE, POST, PUT/PATCH; http.html#trules),
their fullUrls and conditional references resolved and rewritten, each staged through the write
pipeline (validation, PRE_STORE hooks, search index), then committed together (PRE_COMMIT sees
the whole Bundle; the outbox rows of all entries commit in the same transaction, so POST_COMMIT
hooks never see part of a transaction, nor any of a rolled-back one). GET/HEAD entries run after
the commit and see its result; a failed GET is reported in its own entry. Any failing write
fails the whole transaction with an OperationOutcome naming the entry (position and fullUrl)
and the element. A concurrent change to a resource the transaction reads is retried from the
start, unless an ``ifMatch`` pinned that resource's version (412).

**batch**: each entry is processed alone, in Bundle order, exactly as the equivalent REST
request would be, and answers with its own status; one failing entry changes nothing for the
others.

Under SMART scopes each entry is held to the same checks as its REST request (authorize.py): a
transaction first checks every entry's letter on its type, so an entry the token may not do
fails the whole transaction (403 naming the entry) before anything is stored; writes are
checked again, with their content, when staged; a batch entry gets its own 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fhir_server.core.access import CREATE
from fhir_server.core.clock import to_instant
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import (
    DanglingReference,
    DeleteConflict,
    FhirError,
    Issue,
    PreconditionFailed,
    VersionConflict,
)
from fhir_server.interactions.authorize import LETTERS
from fhir_server.interactions.pipeline import StagedWrite, WriteRequest
from fhir_server.interactions.preconditions import parse_if_match
from fhir_server.interactions.transaction import response as r
from fhir_server.interactions.transaction.dispatch import Target, route
from fhir_server.interactions.transaction.entries import (
    ORDER,
    Entry,
    RequestBundle,
    in_entry,
    read_bundle,
    relocated,
)
from fhir_server.interactions.transaction.gets import run_get
from fhir_server.interactions.transaction.links import resolve_links
from fhir_server.interactions.transaction.plan import PlannedWrite, Planner
from fhir_server.interactions.transaction.writes import (
    response_of,
    run_write,
    stage_request,
    unchanged,
)
from fhir_server.storage.port import ConditionalMatch

if TYPE_CHECKING:
    from fhir_server.interactions.service import FhirService

#: How often a transaction is replayed when a concurrent write got in first.
TRANSACTION_RETRIES = 5

#: Entries staged between two yields to the event loop (a large transaction keeps others served).
YIELD_EVERY = 64


async def process(
    service: FhirService,
    ctx: RequestContext,
    body: object,
    *,
    preference: str = "representation",
    lenient: bool = False,
    max_entries: int,
) -> dict[str, Any]:
    """The response Bundle of a batch or transaction; raises the (relocated) error of the entry
    that failed a transaction."""
    request = read_bundle(body, max_entries)
    if request.type == "batch":
        entries = [
            await _batch_entry(service, ctx, e, preference, lenient) for e in request.entries
        ]
        return r.response_bundle("batch", to_instant(service.clock()), entries)
    return await _transaction(service, ctx, request, preference, lenient)


def _target(ctx: RequestContext, entry: Entry) -> Target:
    try:
        return route(entry.method, entry.url, ctx.base_url)
    except FhirError as error:
        raise relocated(entry, error) from None


async def _batch_entry(
    service: FhirService, ctx: RequestContext, entry: Entry, preference: str, lenient: bool
) -> dict[str, Any]:
    try:
        target = _target(ctx, entry)
        if entry.writes:
            return await run_write(service, ctx, entry, target, preference)
        return await run_get(service, ctx, entry, target, lenient)
    except FhirError as error:
        return r.failed_entry(relocated(entry, error))


async def _transaction(
    service: FhirService,
    ctx: RequestContext,
    request: RequestBundle,
    preference: str,
    lenient: bool,
) -> dict[str, Any]:
    targets = {entry.index: _target(ctx, entry) for entry in request.entries}
    _authorize_entries(service, ctx, request.entries, targets)
    writes = sorted((e for e in request.entries if e.writes), key=lambda e: ORDER[e.method])
    for attempt in range(TRANSACTION_RETRIES):
        try:
            planned = await _commit_writes(service, ctx, writes, targets)
            break
        except (VersionConflict, ConditionalMatch) as race:
            pinned = [e for e in writes if e.if_match is not None]
            if pinned:
                raise await _pinned_failure(service, pinned, targets) from None
            if attempt == TRANSACTION_RETRIES - 1:
                if isinstance(race, FhirError):
                    raise
                raise VersionConflict(
                    "Concurrent requests kept changing what this transaction matches; retry it"
                ) from None
    responses: dict[int, dict[str, Any]] = {
        p.entry.index: response_of(ctx, p, preference) for p in planned
    }
    for entry in request.entries:
        if not entry.writes:
            try:
                responses[entry.index] = await run_get(
                    service, ctx, entry, targets[entry.index], lenient
                )
            except FhirError as error:
                responses[entry.index] = r.failed_entry(relocated(entry, error))
    ordered = [responses[entry.index] for entry in request.entries]
    return r.response_bundle("transaction", to_instant(service.clock()), ordered)


async def _commit_writes(
    service: FhirService,
    ctx: RequestContext,
    writes: Sequence[Entry],
    targets: dict[int, Target],
) -> list[PlannedWrite]:
    """One attempt: plan, resolve links, stage, commit. Returns the plans, each with the
    version it stored in ``current``."""
    planner = Planner(service.store, service.registry, service.new_id, ctx)
    planned: list[PlannedWrite] = []
    await planner.prefetch([(entry, targets[entry.index]) for entry in writes])
    for entry in writes:
        try:
            if_match = parse_if_match(entry.if_match, "request.ifMatch")
            planned.append(await planner.plan(entry, targets[entry.index], if_match))
        except FhirError as error:
            raise relocated(entry, error) from None
    _check_overlaps(planned)
    _authorize_matches(service, ctx, planned)
    await resolve_links(service, ctx, planned)
    if ctx.keep_unchanged:
        for plan in planned:
            if unchanged(plan):
                plan.action = "none"  # answered with the current version, nothing stored
    staged: list[tuple[PlannedWrite, StagedWrite]] = []
    for count, plan in enumerate(planned, 1):
        if count % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        try:
            write: WriteRequest | None = stage_request(plan)
            if write is not None:
                staged.append((plan, await service.pipeline.stage(ctx, write)))
        except FhirError as error:
            raise relocated(plan.entry, error) from None
    if staged:
        try:
            async with service.store.unit_of_work() as uow:
                await service.pipeline.commit(uow, [s for _, s in staged])
        except (DanglingReference, DeleteConflict) as refused:
            raise _located(refused, planned) from None
    for plan, stage in staged:
        plan.stored = stage.version
    return planned


def _authorize_entries(
    service: FhirService, ctx: RequestContext, entries: Sequence[Entry], targets: dict[int, Target]
) -> None:
    """The letter of every entry on its type, before anything is planned or stored."""
    if ctx.access is None:
        return
    for entry in entries:
        target = targets[entry.index]
        letter = LETTERS.get(target.handler)
        if letter is None or not target.type or target.type == "*":
            continue
        try:
            service.policy.require(ctx.access, letter, target.type)
        except FhirError as error:
            raise relocated(entry, error) from None


def _authorize_matches(
    service: FhirService, ctx: RequestContext, planned: Sequence[PlannedWrite]
) -> None:
    """A conditional create that matched answers with the match: it must be within scopes."""
    if ctx.access is None:
        return
    for plan in planned:
        if plan.action == "none" and plan.current is not None and plan.target.handler == "create":
            try:
                service.pipeline.check_existing(ctx, CREATE, plan.current)
            except FhirError as error:
                raise relocated(plan.entry, error) from None


def _located(
    error: DanglingReference | DeleteConflict, planned: Sequence[PlannedWrite]
) -> FhirError:
    """A refusal of the store at commit (referential integrity), its issues located in the
    entries whose writes caused them: the resource holding a dangling reference, or the
    resource whose deletion others still refer to."""
    entries = {plan.key: plan.entry for plan in planned if plan.key is not None}
    if isinstance(error, DeleteConflict):
        entry = entries.get(error.target)
        return error if entry is None else relocated(entry, error)
    issues: list[Issue] = []
    for issue, source in zip(error.issues, error.sources, strict=False):
        entry = entries.get(source)
        issues += [issue] if entry is None else in_entry(entry, _single(issue))
    first = entries.get(error.sources[0]) if error.sources else None
    moved = error if first is None else relocated(first, error)
    moved.issues = tuple(issues) or error.issues
    return moved


def _single(issue: Issue) -> FhirError:
    return FhirError(issue.diagnostics, issues=[issue])


def _check_overlaps(planned: Sequence[PlannedWrite]) -> None:
    """http.html#trules: identities (resolved conditional ones included) may not overlap."""
    seen: dict[tuple[str, str], Entry] = {}
    for plan in planned:
        if plan.key is None:
            continue
        first = seen.setdefault(plan.key, plan.entry)
        if first is not plan.entry:
            raise relocated(
                plan.entry,
                PreconditionFailed(
                    f"{plan.key[0]}/{plan.key[1]} is also the subject of entry {first.index}; "
                    "a transaction may change each resource only once",
                    expression=["request.url"],
                ),
            )


async def _pinned_failure(
    service: FhirService, pinned: Sequence[Entry], targets: dict[int, Target]
) -> FhirError:
    """A concurrent write beat a transaction with ifMatch entries: name the one that no longer
    holds (412), found by reading each pinned resource again."""
    for entry in pinned:
        target = targets[entry.index]
        expected = parse_if_match(entry.if_match, "request.ifMatch")
        current = await service.store.read(target.type, target.id) if target.id else None
        if current is None or current.version != expected:
            return relocated(
                entry,
                PreconditionFailed(
                    f"{target.type}/{target.id} was changed by another request; ifMatch no "
                    "longer holds (nothing of the transaction was stored)",
                    expression=["request.ifMatch"],
                ),
            )
    return VersionConflict(
        "A concurrent request changed a resource of this transaction; nothing was stored, retry"
    )
