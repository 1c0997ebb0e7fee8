"""FhirService.create_all: several creates of one type through the write pipeline in one unit
of work, all or none (the audit trail stores its batches with it; CN-4.1.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_server.core.access import Access
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, UnprocessableResource
from fhir_server.interactions.search import type_scope
from tests.conftest import running_application

BASIC = {"resourceType": "Basic", "code": {"text": "note"}}


async def test_cn4_1_4_create_all_is_all_or_none(tmp_path: Path) -> None:
    async with running_application(tmp_path / "d") as app:
        service = app.service
        written = await service.create_all(RequestContext(), "Basic", [BASIC, BASIC, BASIC])
        assert len({w.version.id for w in written}) == 3
        assert all(w.created and w.version.version == 1 for w in written)
        bad = {"resourceType": "Basic", "code": {"text": 5}}
        with pytest.raises(UnprocessableResource):
            await service.create_all(RequestContext(), "Basic", [BASIC, bad])
        found = await service.search(
            RequestContext(), type_scope("Basic"), [("_total", "accurate")]
        )
        assert found["total"] == 3  # the refused unit stored nothing


async def test_create_all_needs_the_create_scope(tmp_path: Path) -> None:
    async with running_application(tmp_path / "d") as app:
        reader = Access(scopes=(), client_id="c", subject="c")
        with pytest.raises(Forbidden):
            await app.service.create_all(RequestContext(access=reader), "Basic", [BASIC])
