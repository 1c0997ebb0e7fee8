"""Referential integrity on MongoDB: the facts, read inside the unit's transaction.

The unit's writes are already applied (in the transaction, not yet committed), so the checks see
its final state: a reference to a resource the unit creates resolves, and a tombstone has no
``refs`` left. ``refkeys`` (indexed) finds who refers to a resource being deleted. Either
refusal raises, and the caller aborts the transaction: nothing of the unit is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase

from fhir_server.storage import integrity as rules
from fhir_server.storage.mongo import documents as d
from fhir_server.storage.port import PendingPut

Document = dict[str, Any]


async def check_unit(
    db: AsyncDatabase[Document], session: AsyncClientSession, puts: Sequence[PendingPut]
) -> None:
    last = rules.final_puts(puts)
    await _check_targets(db, session, list(last.values()))
    for (resource_type, id), put in last.items():
        if put.version.deleted:
            await _check_unreferenced(db, session, resource_type, id)


async def _check_targets(
    db: AsyncDatabase[Document], session: AsyncClientSession, puts: Sequence[PendingPut]
) -> None:
    checked = rules.checked_references(puts)
    if not checked:
        return
    current_keys = {ref.target for _, ref in checked if ref.target_version is None}
    deleted: dict[str, bool] = {}
    async for doc in db[d.RESOURCES].find(
        {"_id": {"$in": sorted(current_keys)}}, {"deleted": 1}, session=session
    ):
        deleted[doc["_id"]] = bool(doc["deleted"])
    versions = {
        (ref.target_type, ref.target_id, ref.target_version)
        for _, ref in checked
        if ref.target_version is not None
    }
    stored: dict[tuple[str, str, int], bool] = {}
    if versions:
        wanted = [{"type": t, "id": i, "version": v} for t, i, v in sorted(versions)]
        async for doc in db[d.HISTORY].find(
            {"$or": wanted}, {"type": 1, "id": 1, "version": 1, "body": 1}, session=session
        ):
            stored[doc["type"], doc["id"], int(doc["version"])] = doc.get("body") is None
    found: list[rules.Dangling] = []
    for put, ref in checked:
        if ref.target_version is None:
            gone = deleted.get(ref.target)
        else:
            gone = stored.get((ref.target_type, ref.target_id, ref.target_version))
        if gone is None:
            found.append(rules.Dangling(put, ref, "missing"))
        elif gone:
            found.append(rules.Dangling(put, ref, "deleted"))
    rules.raise_dangling(found)


async def _check_unreferenced(
    db: AsyncDatabase[Document], session: AsyncClientSession, resource_type: str, id: str
) -> None:
    key = d.resource_key(resource_type, id)
    query = {"refkeys": key, "_id": {"$ne": key}}
    listed: list[tuple[str, str, str]] = []
    total = 0
    async for doc in (
        db[d.RESOURCES].find(query, {"type": 1, "id": 1, "refs": 1}, session=session).sort("rid", 1)
    ):
        paths = sorted(
            ref["p"]
            for ref in doc.get("refs", ())
            if ref["t"] == resource_type and ref["i"] == id and ref.get("v") is None
        )
        total += len(paths)
        room = rules.MAX_LISTED_REFERRERS - len(listed)
        listed.extend((doc["type"], doc["id"], path) for path in paths[:room])
    rules.raise_delete_conflict(resource_type, id, listed, total)
