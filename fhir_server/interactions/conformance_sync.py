"""Keep the conformance registry in step with the store.

The registry (fhir_server.conformance) is what the validator and the terminology service read:
the R4 core, then this server's own profiles and terminology (``profiles/`` and
``terminology/``, read by :func:`local_content` when the registry is built), then every
StructureDefinition, ValueSet, CodeSystem and ConceptMap stored on the server. At start-up
:meth:`ConformanceSync.start` loads every stored canonical resource into the registry. Afterwards a
POST_COMMIT hook adds, replaces or removes what is written or deleted — on every replica, since
each relay reads the shared outbox; a write is visible to the validator once its event has run,
milliseconds after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import orjson

from fhir_server.conformance import CANONICAL_TYPES, Conformance
from fhir_server.core import fhirjson
from fhir_server.events.hooks import Hooks
from fhir_server.search.model import Criteria
from fhir_server.storage.port import OutboxEvent, ResourceStore, SearchQuery

log = logging.getLogger(__name__)
HOOK_NAME = "conformance-registry"
_PAGE = 200


def local_content(directories: Iterable[Path]) -> list[dict[str, Any]]:
    """The canonical resources in these folders (``*.json``, one resource per file; other
    resource types and unreadable files are skipped with a warning)."""
    found: list[dict[str, Any]] = []
    for directory in directories:
        for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
            try:
                resource = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as exc:
                log.warning("%s is not JSON, skipped: %s", path, exc)
                continue
            if isinstance(resource, dict) and resource.get("resourceType") in CANONICAL_TYPES:
                found.append(resource)
    return found


class ConformanceSync:
    """Fills ``registry`` from the store and keeps it current (see the module docstring)."""

    def __init__(
        self,
        registry: Conformance,
        store: ResourceStore,
    ) -> None:
        self._registry = registry
        self._store = store
        self._urls: dict[tuple[str, str], tuple[str, str | None]] = {}

    def register(self, hooks: Hooks) -> None:
        hooks.on_post_commit(HOOK_NAME, self._on_commit)

    async def start(self) -> None:
        loaded = 0
        for resource_type in sorted(CANONICAL_TYPES):
            async for resource in self._stored(resource_type):
                self._remember(resource)
                loaded += 1
        log.info("conformance registry: %d stored canonical resources loaded", loaded)

    async def _stored(self, resource_type: str) -> AsyncIterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = await self._store.search(
                SearchQuery(Criteria((resource_type,)), count=_PAGE, cursor=cursor)
            )
            for version in page.entries:
                if version.body is not None:
                    yield fhirjson.loads(version.body)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def _remember(self, resource: dict[str, Any]) -> None:
        kind, id_, url = resource.get("resourceType"), resource.get("id"), resource.get("url")
        if not isinstance(kind, str) or not isinstance(id_, str):
            return
        self._forget(kind, id_)
        if isinstance(url, str) and url:
            version = resource.get("version")
            self._urls[(kind, id_)] = (url, version if isinstance(version, str) else None)
            self._registry.add(resource)

    def _forget(self, kind: str, id_: str) -> None:
        known = self._urls.pop((kind, id_), None)
        if known is not None:
            self._registry.remove(kind, known[0], known[1] or "")

    async def _on_commit(self, event: OutboxEvent) -> None:
        if event.resource_type not in CANONICAL_TYPES:
            return
        current = await self._store.read(event.resource_type, event.id)
        if current is None or current.body is None:
            self._forget(event.resource_type, event.id)
            return
        if current.version != event.version:
            return  # a later event brings the newer version
        self._remember(fhirjson.loads(current.body))
