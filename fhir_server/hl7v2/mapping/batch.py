"""Group mapping: several messages of one sender applied as ONE FHIR transaction.

What group commit is to the listener's ACKs, this is to the mapping: one unit of work (one
durable commit, one trip to the store's thread per step) for N messages instead of N. The
messages' transaction Bundles are merged: entries with the same conditional URL (the same
Patient, Practitioner, Encounter, or the same order twice) become one entry carrying the last
message's content — arrival order, as mapping them one by one would leave it — and references to
the dropped entries point at the kept one. All or nothing, so if the merged transaction (or the
mapping of any message) fails, the caller maps the messages one at a time, and each failure
stays with its own message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def merge(bundles: Sequence[dict[str, Any]]) -> tuple[dict[str, Any], list[list[int]]]:
    """(the merged transaction, for each bundle the positions of its entries in it)."""
    entries: list[dict[str, Any]] = []
    by_url: dict[str, int] = {}
    alias: dict[str, str] = {}
    positions: list[list[int]] = []
    for bundle in bundles:
        mine: list[int] = []
        for entry in bundle["entry"]:
            request = entry["request"]
            key = request["url"] if request["method"] == "PUT" else None
            if key is not None and key in by_url:
                index = by_url[key]
                kept = entries[index]["fullUrl"]
                if entry["fullUrl"] != kept:  # one fullUrl per conditional URL: nothing to do
                    alias[entry["fullUrl"]] = kept
                entries[index] = {**entry, "fullUrl": kept}
            else:
                index = len(entries)
                entries.append(entry)
                if key is not None:
                    by_url[key] = index
            mine.append(index)
        positions.append(mine)
    if alias:
        for entry in entries:
            _rewrite(entry["resource"], alias)
    merged = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    return merged, positions


def _rewrite(node: Any, alias: dict[str, str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in alias:
                node[key] = alias[value]
            else:
                _rewrite(value, alias)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, alias)
