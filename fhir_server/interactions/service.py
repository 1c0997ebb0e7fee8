"""FhirService: the façade every door calls. It holds the dependencies; each interaction lives
in its own module (reading, writing, conditional, history, search, capabilities)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fhir_server.core.access import CREATE, DELETE, READ, UPDATE
from fhir_server.core.clock import Clock
from fhir_server.core.context import RequestContext
from fhir_server.core.ids import IdFactory
from fhir_server.events.hooks import Hooks
from fhir_server.interactions import capabilities, conditional, history, reading, search, writing
from fhir_server.interactions.authorize import ScopePolicy
from fhir_server.interactions.capabilities import Software
from fhir_server.interactions.locks import KeyedLocks
from fhir_server.interactions.params import Params
from fhir_server.interactions.patching import Patch
from fhir_server.interactions.pipeline import WritePipeline
from fhir_server.interactions.reading import Shown, check_type
from fhir_server.interactions.search import Scope, SearchEngine
from fhir_server.interactions.table import Operations
from fhir_server.interactions.transaction import processor
from fhir_server.interactions.transaction.entries import DEFAULT_MAX_ENTRIES
from fhir_server.interactions.writing import Deleted, Written
from fhir_server.search.extract import Indexer
from fhir_server.search.parse_terminology import SearchTerminology
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ResourceStore


@dataclass(slots=True)
class FhirService:
    store: ResourceStore
    pipeline: WritePipeline
    hooks: Hooks
    clock: Clock
    new_id: IdFactory
    software: Software
    registry: SearchRegistry
    indexer: Indexer
    locks: KeyedLocks = field(default_factory=KeyedLocks)
    max_bundle_entries: int = DEFAULT_MAX_ENTRIES
    policy: ScopePolicy = field(init=False)
    #: CapabilityStatement.rest.security for a FHIR base (the SMART server sets it).
    security: Callable[[str], dict[str, Any]] | None = None
    #: The terminology service as search uses it (``:in``, ``:not-in``, ``:above``, ``:below``
    #: on tokens; set by the composition root; None: those modifiers are refused).
    terminology: SearchTerminology | None = None
    #: The FHIR operations ($expand, $lookup…; set by the composition root).
    operations: Operations | None = None

    def __post_init__(self) -> None:
        self.policy = ScopePolicy(self.registry, self.indexer.index)
        self.pipeline.policy = self.policy  # one policy (and one cache of parsed queries)

    @property
    def engine(self) -> SearchEngine:
        return SearchEngine(
            self.store, self.registry, self.indexer, self.hooks, self.clock, self.policy,
            self.terminology,
        )  # fmt: skip

    def _require(self, ctx: RequestContext, letter: str, type: str) -> None:
        """The type-level scope check, before the store is touched (the pipeline checks the
        content of writes, :meth:`read`/:meth:`vread` the version read)."""
        if ctx.access is not None:
            check_type(type)
            self.policy.require(ctx.access, letter, type)

    async def capabilities(self, ctx: RequestContext) -> dict[str, Any]:
        listed = self.operations.listing() if self.operations is not None else ()
        statement = capabilities.capability_statement(
            ctx.base_url, self.software, self.registry, listed
        )
        if self.security is not None:
            for rest in statement.get("rest", []):
                rest["security"] = self.security(ctx.base_url)
        return statement

    async def read(self, ctx: RequestContext, type: str, id: str, params: Params = ()) -> Shown:
        self._require(ctx, READ, type)
        shown = await reading.read(self.store, self.hooks, ctx, type, id, params)
        if ctx.access is not None:
            self.policy.check_version(ctx.access, READ, shown.version)
        return shown

    async def vread(
        self, ctx: RequestContext, type: str, id: str, vid: str, params: Params = ()
    ) -> Shown:
        self._require(ctx, READ, type)
        shown = await reading.vread(self.store, self.hooks, ctx, type, id, vid, params)
        if ctx.access is not None:
            self.policy.check_version(ctx.access, READ, shown.version)
        return shown

    async def create(
        self,
        ctx: RequestContext,
        type: str,
        body: dict[str, Any],
        if_none_exist: str | None = None,
    ) -> Written:
        self._require(ctx, CREATE, type)
        if if_none_exist is not None:
            return await conditional.create(
                self.store, self.pipeline, self.new_id, self.registry, ctx, type, body,
                if_none_exist,
            )  # fmt: skip
        return await writing.create(self.pipeline, self.new_id, ctx, type, body)

    async def create_all(
        self, ctx: RequestContext, type: str, bodies: Sequence[dict[str, Any]]
    ) -> list[Written]:
        """Several creates of one type in one unit of work, all or none (the audit trail's
        batches); the caller's scopes need ``c`` on the type."""
        self._require(ctx, CREATE, type)
        return await writing.create_all(self.pipeline, self.new_id, ctx, type, bodies)

    async def update_conditional(
        self,
        ctx: RequestContext,
        type: str,
        query: str,
        body: dict[str, Any],
        if_match: int | None = None,
    ) -> Written:
        self._require(ctx, UPDATE, type)
        return await conditional.update(
            self.store, self.pipeline, self.locks, self.new_id, self.registry, ctx, type, query,
            body, if_match,
        )  # fmt: skip

    async def delete_conditional(
        self, ctx: RequestContext, type: str, query: str, if_match: int | None = None
    ) -> Deleted:
        self._require(ctx, DELETE, type)
        return await conditional.delete(
            self.store, self.pipeline, self.locks, self.registry, ctx, type, query, if_match
        )

    async def update(
        self,
        ctx: RequestContext,
        type: str,
        id: str,
        body: dict[str, Any],
        if_match: int | None = None,
    ) -> Written:
        self._require(ctx, UPDATE, type)
        return await writing.update(
            self.store, self.pipeline, self.locks, ctx, type, id, body, if_match
        )

    async def patch(
        self, ctx: RequestContext, type: str, id: str, patch: Patch, if_match: int | None = None
    ) -> Written:
        self._require(ctx, UPDATE, type)
        return await writing.patch(
            self.store, self.pipeline, self.locks, ctx, type, id, patch, if_match
        )

    async def delete(
        self, ctx: RequestContext, type: str, id: str, if_match: int | None = None
    ) -> Deleted:
        self._require(ctx, DELETE, type)
        return await writing.delete(self.store, self.pipeline, self.locks, ctx, type, id, if_match)

    async def history(
        self,
        ctx: RequestContext,
        params: Params = (),
        type: str | None = None,
        id: str | None = None,
    ) -> dict[str, Any]:
        return await history.history(
            self.store, self.clock, ctx, params, type, id, policy=self.policy
        )

    async def search(
        self, ctx: RequestContext, scope: Scope, params: Params = (), *, lenient: bool = False
    ) -> dict[str, Any]:
        return await search.search(self.engine, ctx, scope, params, lenient=lenient)

    async def search_type(
        self, ctx: RequestContext, type: str, params: Params = (), *, lenient: bool = False
    ) -> dict[str, Any]:
        return await self.search(ctx, search.type_scope(type), params, lenient=lenient)

    async def search_system(
        self, ctx: RequestContext, params: Params = (), *, lenient: bool = False
    ) -> dict[str, Any]:
        return await self.search(ctx, search.system_scope(), params, lenient=lenient)

    async def search_compartment(
        self,
        ctx: RequestContext,
        compartment_type: str,
        compartment_id: str,
        type: str,
        params: Params = (),
        *,
        lenient: bool = False,
    ) -> dict[str, Any]:
        scope = search.compartment_scope(self.registry, compartment_type, compartment_id, type)
        return await self.search(ctx, scope, params, lenient=lenient)

    async def batch_or_transaction(
        self,
        ctx: RequestContext,
        bundle: object,
        *,
        preference: str = "representation",
        lenient: bool = False,
    ) -> dict[str, Any]:
        """POST [base] with a batch or transaction Bundle: the response Bundle."""
        return await processor.process(
            self, ctx, bundle, preference=preference, lenient=lenient,
            max_entries=self.max_bundle_entries,
        )  # fmt: skip
