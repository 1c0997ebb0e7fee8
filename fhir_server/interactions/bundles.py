"""Bundles the core returns: history and searchset (http://hl7.org/fhir/R4/bundle.html).

Entries embed the stored bytes as they are (orjson Fragments): no resource is parsed or
re-serialised to build a page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import orjson

from fhir_server.core.clock import to_instant
from fhir_server.core.ids import random_uuid
from fhir_server.storage.port import Page, ResourceVersion

_STATUS = {"POST": "201 Created", "DELETE": "204 No Content"}


def page_url(base: str, path: str, params: Sequence[tuple[str, str]], cursor: str | None) -> str:
    """The URL of a page: the request's parameters, with the paging cursor replaced."""
    kept = [(key, value) for key, value in params if key != "_cursor"]
    if cursor is not None:
        kept.append(("_cursor", cursor))
    query = urlencode(kept)
    url = f"{base}/{path}" if path else base
    return url + (f"?{query}" if query else "")


def links(
    base: str, path: str, params: Sequence[tuple[str, str]], page: Page
) -> list[dict[str, str]]:
    return search_links(
        base, path, params, _current_cursor(params), page.next_cursor, page.previous_cursor
    )


def search_links(
    base: str,
    path: str,
    params: Sequence[tuple[str, str]],
    current: str | None,
    next_cursor: str | None,
    previous_cursor: str | None,
) -> list[dict[str, str]]:
    """self, then next and previous when there are such pages (R4 names: next, previous)."""
    out = [{"relation": "self", "url": page_url(base, path, params, current)}]
    if next_cursor is not None:
        out.append({"relation": "next", "url": page_url(base, path, params, next_cursor)})
    if previous_cursor is not None:
        out.append({"relation": "previous", "url": page_url(base, path, params, previous_cursor)})
    return out


def _current_cursor(params: Sequence[tuple[str, str]]) -> str | None:
    return next((value for key, value in params if key == "_cursor"), None)


def history_entry(base: str, v: ResourceVersion) -> dict[str, Any]:
    url = f"{v.resource_type}/{v.id}"
    entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
    if v.body is not None:
        entry["resource"] = orjson.Fragment(v.body)
    status = _STATUS.get(v.method, "201 Created" if v.version == 1 else "200 OK")
    entry["request"] = {"method": v.method, "url": v.resource_type if v.method == "POST" else url}
    entry["response"] = {
        "status": status,
        "etag": v.etag,
        "lastModified": to_instant(v.last_updated),
    }
    return entry


def search_entry(
    base: str, v: ResourceVersion, body: bytes | None = None, mode: str = "match"
) -> dict[str, Any]:
    """A searchset entry; ``body`` replaces the stored bytes when the resource was subset."""
    return {
        "fullUrl": f"{base}/{v.resource_type}/{v.id}",
        "resource": orjson.Fragment(body if body is not None else (v.body or b"{}")),
        "search": {"mode": mode},
    }


def outcome_entry(outcome: dict[str, Any]) -> dict[str, Any]:
    """An OperationOutcome about the search itself (search.html#errors: mode ``outcome``)."""
    return {"resource": outcome, "search": {"mode": "outcome"}}


def bundle(
    kind: str,
    timestamp: str,
    link: list[dict[str, str]],
    entries: list[Any],
    total: int | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": random_uuid(),
        "meta": {"lastUpdated": timestamp},
        "type": kind,
        "timestamp": timestamp,
    }
    if total is not None:
        out["total"] = total
    if link:
        out["link"] = link
    if entries:
        out["entry"] = entries
    return out
