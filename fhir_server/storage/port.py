"""The storage port: one interface every backend implements and the contract suite checks.

A resource's history is append-only; the current version of each resource is a pointer into it.
Writes happen only through a :class:`UnitOfWork`: every put carries the version the writer expects
to replace (optimistic locking) and the whole unit commits atomically together with its outbox
rows, which the relay later hands to POST_COMMIT hooks. No backend-only parameter enters here.

Referential integrity: each put carries the local references of the version it stores
(:class:`~fhir_server.validation.references.LocalReference`: element path, target type, id and
optional version). A backend always keeps them for the current version of each resource (so
integrity can be switched on later over existing data), and enforces them only in a unit of work
asked to (``unit_of_work(check_references=True)``, or :attr:`UnitOfWork.check_references` set
before commit), inside its serialised write transaction so that a delete and a concurrent write
referring to the deleted resource can never both succeed:

- every reference of every live put names a current, non-deleted resource (a resource put in the
  same unit counts: a unit is checked as a whole, after all its puts; a reference to the
  resource itself is fine), and a versioned reference a stored version that is not a deletion,
  else :class:`~fhir_server.core.errors.DanglingReference`;
- a deletion (tombstone put) is refused with :class:`~fhir_server.core.errors.DeleteConflict`
  while another current resource refers to the deleted one by an unversioned reference. A
  versioned reference pins a version, which a deletion keeps readable (vread), so it does not
  block the deletion (as HAPI FHIR).

Either refusal stores nothing of the unit.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self

from fhir_server.core.errors import VersionConflict
from fhir_server.search.model import Criteria, ResourceIndex, SortKey
from fhir_server.storage.records import RecordStore
from fhir_server.validation.references import LocalReference

#: ``expected_version`` value meaning "the resource must not exist yet (no version at all)".
ABSENT = 0


@dataclass(frozen=True, slots=True)
class ResourceVersion:
    """One stored version of a resource. ``body`` is the serialised JSON; None for a deletion."""

    resource_type: str
    id: str
    version: int
    last_updated: datetime
    method: str
    body: bytes | None

    @property
    def deleted(self) -> bool:
        return self.body is None

    @property
    def etag(self) -> str:
        """The weak ETag of this version, ``W/"<versionId>"`` (R4 http.html#versioning)."""
        return f'W/"{self.version}"'


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A committed change waiting for (or given to) the POST_COMMIT hooks."""

    seq: int
    resource_type: str
    id: str
    version: int
    interaction: str
    occurred: datetime
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    """History at system (no type), type (no id) or instance level, newest first."""

    resource_type: str | None = None
    id: str | None = None
    since: datetime | None = None
    count: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search over current, non-deleted resources (the AST is :mod:`fhir_server.search.model`).

    Results come in ``sort`` order, ties (and no sort) broken by a backend key that never changes
    for a resource (creation order in SQLite), keyset-paged: ``cursor`` is an opaque token taken
    from a previous :class:`Page` (``next_cursor`` or ``previous_cursor``) of the same query.
    """

    criteria: Criteria
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    cursor: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of versions and the opaque cursors of the next and previous pages, if any."""

    entries: Sequence[ResourceVersion]
    next_cursor: str | None = None
    total: int | None = None
    previous_cursor: str | None = None


class StoreConfigurationError(Exception):
    """The store cannot run as configured (raised by ``open``): e.g. a standalone MongoDB, which
    cannot make a unit of work atomic, or an unreachable one. The message says what to change."""


class ConditionalMatch(Exception):
    """A put with ``unless_exists`` found resources matching its criteria at commit time; nothing
    of the unit of work was stored. ``matches`` holds (up to two of) those resources."""

    def __init__(self, matches: Sequence[ResourceVersion]) -> None:
        super().__init__(f"{len(matches)} resource(s) already match the condition")
        self.matches = list(matches)


@dataclass(slots=True)
class PendingPut:
    """A version to store, with the version it must replace (``ABSENT``: none; None: any), its
    search index and its local references (none for a tombstone)."""

    version: ResourceVersion
    expected_version: int | None
    interaction: str
    index: ResourceIndex | None = None
    unless_exists: Criteria | None = None
    references: Sequence[LocalReference] = ()


def check_version(put: PendingPut, current: int) -> None:
    """Optimistic locking, the same on every backend: ``current`` (the stored version, ABSENT if
    none) must be the one the put expects, and the put's version must follow it; else
    VersionConflict, before anything of the put is written."""
    v = put.version
    if put.expected_version is not None and put.expected_version != current:
        raise VersionConflict(
            f"{v.resource_type}/{v.id} was changed by another request "
            f"(expected version {put.expected_version}, found {current}); "
            "retry with the current version",
            expression=[v.resource_type],
        )
    if v.version != current + 1:
        raise VersionConflict(
            f"{v.resource_type}/{v.id}: version {v.version} does not follow version {current}"
        )


@dataclass(slots=True)
class PendingWrites:
    """The puts of one unit of work; ``check_references``: enforce referential integrity."""

    puts: list[PendingPut] = field(default_factory=list)
    check_references: bool = False


class UnitOfWork(ABC):
    """Collects writes and commits them atomically, outbox rows included.

    Used as ``async with store.unit_of_work() as uow: uow.put(...)``: leaving the block without an
    exception commits, an exception discards everything. ``commit`` raises
    :class:`~fhir_server.core.errors.VersionConflict` when an expected version no longer holds,
    and then nothing is stored. With :attr:`check_references`, it also enforces referential
    integrity (see the module docstring) and raises
    :class:`~fhir_server.core.errors.DanglingReference` or
    :class:`~fhir_server.core.errors.DeleteConflict`, storing nothing.
    """

    def __init__(self, *, check_references: bool = False) -> None:
        self.pending = PendingWrites(check_references=check_references)
        self.committed = False

    @property
    def check_references(self) -> bool:
        """Enforce referential integrity at commit (may be switched on until then)."""
        return self.pending.check_references

    @check_references.setter
    def check_references(self, value: bool) -> None:
        self.pending.check_references = value

    def put(
        self,
        version: ResourceVersion,
        *,
        expected_version: int | None,
        interaction: str,
        index: ResourceIndex | None = None,
        unless_exists: Criteria | None = None,
        references: Sequence[LocalReference] = (),
    ) -> None:
        """Add a version (a tombstone when ``version.body`` is None) and its outbox row.

        ``index`` is the version's search index, stored with it (a tombstone has none; None on
        a live version stores an empty index). ``unless_exists`` makes the put conditional, and
        race-free: at commit, inside the same serialised transaction, the backend looks for
        current resources matching these criteria (puts earlier in this unit included) and, if
        any, raises :class:`ConditionalMatch` and stores nothing. ``references``: the local
        references of the version (ignored for a tombstone), kept as the resource's current
        outgoing references and checked when :attr:`check_references` is on.
        """
        if self.committed:
            raise RuntimeError("unit of work already committed")
        refs = () if version.body is None else tuple(references)
        self.pending.puts.append(
            PendingPut(version, expected_version, interaction, index, unless_exists, refs)
        )

    async def commit(self) -> None:
        if self.committed:
            return
        if self.pending.puts:
            await self._commit(self.pending)
        self.committed = True

    @abstractmethod
    async def _commit(self, pending: PendingWrites) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()


class ResourceStore(ABC):
    """Read side of the port plus the factory of units of work and the outbox queue."""

    def __init__(self) -> None:
        self._commit_listeners: list[Callable[[], None]] = []

    def add_commit_listener(self, listener: Callable[[], None]) -> None:
        """Called (on the event loop) after each commit, e.g. to wake the outbox relay."""
        self._commit_listeners.append(listener)

    def notify_committed(self) -> None:
        for listener in self._commit_listeners:
            listener()

    @abstractmethod
    async def open(self) -> None:
        """Create or migrate the schema; called once at start-up."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def records(self) -> RecordStore:
        """The record port (storage/records.py) in the same database, sharing this store's
        connections: usable between ``open`` and ``close``."""

    @abstractmethod
    async def read(self, resource_type: str, id: str) -> ResourceVersion | None:
        """The current version (a tombstone if deleted), or None if it never existed."""

    @abstractmethod
    async def vread(self, resource_type: str, id: str, version: int) -> ResourceVersion | None: ...

    @abstractmethod
    async def history(self, query: HistoryQuery) -> Page: ...

    @abstractmethod
    async def search(self, query: SearchQuery) -> Page:
        """Current, non-deleted resources matching the criteria, in order, keyset-paged.

        Raises :class:`~fhir_server.core.errors.InvalidRequest` for a cursor it did not issue.
        """

    @abstractmethod
    async def count(self, criteria: Criteria) -> int:
        """The exact number of current resources matching the criteria."""

    async def estimate(self, criteria: Criteria) -> int:
        """About how many current resources match (``_total=estimate``); a backend for which
        an exact count is cheap enough answers it (this default)."""
        return await self.count(criteria)

    @abstractmethod
    def unit_of_work(self, *, check_references: bool = False) -> UnitOfWork:
        """A new unit of work; ``check_references`` enforces referential integrity in it."""

    @abstractmethod
    async def pending_events(self, hook: str, limit: int, now: datetime) -> list[OutboxEvent]:
        """Outbox events the named POST_COMMIT hook has not yet handled and may try now."""

    @abstractmethod
    async def mark_handled(self, hook: str, *seqs: int) -> None:
        """The named hook has handled these events (one durable write for all of them)."""

    @abstractmethod
    async def mark_failed(self, hook: str, seq: int, retry_at: datetime, error: str) -> None:
        """Record a failed delivery; the event is offered again from ``retry_at``."""
