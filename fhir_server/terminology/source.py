"""Where the terminology service finds its canonical resources.

The server's registry (:class:`fhir_server.conformance.Conformance`: R4 core, the project's
``terminology/`` files and the CodeSystems/ValueSets/ConceptMaps stored on the server) has this
shape; the protocol keeps the service independent of how the registry is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class CanonicalSource(Protocol):
    """Canonical resources by type and ``url`` (or ``url|version``)."""

    def resolve(self, resource_type: str, url: str) -> dict[str, Any] | None: ...

    def all(self, resource_type: str) -> Iterator[dict[str, Any]]: ...

    def current_generation(self) -> int:
        """Grows on every change (of this registry or one it overlays): caches compare it."""
        ...
