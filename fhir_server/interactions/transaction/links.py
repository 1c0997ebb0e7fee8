"""Links between a transaction's entries, resolved once every write's identity is known: each
fullUrl stands for ``Type/id`` of the resource its entry creates, updates or matched, and each
conditional reference (``Patient?identifier=sys|val``) for its single match — among the
resources already stored (those this transaction deletes excluded) and those the transaction
itself creates or updates, so an order can point at the patient it creates by identifier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import DanglingReference, FhirError, Issue, PreconditionFailed
from fhir_server.interactions import conditional
from fhir_server.interactions.transaction.entries import relocated
from fhir_server.interactions.transaction.plan import Key, PlannedWrite
from fhir_server.interactions.transaction.references import (
    base_of,
    conditional_reference,
    conditional_references,
    linkable_sites,
    placeholder_references,
    rewrite,
)
from fhir_server.search.matcher import MemoryIndex
from fhir_server.validation.references import ReferenceSite

if TYPE_CHECKING:
    from fhir_server.interactions.service import FhirService


async def resolve_links(
    service: FhirService, ctx: RequestContext, planned: Sequence[PlannedWrite]
) -> None:
    """Rewrite, in place, every plan's body: fullUrls and conditional references become the
    ``Type/id`` they stand for. A conditional reference matching nothing or several resources
    fails the transaction (412) naming the entry and the element."""
    mapping = full_url_mapping(planned)
    sites = {
        plan.entry.index: linkable_sites(plan.body) for plan in planned if plan.body is not None
    }  # one walk of each body serves all three steps
    await _resolve_conditionals(service, ctx, planned, mapping, sites)
    for plan in planned:
        if plan.body is not None:
            found = sites[plan.entry.index]
            rewrite(plan.body, plan.entry.full_url, mapping, found)
            _check_placeholders(plan, found)


def _check_placeholders(plan: PlannedWrite, sites: list[ReferenceSite]) -> None:
    """A reference to a ``urn:uuid:``/``urn:oid:`` that no entry has as its fullUrl can never
    resolve: the transaction fails (422) naming each such element."""
    assert plan.body is not None
    unresolved = [
        site.path
        for site in placeholder_references(plan.body, sites)
        if site.value.startswith(("urn:uuid:", "urn:oid:"))
    ]
    if unresolved:
        issues = [
            Issue(
                "error",
                "not-found",
                f"{path} refers to a urn: that is the fullUrl of no entry of this transaction",
                (path,),
            )
            for path in unresolved
        ]
        raise relocated(plan.entry, DanglingReference(issues[0].diagnostics, issues=issues))


def full_url_mapping(planned: Sequence[PlannedWrite]) -> dict[str, str]:
    """fullUrl → ``Type/id`` for the entries whose fullUrl stands in for an identity the server
    decides: every create (POST, whatever its fullUrl; bundle.html#references) and any write
    whose fullUrl is a ``urn:uuid:``/``urn:oid:``. A POST's RESTful fullUrl (``B/Patient/a2``)
    also stands for the relative ``Patient/a2`` inside the Bundle, as HAPI reads it (the
    official example Bundle-xds relies on it). An update's absolute fullUrl keeps its meaning: a
    URL of that resource on its original server, not a placeholder."""
    mapping: dict[str, str] = {}
    for plan in planned:
        full_url = plan.entry.full_url
        if not full_url or plan.key is None or plan.entry.resource is None:
            continue
        local = f"{plan.key[0]}/{plan.key[1]}"
        if plan.entry.method == "POST":
            mapping.setdefault(full_url, local)
            if (base := base_of(full_url)) is not None:
                mapping.setdefault(full_url[len(base) + 1 :], local)
        elif full_url.startswith(("urn:uuid:", "urn:oid:")):
            mapping.setdefault(full_url, local)
    return mapping


async def _resolve_conditionals(
    service: FhirService,
    ctx: RequestContext,
    planned: Sequence[PlannedWrite],
    mapping: dict[str, str],
    sites: dict[int, list[ReferenceSite]],
) -> None:
    bundle_index: MemoryIndex | None = None
    deleted = {p.key for p in planned if p.action == "delete" and p.key is not None}
    for plan in planned:
        if plan.body is None:
            continue
        for value, site in conditional_references(plan.body, sites[plan.entry.index]):
            if value in mapping:
                continue
            if bundle_index is None:
                bundle_index = _index_of(service, planned)
            try:
                mapping[value] = await _resolve(service, ctx, value, bundle_index, deleted)
            except FhirError as error:
                error.issues = tuple(
                    issue.__class__(issue.severity, issue.code, issue.diagnostics, (site.path,))
                    for issue in error.issues
                )
                raise relocated(plan.entry, error) from None


def _index_of(service: FhirService, planned: Sequence[PlannedWrite]) -> MemoryIndex:
    """The resources this transaction creates or updates, searchable in memory."""
    index = MemoryIndex()
    now = service.clock()
    for order, plan in enumerate(planned):
        if plan.action in ("create", "update") and plan.key and plan.body is not None:
            index.put(*plan.key, service.indexer.index(plan.body), now, order)
    return index


async def _resolve(
    service: FhirService,
    ctx: RequestContext,
    value: str,
    bundle_index: MemoryIndex,
    deleted: set[Key],
) -> str:
    parsed = conditional_reference(value)
    assert parsed is not None
    type_, query = parsed
    criteria = conditional.criteria_of(
        service.registry, type_, query, ctx.base_url, "Conditional reference"
    )
    stored = await conditional.matches(service.store, criteria)
    keys = {(v.resource_type, v.id) for v in stored} - deleted
    keys |= bundle_index.matches(criteria)
    if len(keys) != 1:
        found = "no resource" if not keys else "several resources"
        raise PreconditionFailed(
            f"The conditional reference to {type_} matches {found}; it must match exactly one "
            "(nothing was stored)"
        )
    (match,) = keys
    return f"{match[0]}/{match[1]}"
