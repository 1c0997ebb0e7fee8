"""The MongoDB document layout and conversions between documents and port objects.

Collections of one store (one database):

``resources``
    One document per resource (current version only; a deleted resource keeps a tombstone
    document so that its version number survives):
    ``_id`` ``"<type>/<id>"``, ``type``, ``id``, ``version`` (int), ``lastUpdated`` (int,
    microseconds since the epoch: BSON dates keep milliseconds only), ``method``, ``deleted``
    (bool), ``body`` (BSON binary, the serialised JSON; null for a tombstone), ``rid`` (int:
    the history ``seq`` of the resource's first version, unique, never changes: the keyset
    tie-break key, creation order as in SQLite), ``refs`` (the local references of the current
    version, for referential integrity: ``[{"p": path, "t": type, "i": id, "v": version|null}]``
    plus ``refkeys``: ``["Type/id", …]`` of its unversioned ones, indexed), and the embedded
    search index written by :func:`fhir_server.storage.mongo.search_index.index_fields` (its
    own top-level fields, all starting with ``ix``; absent on a tombstone).
``history``
    Append-only, one document per version: ``_id`` = ``seq`` (int, from the ``counters``
    document, allocated inside the committing transaction so it follows commit order), ``type``,
    ``id``, ``version``, ``lastUpdated``, ``method``, ``body``.
``outbox``
    One document per committed change, ``_id`` = the history ``seq`` of that version,
    ``type``, ``id``, ``version``, ``interaction``, ``occurred`` (micros).
``outbox_cursor`` / ``outbox_retry``
    Per POST_COMMIT hook: ``{_id: hook, last_seq}``; ``{_id: "<hook>:<seq>", hook, seq,
    attempts, retry_at, last_error}``.
``counters``
    ``{_id: "seq", n}``: the last sequence number handed out.
``conditional_keys``
    ``{_id: sha256 of a conditional create's criteria}``, written by every conditional put in
    its transaction, so two transactions testing the same condition conflict and one retries.
``meta``
    ``{_id: "schema", version}`` and the index set installed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fhir_server.storage.port import OutboxEvent, ResourceVersion

RESOURCES = "resources"
HISTORY = "history"
OUTBOX = "outbox"
OUTBOX_CURSOR = "outbox_cursor"
OUTBOX_RETRY = "outbox_retry"
COUNTERS = "counters"
CONDITIONAL_KEYS = "conditional_keys"
META = "meta"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The fields of a ``resources`` document a page of search results needs.
VERSION_FIELDS = {"type": 1, "id": 1, "version": 1, "lastUpdated": 1, "method": 1, "body": 1}


def resource_key(resource_type: str, id: str) -> str:
    """The ``_id`` of a resource's document."""
    return f"{resource_type}/{id}"


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch (the unit of search index dates, search/model.py)."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def version_from_doc(doc: dict[str, Any]) -> ResourceVersion:
    """A port version from a ``resources`` or ``history`` document."""
    body = doc.get("body")
    return ResourceVersion(
        resource_type=doc["type"],
        id=doc["id"],
        version=int(doc["version"]),
        last_updated=from_micros(int(doc["lastUpdated"])),
        method=doc["method"],
        body=None if body is None else bytes(body),
    )


def event_from_doc(doc: dict[str, Any], attempts: int = 0) -> OutboxEvent:
    return OutboxEvent(
        seq=int(doc["_id"]),
        resource_type=doc["type"],
        id=doc["id"],
        version=int(doc["version"]),
        interaction=doc["interaction"],
        occurred=from_micros(int(doc["occurred"])),
        attempts=attempts,
    )
