"""The one write pipeline (ARCHITECTURE.md, "How a request flows").

REST create/update/patch/delete, and later transaction entries, HL7 v2 mappings and DICOM ingest,
all store through :meth:`WritePipeline.write`: authorize → build the stored form → validate →
PRE_STORE hooks → one unit of work (version + history + outbox row) with PRE_COMMIT hooks →
commit. POST_COMMIT hooks then run from the outbox. A rejected write changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from fhir_server.core import fhirjson
from fhir_server.core.clock import Clock
from fhir_server.core.context import RequestContext
from fhir_server.events.hooks import Hooks, PendingWrite
from fhir_server.interactions.authorize import ScopePolicy, write_letter
from fhir_server.interactions.stored_form import build_stored_form
from fhir_server.search.model import Criteria, ResourceIndex
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ABSENT, ResourceStore, ResourceVersion, UnitOfWork
from fhir_server.validation.references import LocalReference, local_references

#: Above this size a resource is validated in a worker thread (see ``_validate_off_loop_if_large``).
INLINE_VALIDATION_BYTES = 64 * 1024

#: Validates a stored form; raises UnprocessableResource listing every issue found.
Validator = Callable[[dict[str, Any]], None]

#: Extracts the search index of a stored form (fhir_server.search.extract.Indexer.index).
IndexExtractor = Callable[[dict[str, Any]], ResourceIndex]


def no_index(resource: dict[str, Any]) -> ResourceIndex:
    """An extractor that indexes nothing (stores and tests that do not search)."""
    return ResourceIndex()


class Authorizer(Protocol):
    """Decides whether the caller may perform an interaction (SMART scopes arrive later)."""

    def __call__(self, context: RequestContext, interaction: str, resource_type: str) -> None: ...


def allow_all(context: RequestContext, interaction: str, resource_type: str) -> None:
    """The only policy while the server runs with ``--auth off`` on loopback."""


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """One resource write. ``body`` None means delete; ``current`` is the version it replaces.
    ``unless_exists``: store only if no current resource matches these criteria at commit
    (conditional create, race-free: the store checks inside its write transaction)."""

    interaction: str
    method: str
    resource_type: str
    id: str
    body: dict[str, Any] | None
    current: ResourceVersion | None
    unless_exists: Criteria | None = None


@dataclass(frozen=True, slots=True)
class StagedWrite:
    """A write ready for a unit of work; ``references``: the local references of the stored
    form (none for a deletion), which the store keeps and, under the integrity policy, checks."""

    version: ResourceVersion
    expected_version: int
    pending: PendingWrite
    index: ResourceIndex | None = None
    unless_exists: Criteria | None = None
    references: tuple[LocalReference, ...] = ()


class WritePipeline:
    """``referential_integrity`` (on by default): local references must point to existing,
    non-deleted resources of an allowed type, and a referenced resource cannot be deleted.
    Types and conditional references are checked in :meth:`stage` (422), existence and
    deletions by the store inside its write transaction (storage/port.py). Off, references
    are still recorded, so the policy can be switched on later."""

    def __init__(
        self,
        store: ResourceStore,
        hooks: Hooks,
        validator: Validator,
        clock: Clock,
        authorize: Authorizer = allow_all,
        indexer: IndexExtractor = no_index,
        *,
        referential_integrity: bool = True,
        registry: SearchRegistry | None = None,
    ) -> None:
        """``registry``: the search parameters granular scope queries are read with (the
        shipped R4 registry when not given)."""
        self._store = store
        self._hooks = hooks
        self._validate = validator
        self._clock = clock
        self._authorize = authorize
        self._index = indexer
        self._integrity = referential_integrity
        self._registry = registry
        self._policy: ScopePolicy | None = None

    @property
    def policy(self) -> ScopePolicy:
        """The SMART scope rules writes are checked against (built on first restricted write)."""
        if self._policy is None:
            registry = self._registry or SearchRegistry.load()
            self._policy = ScopePolicy(registry, self._index)
        return self._policy

    @policy.setter
    def policy(self, policy: ScopePolicy) -> None:
        self._policy = policy

    def check_existing(
        self, context: RequestContext, letter: str, version: ResourceVersion
    ) -> None:
        """For a write that answers with a stored resource instead of writing (a conditional
        create that matched): the caller's scopes must allow ``letter`` on it."""
        if context.access is not None and version.body is not None:
            self.policy.check_version(context.access, letter, version)

    async def write(self, context: RequestContext, request: WriteRequest) -> ResourceVersion:
        """Run one write through every step and commit it alone."""
        staged = await self.stage(context, request)
        async with self._store.unit_of_work(check_references=self._integrity) as uow:
            await self.commit(uow, [staged])
        return staged.version

    async def write_all(
        self, context: RequestContext, requests: Sequence[WriteRequest]
    ) -> list[ResourceVersion]:
        """Several writes through every step, committed together in one unit of work (all or
        none): what a transaction does, without a Bundle to plan, resolve and answer."""
        staged = [await self.stage(context, request) for request in requests]
        async with self._store.unit_of_work(check_references=self._integrity) as uow:
            await self.commit(uow, staged)
        return [s.version for s in staged]

    async def stage(self, context: RequestContext, request: WriteRequest) -> StagedWrite:
        """Steps 1-4: authorize, stored form, validation, PRE_STORE, then the search index and
        the local references of what PRE_STORE left (with integrity on, a reference to a type
        the element does not allow, or a conditional one, is refused here: 422). Nothing is
        stored yet.

        With SMART scopes (``context.access``), the write needs its letter on the type, the
        version it replaces must be within the scopes, and so must the content stored (after
        PRE_STORE): every door that writes through here is held to the same rules."""
        self._authorize(context, request.interaction, request.resource_type)
        current = request.current
        letter = ""
        if context.access is not None:
            letter = write_letter(request.interaction, request.body, current)
            self.policy.require(context.access, letter, request.resource_type)
            if current is not None and current.body is not None:
                self.policy.check_version(context.access, letter, current)
        number = 1 if current is None else current.version + 1
        moment = self._clock()
        if current is not None and moment < current.last_updated:
            moment = current.last_updated  # never let lastUpdated go backwards
        stored: dict[str, Any] | None = None
        body: bytes | None = None
        if request.body is not None:
            stored = build_stored_form(
                request.body, request.resource_type, request.id, number, moment
            )
            body = fhirjson.dumps(stored)
            await self._validate_off_loop_if_large(stored, len(body))
        version = ResourceVersion(
            request.resource_type, request.id, number, moment, request.method, body
        )
        previous = None
        if current is not None and current.body is not None and self._hooks_need_previous():
            previous = fhirjson.loads(current.body)
        pending = PendingWrite(
            context,
            request.interaction,
            request.resource_type,
            request.id,
            number,
            stored,
            previous,
        )
        await self._hooks.pre_store(pending)
        index = None if stored is None else self._index(stored)
        if context.access is not None and index is not None:
            self.policy.check_content(
                context.access, letter, request.resource_type, request.id, index
            )
        references: tuple[LocalReference, ...] = ()
        if stored is not None:
            found = local_references(stored, context.base_url, strict=self._integrity, body=body)
            references = tuple(found)
        expected = ABSENT if current is None else current.version
        return StagedWrite(version, expected, pending, index, request.unless_exists, references)

    async def commit(self, uow: UnitOfWork, staged: Sequence[StagedWrite]) -> None:
        """Step 5: PRE_COMMIT sees the whole unit, then every version goes into it. With
        integrity on, the unit enforces it (whoever opened it), as one whole: its writes may
        refer to one another."""
        await self._hooks.pre_commit([s.pending for s in staged])
        if self._integrity:
            uow.check_references = True
        for write in staged:
            uow.put(
                write.version,
                expected_version=write.expected_version,
                interaction=write.pending.interaction,
                index=write.index,
                unless_exists=write.unless_exists,
                references=write.references,
            )

    async def _validate_off_loop_if_large(self, stored: dict[str, Any], size: int) -> None:
        """The bridge for validation: a large resource (a Bundle of hundreds of entries takes
        tens of milliseconds) is validated in a worker thread so the event loop keeps serving;
        a small one inline, where a thread hop would cost more than the check."""
        if size > INLINE_VALIDATION_BYTES:
            await asyncio.to_thread(self._validate, stored)
        else:
            self._validate(stored)

    def _hooks_need_previous(self) -> bool:
        return self._hooks.has_write_hooks
