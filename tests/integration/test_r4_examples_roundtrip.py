"""Every example of the official R4 package (npm hl7.fhir.r4.examples@4.0.1, CC0) goes through
create then read over HTTP (in-process) and comes back JSON-equal apart from ``id`` and the
server-owned ``meta.versionId``/``meta.lastUpdated`` — decimals compared by their exact text.
The examples that are invalid by R4's own StructureDefinitions are rejected with 422 naming the
element instead (their list is in tests/r4_examples.py, with the reason for each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_server.bootstrap import Application
from fhir_server.core import fhirjson
from fhir_server.core.fhirjson import FhirDecimal
from tests.conftest import running_application
from tests.r4_examples import INVALID_R4_EXAMPLES, iter_examples

pytestmark = pytest.mark.examples


@pytest.fixture
async def application(tmp_path: Path) -> AsyncIterator[Application]:
    """Referential integrity off: the examples refer to resources the package does not contain
    (``Patient/example`` is one of many, others are on no server at all), and this test is
    about the JSON round trip. Integrity has its own tests (test_http_referential_integrity)."""
    async with running_application(tmp_path / "data", referential_integrity=False) as app:
        yield app


def comparable(value: Any) -> Any:
    """JSON value with decimals as their exact text, so 1.50 != 1.5."""
    if isinstance(value, FhirDecimal):
        return ("decimal", value.text)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, dict):
        return {key: comparable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def without_server_fields(resource: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in resource.items() if key != "id"}
    meta = {
        k: v for k, v in (out.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
    }
    out.pop("meta", None)
    if meta:
        out["meta"] = meta
    return out


async def test_every_r4_example_round_trips(inproc: httpx.AsyncClient) -> None:
    checked = rejected = 0
    mismatches: list[str] = []
    for name, raw in iter_examples():
        example = fhirjson.loads(raw)
        rtype = example["resourceType"]
        created = await inproc.post(
            f"/fhir/{rtype}", content=raw, headers={"Content-Type": "application/fhir+json"}
        )
        if name in INVALID_R4_EXAMPLES:
            assert created.status_code == 422, f"{name}: expected 422, got {created.status_code}"
            expressions = {e for i in created.json()["issue"] for e in i.get("expression", [])}
            assert set(INVALID_R4_EXAMPLES[name]) <= expressions, f"{name}: {expressions}"
            rejected += 1
            continue
        assert created.status_code == 201, f"{name}: {created.text[:500]}"
        id = created.json()["id"]
        read = await inproc.get(f"/fhir/{rtype}/{id}")
        assert read.status_code == 200, name
        stored = fhirjson.loads(read.content)
        assert stored["id"] == id and stored["meta"]["versionId"] == "1"
        if comparable(without_server_fields(stored)) != comparable(without_server_fields(example)):
            mismatches.append(name)
        checked += 1
    assert mismatches == []
    assert rejected == len(INVALID_R4_EXAMPLES)
    assert checked + rejected > 5000  # the whole package, not a sample
