"""The writes of a transaction, before anything is staged: each entry's identity (the resource
it creates, updates, patches or deletes), found with the same rules as the REST interactions
(conditional create/update/delete: 0, 1 or many matches), and the version it replaces.

Nothing is stored here; a store read or search is all that happens. The processor then
rewrites references with the identities found, stages every write and commits them together.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import FhirError, InvalidRequest, PreconditionFailed, ResourceConflict
from fhir_server.core.ids import IdFactory, is_valid_id
from fhir_server.interactions import conditional
from fhir_server.interactions.reading import check_id, check_type
from fhir_server.interactions.transaction.dispatch import Target
from fhir_server.interactions.transaction.entries import Entry
from fhir_server.interactions.writing import check_body_type, check_if_match
from fhir_server.search.model import Criteria
from fhir_server.search.registry import SearchRegistry
from fhir_server.storage.port import ResourceStore, ResourceVersion

Key = tuple[str, str]


@dataclass(slots=True)
class PlannedWrite:
    """One write entry of a transaction once its identity is known.

    ``action`` is what will be stored: ``create``, ``update``, ``patch``, ``delete``, or
    ``none`` (a conditional create that matched, a delete of nothing): then ``current`` is
    what the entry's response shows. ``current`` is the version the write replaces, ``stored``
    the one it stored; ``body`` is the entry's resource, a copy the processor may rewrite.
    """

    entry: Entry
    target: Target
    action: str
    key: Key | None
    current: ResourceVersion | None
    body: dict[str, Any] | None
    if_match: int | None = None
    unless_exists: Criteria | None = None
    stored: ResourceVersion | None = None  # the version the commit stored

    @property
    def created(self) -> bool:
        return self.action in ("create", "update") and (
            self.current is None or self.current.deleted
        )


class Planner:
    """Resolves identities against the store; ``deleted`` holds what this transaction deletes,
    which a conditional create must not find."""

    def __init__(
        self,
        store: ResourceStore,
        registry: SearchRegistry,
        new_id: IdFactory,
        ctx: RequestContext,
    ) -> None:
        self._store = store
        self._registry = registry
        self._new_id = new_id
        self._ctx = ctx
        self.deleted: set[Key] = set()
        self._found: dict[tuple[str, str, str], tuple[Criteria, list[ResourceVersion]]] = {}

    async def prefetch(self, entries: Sequence[tuple[Entry, Target]]) -> None:
        """Run the conditional searches of these entries concurrently (the store answers
        several reads at once); :meth:`plan` then takes their answers instead of searching one
        entry after the other. A search that fails here is left for :meth:`plan` to raise at
        its entry."""
        wanted: dict[tuple[str, str, str], None] = {}
        for entry, target in entries:
            if target.handler == "update-conditional":
                wanted[(target.type, target.query, "Conditional update")] = None
            elif target.handler == "delete-conditional":
                wanted[(target.type, target.query, "Conditional delete")] = None
            elif target.handler == "create" and entry.if_none_exist is not None:
                wanted[(target.type, entry.if_none_exist, "ifNoneExist")] = None

        async def search(question: tuple[str, str, str]) -> None:
            type_, query, where = question
            try:
                criteria = self._criteria(type_, query, where)
                self._found[question] = (criteria, await conditional.matches(self._store, criteria))
            except FhirError:
                pass

        await asyncio.gather(*(search(question) for question in wanted))

    async def plan(self, entry: Entry, target: Target, if_match: int | None) -> PlannedWrite:
        body = _copy(entry.resource) if entry.resource is not None else None
        match target.handler:
            case "delete" | "delete-conditional":
                return await self._delete(entry, target, if_match)
            case "create":
                return await self._create(entry, target, _checked(body, target.type))
            case "update":
                return await self._update(entry, target, _checked(body, target.type), if_match)
            case "update-conditional":
                checked = _checked(body, target.type)
                return await self._update_conditional(entry, target, checked, if_match)
            case "patch":
                check_type(target.type)
                check_id(target.type, target.id)
                current = await self._current(target.type, target.id, if_match)
                return PlannedWrite(
                    entry, target, "patch", (target.type, target.id), current, body, if_match
                )
        raise InvalidRequest(
            f"{entry.method} {target.handler} is not a write a transaction can hold",
            expression=["request.url"],
        )

    async def _current(self, type: str, id: str, if_match: int | None) -> ResourceVersion | None:
        return _checked_current(type, id, await self._store.read(type, id), if_match)

    async def _matches(self, type: str, query: str, where: str) -> tuple[Criteria, list[Key]]:
        criteria, found = await self._found_versions(type, query, where)
        return criteria, [(v.resource_type, v.id) for v in found]

    def _criteria(self, type: str, query: str, where: str) -> Criteria:
        """The parsed criteria; an error in them points at the entry's ``request.ifNoneExist``
        or ``request.url``, whichever holds them (its text names the parameter)."""
        try:
            return conditional.criteria_of(self._registry, type, query, self._ctx.base_url, where)
        except FhirError as error:
            element = "request.ifNoneExist" if where == "ifNoneExist" else "request.url"
            error.issues = tuple(replace(i, expression=(element,)) for i in error.issues)
            raise

    async def _found_versions(
        self, type: str, query: str, where: str
    ) -> tuple[Criteria, list[ResourceVersion]]:
        """The current versions matching (at most two), those this transaction deletes left
        out; from :meth:`prefetch` when it asked the same question."""
        prefetched = self._found.pop((type, query, where), None)
        if prefetched is None:
            criteria = self._criteria(type, query, where)
            prefetched = criteria, await conditional.matches(self._store, criteria)
        criteria, found = prefetched
        return criteria, [v for v in found if (v.resource_type, v.id) not in self.deleted]

    async def _delete(self, entry: Entry, target: Target, if_match: int | None) -> PlannedWrite:
        check_type(target.type)
        if target.handler == "delete":
            check_id(target.type, target.id)
            key: Key = (target.type, target.id)
        else:
            _, keys = await self._matches(target.type, target.query, "Conditional delete")
            if len(keys) > 1:
                raise _too_many("Conditional delete", "request.url")
            if not keys:
                if if_match is not None:
                    raise PreconditionFailed(
                        "Conditional delete: nothing matches, so ifMatch cannot hold",
                        expression=["request.ifMatch"],
                    )
                return PlannedWrite(entry, target, "none", None, None, None)
            key = keys[0]
        current = await self._current(*key, if_match)
        self.deleted.add(key)
        if current is None or current.deleted:
            return PlannedWrite(entry, target, "none", key, current, None)
        return PlannedWrite(entry, target, "delete", key, current, None, if_match)

    async def _create(self, entry: Entry, target: Target, body: dict[str, Any]) -> PlannedWrite:
        criteria = None
        if entry.if_none_exist is not None:
            criteria, keys = await self._matches(target.type, entry.if_none_exist, "ifNoneExist")
            if len(keys) > 1:
                raise _too_many("ifNoneExist", "request.ifNoneExist")
            if keys:
                current = await self._store.read(*keys[0])
                return PlannedWrite(entry, target, "none", keys[0], current, None)
        key = (target.type, self._new_id())
        return PlannedWrite(entry, target, "create", key, None, body, None, criteria)

    async def _update(
        self, entry: Entry, target: Target, body: dict[str, Any], if_match: int | None
    ) -> PlannedWrite:
        check_id(target.type, target.id)
        given = body.get("id")
        if given is None:
            raise InvalidRequest(
                f"The resource has no id; an update must carry the id of request.url "
                f"({target.type}.id)",
                expression=[f"{target.type}.id"],
            )
        if given != target.id:
            raise InvalidRequest(
                "The resource's id does not match the id in request.url",
                expression=[f"{target.type}.id"],
            )
        current = await self._current(target.type, target.id, if_match)
        key = (target.type, target.id)
        return PlannedWrite(entry, target, "update", key, current, body, if_match)

    async def _update_conditional(
        self, entry: Entry, target: Target, body: dict[str, Any], if_match: int | None
    ) -> PlannedWrite:
        type_ = target.type
        criteria, found = await self._found_versions(type_, target.query, "Conditional update")
        keys = [(v.resource_type, v.id) for v in found]
        given = body.get("id")
        if given is not None and (not isinstance(given, str) or not is_valid_id(given)):
            raise InvalidRequest(
                "The resource's id is not a valid FHIR id", expression=[f"{type_}.id"]
            )
        if len(keys) > 1:
            raise _too_many("Conditional update", "request.url")
        if keys:
            id_ = keys[0][1]
            if given is not None and given != id_:
                raise InvalidRequest(
                    f"The resource's id is not the id of the resource matching the criteria "
                    f"({id_})",
                    expression=[f"{type_}.id"],
                )
            current = _checked_current(type_, id_, found[0], if_match)  # the match is current
            body["id"] = id_
            return PlannedWrite(entry, target, "update", keys[0], current, body, if_match)
        if if_match is not None:
            raise PreconditionFailed(
                "Conditional update: nothing matches, so ifMatch cannot hold",
                expression=["request.ifMatch"],
            )
        if given is None:
            return PlannedWrite(
                entry, target, "create", (type_, self._new_id()), None, body, None, criteria
            )
        current = await self._store.read(type_, given)
        if current is not None and not current.deleted:
            raise ResourceConflict(
                f"{type_}/{given} exists but does not match the criteria; update it by its id "
                "or change the criteria",
                expression=["request.url"],
            )
        return PlannedWrite(entry, target, "update", (type_, given), current, body, None, criteria)


def _copy(resource: dict[str, Any]) -> dict[str, Any]:
    """A copy the processor may rewrite (a retry plans again from the entry): through orjson,
    several times faster than deepcopy for JSON; deepcopy for anything JSON cannot hold."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(resource))
    except TypeError:
        return copy.deepcopy(resource)
    return copied


def _checked_current(
    type: str, id: str, current: ResourceVersion | None, if_match: int | None
) -> ResourceVersion | None:
    try:
        check_if_match(type, id, current, if_match)
    except PreconditionFailed as failed:
        raise PreconditionFailed(failed.diagnostics, expression=["request.ifMatch"]) from None
    return current


def _checked(body: dict[str, Any] | None, type: str) -> dict[str, Any]:
    check_type(type)
    if body is None:
        raise InvalidRequest("The entry has no resource", expression=["resource"])
    check_body_type(body, type)
    return body


def _too_many(where: str, element: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"{where}: several resources match the criteria; make them more selective",
        expression=[element],
    )
