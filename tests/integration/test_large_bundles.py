"""Transaction Bundles of 1,000 entries from the benchmark's data generator (``bench/datagen.py``),
in-process (ASGI) and over a real socket to ``fhir-server serve``.

- The stream as Bundles of 1,000 PUT entries (references only to earlier resources, in the same
  Bundle or an earlier one): every entry answers ``201`` in order, every resource reads back as
  sent, search counts (by type, and by reference) match the stream; the same Bundles again
  answer ``200`` for every entry and store version 2 of each resource, nothing more.
- The same stream as Bundles of POST entries (no ids, references to ``urn:uuid:`` fullUrls in
  the same Bundle and to the ids the server gave in earlier answers): every link is resolved.
- Defects injected into a 1,000-entry Bundle sent after a first one was stored: an invalid
  element deep in entry 700, a required element missing, a reference to a resource that does not
  exist, one entry more than ``FHIR_SERVER_MAX_BUNDLE_ENTRIES``, a body one byte over
  ``FHIR_SERVER_MAX_BODY_BYTES``: each is a 4xx OperationOutcome naming the entry
  (``Bundle.entry[N]…``, or ``Bundle.entry`` for the count) and nothing of the Bundle is stored
  (the server's whole history is unchanged); then the clean Bundle goes through.

Two tests were written as strict xfails for server bugs found here, and pass since the fixes: a
dangling reference's OperationOutcome names its entry, and a reference to a ``urn:uuid:`` that
no entry has fails the transaction.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bench import datagen
from fhir_server.api.app import create_app
from fhir_server.bootstrap import build
from fhir_server.settings import Settings
from tests.conftest import ServerProcess

pytestmark = pytest.mark.socket

Resource = dict[str, Any]

SEED = 7
ENTRIES = 1_000  # per Bundle
SIZE = 2 * ENTRIES  # the stream: two full Bundles
FHIR_JSON = {"Content-Type": "application/fhir+json"}
TIMEOUT = 300.0

MODES = ["inproc", "socket"]


@asynccontextmanager
async def serving(
    mode: str, data_dir: Path, *, max_entries: int | None = None, max_body: int | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh server (in-process app or ``fhir-server serve``) with these limits, and a client."""
    limits: dict[str, Any] = {}
    if max_entries is not None:
        limits["max_bundle_entries"] = max_entries
    if max_body is not None:
        limits["max_body_bytes"] = max_body
    if mode == "inproc":
        settings = Settings(dicom_port=0, mllp_port=0, data_dir=data_dir, **limits)
        application = build(settings, relay_poll_interval=0.05)
        await application.start()
        try:
            app = create_app(
                application.service, application, max_body_bytes=settings.max_body_bytes
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", timeout=TIMEOUT
            ) as client:
                yield client
        finally:
            await application.stop()
        return
    env = {f"FHIR_SERVER_{name.upper()}": str(value) for name, value in limits.items()}
    process = ServerProcess(data_dir, "--log-level", "warning", env=env)
    try:
        await asyncio.to_thread(process.wait_ready)
        async with httpx.AsyncClient(base_url=process.base, timeout=TIMEOUT) as client:
            yield client
    finally:
        await asyncio.to_thread(process.stop)


def stream_bundles() -> list[Resource]:
    bundles = list(datagen.bundles(SIZE, SEED, ENTRIES))
    assert [len(b["entry"]) for b in bundles] == [ENTRIES, ENTRIES]
    return bundles


async def post(client: httpx.AsyncClient, bundle: Resource | bytes) -> httpx.Response:
    body = bundle if isinstance(bundle, bytes) else orjson.dumps(bundle)
    return await client.post("/fhir", content=body, headers=FHIR_JSON)


def answer_of(response: httpx.Response, request: Resource) -> list[Resource]:
    """The entries of a transaction-response, one per request entry."""
    assert response.status_code == 200, response.text[:2000]
    answer = response.json()
    assert answer["resourceType"] == "Bundle" and answer["type"] == "transaction-response"
    entries: list[Resource] = answer["entry"]
    assert len(entries) == len(request["entry"])
    return entries


async def total(client: httpx.AsyncClient, query: str) -> int:
    joiner = "&" if "?" in query else "?"
    response = await client.get(f"/fhir/{query}{joiner}_total=accurate&_count=0")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    return int(bundle["total"])


async def versions(client: httpx.AsyncClient, path: str = "/fhir/_history") -> int:
    """How many versions a history holds (every page followed)."""
    count, url = 0, f"{path}?_count=500"
    while url:
        response = await client.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        count += len(page.get("entry", []))
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), "")
    return count


def without_server_meta(resource: Resource) -> Resource:
    """The resource without the ``meta`` elements the server sets (versionId, lastUpdated)."""
    out = dict(resource)
    meta = {k: v for k, v in out.pop("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


def sample(entries: list[Resource], every: int = 37) -> Iterator[tuple[int, Resource]]:
    """Every ``every``-th entry, with the first and the last."""
    last = len(entries) - 1
    yield from ((i, e) for i, e in enumerate(entries) if i % every == 0 or i == last)


# -- the stream, 1,000 PUT entries per Bundle -------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_generated_put_transactions(mode: str, tmp_path: Path) -> None:
    bundles = stream_bundles()
    resources = [e["resource"] for b in bundles for e in b["entry"]]
    async with serving(mode, tmp_path / "data") as client:
        for bundle in bundles:
            answered = answer_of(await post(client, bundle), bundle)
            for index, (sent, got) in enumerate(zip(bundle["entry"], answered, strict=True)):
                url = sent["request"]["url"]  # Type/id
                response = got["response"]
                assert response["status"].startswith("201"), (index, response)
                assert response["location"] == f"{url}/_history/1", index
                assert response["etag"] == 'W/"1"'
                assert got["resource"]["id"] == sent["resource"]["id"]

        # Every resource reads back as sent (the server adds versionId and lastUpdated).
        for bundle in bundles:
            for index, entry in sample(bundle["entry"]):
                read = await client.get(f"/fhir/{entry['request']['url']}")
                assert read.status_code == 200, (index, read.text)
                assert read.headers["etag"] == 'W/"1"'
                assert without_server_meta(read.json()) == entry["resource"], index

        # Search counts match the stream: per type, and per reference to one patient.
        by_type = Counter(r["resourceType"] for r in resources)
        for kind, expected in sorted(by_type.items()):
            assert await total(client, kind) == expected, kind
        patient = next(r for r in resources[ENTRIES:] if r["resourceType"] == "Patient")
        ref = f"Patient/{patient['id']}"
        about = [
            r
            for r in resources
            if r["resourceType"] == "Observation" and r.get("subject", {}).get("reference") == ref
        ]
        assert about, "the generator gives each patient observations"
        assert await total(client, f"Observation?subject={ref}") == len(about)
        assert await versions(client) == SIZE

        # The same Bundles again: every entry updates (200, version 2), nothing is duplicated.
        for bundle in bundles:
            answered = answer_of(await post(client, bundle), bundle)
            for index, got in enumerate(answered):
                assert got["response"]["status"].startswith("200"), (index, got["response"])
                assert got["response"]["etag"] == 'W/"2"', index
                assert "location" not in got["response"]
        for kind, expected in sorted(by_type.items()):
            assert await total(client, kind) == expected, kind
        assert await versions(client) == 2 * SIZE
        assert await versions(client, f"/fhir/{ref}/_history") == 2
        read = await client.get(f"/fhir/{ref}")
        assert read.headers["etag"] == 'W/"2"'
        assert without_server_meta(read.json()) == patient


# -- the stream as POST entries linked by urn:uuid fullUrls -----------------------------------


def as_posts(bundle: Resource, assigned: dict[str, str]) -> Resource:
    """The Bundle with POST entries and no ids: references to a resource of this Bundle point
    to its ``urn:uuid:`` fullUrl, references to earlier ones to the id the server gave
    (``assigned``: generator ``Type/id`` → server ``Type/id``)."""
    in_bundle = {e["request"]["url"]: e["fullUrl"] for e in bundle["entry"]}
    entries = []
    for entry in bundle["entry"]:
        resource = datagen.rewrite_references(entry["resource"], {**assigned, **in_bundle})
        del resource["id"]
        kind = resource["resourceType"]
        entries.append(
            {
                "fullUrl": entry["fullUrl"],
                "resource": resource,
                "request": {"method": "POST", "url": kind},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.mark.parametrize("mode", MODES)
async def test_generated_post_transactions_resolve_urn_uuid_links(
    mode: str, tmp_path: Path
) -> None:
    generated = stream_bundles()
    assigned: dict[str, str] = {}  # generator Type/id -> server Type/id
    async with serving(mode, tmp_path / "data") as client:
        for bundle in generated:
            request = as_posts(bundle, assigned)
            answered = answer_of(await post(client, request), request)
            for index, (entry, got) in enumerate(zip(bundle["entry"], answered, strict=True)):
                assert got["response"]["status"].startswith("201"), (index, got["response"])
                kind, id, _, version = got["response"]["location"].split("/")
                assert kind == entry["resource"]["resourceType"] and version == "1"
                assigned[entry["request"]["url"]] = f"{kind}/{id}"
        assert len(set(assigned.values())) == SIZE

        # Each stored resource holds the server's ids where the generator's ids were: links to
        # the same Bundle (urn:uuid) and to the earlier one alike.
        for bundle in generated:
            for index, entry in sample(bundle["entry"], every=53):
                read = await client.get(f"/fhir/{assigned[entry['request']['url']]}")
                assert read.status_code == 200, (index, read.text)
                expected = datagen.rewrite_references(entry["resource"], assigned)
                stored = without_server_meta(read.json())
                assert stored == {**expected, "id": stored["id"]}, index
        assert await versions(client) == SIZE


# -- defects ----------------------------------------------------------------------------------


def _first(bundle: Resource, kind: str, start: int) -> int:
    return next(
        i
        for i, e in enumerate(bundle["entry"])
        if i >= start and e["resource"]["resourceType"] == kind
    )


def deep_invalid(bundle: Resource) -> tuple[int, str]:
    """An ImagingStudy near entry 700: one instance number is a string."""
    index = _first(bundle, "ImagingStudy", 700)
    bundle["entry"][index]["resource"]["series"][0]["instance"][2]["number"] = "three"
    return index, f"Bundle.entry[{index}].resource.series[0].instance[2].number"


def missing_required(bundle: Resource) -> tuple[int, str]:
    """An Observation near entry 850 without its status (1..1)."""
    index = _first(bundle, "Observation", 850)
    del bundle["entry"][index]["resource"]["status"]
    return index, f"Bundle.entry[{index}].resource.status"


def unknown_target(bundle: Resource) -> tuple[int, str]:
    """An Observation near entry 500 about a patient the server does not hold."""
    index = _first(bundle, "Observation", 500)
    bundle["entry"][index]["resource"]["subject"] = {"reference": "Patient/pat-9999999"}
    return index, f"Bundle.entry[{index}].resource.subject"


def unknown_full_url(bundle: Resource) -> tuple[int, str]:
    """An Observation near entry 900 about a urn:uuid no entry of the Bundle has."""
    index = _first(bundle, "Observation", 900)
    missing = "urn:uuid:00000000-0000-4000-8000-000000000000"
    bundle["entry"][index]["resource"]["subject"] = {"reference": missing}
    return index, f"Bundle.entry[{index}].resource.subject"


DEFECTS = [deep_invalid, missing_required, unknown_target, unknown_full_url]


async def assert_unchanged(
    client: httpx.AsyncClient, before: dict[str, int], stored: int, bundle: Resource
) -> None:
    """Nothing of ``bundle`` was stored: the counts and the whole history are as before, and
    none of its resources can be read."""
    assert await versions(client) == stored
    for kind, count in before.items():
        assert await total(client, kind) == count, kind
    for index, entry in sample(bundle["entry"], every=97):
        read = await client.get(f"/fhir/{entry['request']['url']}")
        assert read.status_code == 404, (index, read.status_code)


def assert_names_entry(issues: list[Resource], index: int, where: str, defect: str) -> None:
    expressions = [e for issue in issues for e in issue.get("expression", [])]
    assert where in expressions, (defect, issues)
    assert all(e.startswith(f"Bundle.entry[{index}]") for e in expressions), (defect, issues)
    assert f"ntry {index} " in issues[0]["diagnostics"], (defect, issues[0])  # "Entry 712 (…"


def outcome_of(response: httpx.Response, status: int) -> list[Resource]:
    assert response.status_code == status, response.text[:2000]
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues: list[Resource] = outcome["issue"]
    assert issues and all(i["severity"] in ("error", "fatal") for i in issues[:1])
    return issues


@pytest.mark.parametrize("mode", MODES)
async def test_defects_in_a_large_transaction_store_nothing(mode: str, tmp_path: Path) -> None:
    first, second = stream_bundles()
    # The limits: exactly one full Bundle of entries, and a body a little over the largest.
    limit = max(len(orjson.dumps(b)) for b in (first, second)) + 4_096
    kinds = sorted({e["resource"]["resourceType"] for b in (first, second) for e in b["entry"]})
    async with serving(mode, tmp_path / "data", max_entries=ENTRIES, max_body=limit) as client:
        answer_of(await post(client, first), first)
        before = {kind: await total(client, kind) for kind in kinds}
        assert sum(before.values()) == ENTRIES

        for defect in DEFECTS:
            broken = copy.deepcopy(second)
            index, where = defect(broken)
            issues = outcome_of(await post(client, broken), 422)
            await assert_unchanged(client, before, ENTRIES, second)
            assert_names_entry(issues, index, where, defect.__name__)

        # One entry over the limit of entries (413), whatever the entries hold.
        extra = copy.deepcopy(second)
        extra["entry"].append(copy.deepcopy(extra["entry"][-1]))
        issues = outcome_of(await post(client, extra), 413)
        assert issues[0]["expression"] == ["Bundle.entry"]
        await assert_unchanged(client, before, ENTRIES, second)

        # A body one byte over the limit (413), and then one of exactly the limit (accepted).
        body = orjson.dumps(second)
        assert len(body) < limit
        over = body + b" " * (limit + 1 - len(body))
        outcome_of(await post(client, over), 413)
        await assert_unchanged(client, before, ENTRIES, second)

        # The clean Bundle, padded to exactly the limit, goes through; the server is fine.
        answered = answer_of(await post(client, over[:limit]), second)
        assert all(e["response"]["status"].startswith("201") for e in answered)
        assert await versions(client) == SIZE


async def test_dangling_reference_names_its_entry(tmp_path: Path) -> None:
    first, _ = stream_bundles()
    index, where = unknown_target(first)
    async with serving("inproc", tmp_path / "data") as client:
        issues = outcome_of(await post(client, first), 422)
        assert await versions(client) == 0
        assert_names_entry(issues, index, where, "unknown_target")


async def test_unresolved_urn_uuid_reference_fails_the_transaction(tmp_path: Path) -> None:
    first, _ = stream_bundles()
    index, where = unknown_full_url(first)
    async with serving("inproc", tmp_path / "data") as client:
        response = await post(client, first)
        stored = await versions(client)
        assert stored == 0, f"{stored} resources stored, entry {index} among them"
        assert_names_entry(outcome_of(response, 422), index, where, "unknown_full_url")


async def test_default_limits_in_process(tmp_path: Path) -> None:
    """Without settings: 10,000 entries and 50 MiB are the limits."""
    settings = Settings(dicom_port=0, mllp_port=0, data_dir=tmp_path / "data")
    assert (settings.max_bundle_entries, settings.max_body_bytes) == (10_000, 50 * 2**20)
    first, _ = stream_bundles()
    async with serving("inproc", tmp_path / "data") as client:
        too_many = copy.deepcopy(first)
        reads = [{"request": {"method": "GET", "url": "Patient"}}] * (10_001 - ENTRIES)
        too_many["entry"] += reads
        issues = outcome_of(await post(client, too_many), 413)
        assert issues[0]["expression"] == ["Bundle.entry"]
        body = orjson.dumps(first)
        outcome_of(await post(client, body + b" " * (50 * 2**20 + 1 - len(body))), 413)
        assert await versions(client) == 0
        answer_of(await post(client, body), first)
        assert await versions(client) == ENTRIES
