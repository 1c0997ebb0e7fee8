"""Shared fixtures for tests/unit/search: the real R4 search registry."""

from __future__ import annotations

import pytest

from fhir_server.search.registry import SearchRegistry


@pytest.fixture(scope="module")
def registry() -> SearchRegistry:
    return SearchRegistry.load()
