"""The hook points of the pipeline (ARCHITECTURE.md, "How a request flows").

Intervention hooks (PRE_STORE, PRE_COMMIT, PRE_SHOW) run in registration order inside the
request, may veto by raising a :class:`~fhir_server.core.errors.FhirError` and must be cheap and
deterministic. Notification hooks (POST_COMMIT, INTERACTION_DONE, INTERACTION_FAILED) may be
many; their failures are logged and never reach the caller. POST_COMMIT hooks run from the
outbox, after commit, and are retried until they succeed, so they must be idempotent.
INTERACTION_DONE and INTERACTION_FAILED are told by the doors after each request, on the
response path: their hooks must only enqueue. Hooks are registered in bootstrap.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError
from fhir_server.storage.port import OutboxEvent

log = logging.getLogger(__name__)


class Pointcut(enum.Enum):
    PRE_STORE = "pre-store"
    PRE_COMMIT = "pre-commit"
    POST_COMMIT = "post-commit"
    PRE_SHOW = "pre-show"
    INTERACTION_DONE = "interaction-done"
    INTERACTION_FAILED = "interaction-failed"


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A validated write about to be stored. ``resource`` is None for a deletion; ``previous`` is
    the current stored form (None if the resource does not exist or is deleted)."""

    context: RequestContext
    interaction: str
    resource_type: str
    id: str
    version: int
    resource: dict[str, Any] | None
    previous: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class InteractionDone:
    """A request a door answered successfully, told to INTERACTION_DONE hooks (the audit trail).

    ``interaction``: the FHIR restful-interaction code (read, vread, search-type, search-system,
    history-instance, create, update, patch, delete, transaction, batch, capabilities...) or an
    authorization-server event (login, authorize, token, introspect, revoke). ``status``: the
    HTTP status answered. ``query``: the query string of a search. ``patients``: ids of the
    patients concerned, when the door knows them (never values of the resources).

    The DICOM door tells DIMSE operations (``interaction`` C-STORE, C-FIND, C-MOVE, C-GET) with
    the ``studies`` (Study Instance UIDs) concerned, the ``patient_identifiers`` (PatientID as
    sent, when the door has no Patient id) and ``details`` (name, value) such as the number of
    instances (PS3.15 A.5.3 DICOM Instances Transferred, Query)."""

    interaction: str
    status: int
    resource_type: str | None = None
    id: str | None = None
    version: str | None = None
    query: str | None = None
    patients: tuple[str, ...] = ()
    studies: tuple[str, ...] = ()
    patient_identifiers: tuple[str, ...] = ()
    details: tuple[tuple[str, str], ...] = ()


PreStoreHook = Callable[[PendingWrite], Awaitable[None]]
PreCommitHook = Callable[[Sequence[PendingWrite]], Awaitable[None]]
PostCommitHook = Callable[[OutboxEvent], Awaitable[None]]
PreShowHook = Callable[[RequestContext, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]
FailedHook = Callable[[RequestContext, str, FhirError], Awaitable[None]]
DoneHook = Callable[[RequestContext, InteractionDone], Awaitable[None]]


class Hooks:
    """Registry of hooks per pointcut; built in bootstrap, never filled by import side effects."""

    def __init__(self) -> None:
        self._pre_store: list[PreStoreHook] = []
        self._pre_commit: list[PreCommitHook] = []
        self._post_commit: dict[str, PostCommitHook] = {}
        self._pre_show: list[PreShowHook] = []
        self._failed: list[FailedHook] = []
        self._done: list[DoneHook] = []

    def on_pre_store(self, hook: PreStoreHook) -> None:
        self._pre_store.append(hook)

    def on_pre_commit(self, hook: PreCommitHook) -> None:
        self._pre_commit.append(hook)

    def on_post_commit(self, name: str, hook: PostCommitHook) -> None:
        """``name`` identifies the hook durably: the outbox remembers what each name handled."""
        if name in self._post_commit:
            raise ValueError(f"a POST_COMMIT hook named {name!r} is already registered")
        self._post_commit[name] = hook

    def on_pre_show(self, hook: PreShowHook) -> None:
        self._pre_show.append(hook)

    def on_interaction_failed(self, hook: FailedHook) -> None:
        self._failed.append(hook)

    def on_interaction_done(self, hook: DoneHook) -> None:
        self._done.append(hook)

    @property
    def post_commit(self) -> dict[str, PostCommitHook]:
        return dict(self._post_commit)

    @property
    def has_write_hooks(self) -> bool:
        """Whether any PRE_STORE or PRE_COMMIT hook would look at a write."""
        return bool(self._pre_store or self._pre_commit)

    @property
    def has_pre_show(self) -> bool:
        return bool(self._pre_show)

    async def pre_store(self, write: PendingWrite) -> None:
        for hook in self._pre_store:
            await hook(write)

    async def pre_commit(self, writes: Sequence[PendingWrite]) -> None:
        for hook in self._pre_commit:
            await hook(writes)

    async def pre_show(
        self, context: RequestContext, resources: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        for hook in self._pre_show:
            resources = await hook(context, resources)
        return resources

    async def interaction_failed(
        self, context: RequestContext, interaction: str, error: FhirError
    ) -> None:
        for hook in self._failed:
            try:
                await hook(context, interaction, error)
            except Exception:
                log.exception("INTERACTION_FAILED hook %r failed", hook)

    async def interaction_done(self, context: RequestContext, done: InteractionDone) -> None:
        """Called by a door after each successful request; hooks must only enqueue (the
        response is waiting), and their failures are logged, never raised."""
        for hook in self._done:
            try:
                await hook(context, done)
            except Exception:
                log.exception("INTERACTION_DONE hook %r failed", hook)
