"""The record port: small JSON documents that are not FHIR resources, keyed by (kind, key).

The SMART authorization server keeps here what it must share between replicas and keep across
restarts: users, clients, signing keys, authorization codes, grants, refresh tokens, the
client-assertion ``jti`` replay cache, EHR launch contexts. Every backend implements it beside
its resource store (same database, same transactions guarantees per call); the contract suite
``tests/contract/test_records_contract.py`` runs unchanged on SQLite and MongoDB.

Each call is atomic on its own. A record may carry an expiry: an expired record is never
returned (as if absent, ``put(..., if_absent=True)`` may replace it) and :meth:`purge_expired`
removes them. ``value`` is any JSON object; one of its top-level string fields may be named as
``index`` when the record is put, so that :meth:`find` can list records by it (e.g. the grants
of one user).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordPut:
    """One put of :meth:`RecordStore.put_many`: the arguments of :meth:`RecordStore.put`."""

    kind: str
    key: str
    value: Record
    expires: datetime | None = None
    index: str | None = None
    if_absent: bool = False


#: A field path: names of letters, digits and underscores, joined by dots.
_FIELD_PATH = re.compile(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*")


def field_paths(fields: Sequence[str]) -> list[list[str]]:
    """``fields`` split into their names; ValueError for a path that is not one."""
    if isinstance(fields, str):
        raise ValueError("fields: a sequence of paths, not one string")
    for field in fields:
        if not _FIELD_PATH.fullmatch(field):
            raise ValueError(f"fields: {field!r} is not a path of field names")
    return [field.split(".") for field in fields]


def project(record: Record, fields: Sequence[str]) -> Record:
    """The fields of ``record`` at ``fields`` (paths into nested objects), nested as in it; a
    field absent, null, or under a value that is not an object, is left out."""
    out: Record = {}
    for path in field_paths(fields):
        found: Any = record
        for name in path:
            found = found.get(name) if isinstance(found, dict) else None
            if found is None:
                break
        if found is not None:
            place_field(out, path, found)
    return out


def place_field(out: Record, path: Sequence[str], value: Any) -> None:
    """Set ``value`` at ``path`` in ``out``, creating the objects on the way."""
    for name in path[:-1]:
        out = out.setdefault(name, {})
    out[path[-1]] = value


def indexed_value(value: Record, index: str | None) -> str | None:
    """The value of the field ``index`` names, which must be a top-level string of ``value``."""
    if index is None:
        return None
    found = value.get(index)
    if not isinstance(found, str):
        raise ValueError(f"record index field {index!r} is not a top-level string of the value")
    return found


class RecordStore(ABC):
    @abstractmethod
    async def put(
        self,
        kind: str,
        key: str,
        value: Record,
        *,
        expires: datetime | None = None,
        index: str | None = None,
        if_absent: bool = False,
    ) -> bool:
        """Store ``value`` under (kind, key), replacing any record there; with ``if_absent``
        store only when no live record is there. True when stored. ``index``: the name of a
        top-level string field of ``value`` that :meth:`find` can select on."""

    @abstractmethod
    async def put_many(self, items: Sequence[RecordPut]) -> list[bool]:
        """Several puts in one durable write (group commit: one fsync for all of them), in
        order, each with its own ``if_absent``; returns what :meth:`put` would have returned
        for each. On SQLite they are one transaction; an item whose ``if_absent`` finds a live
        record stores nothing and does not undo the others. A later item sees the earlier
        ones (a second ``if_absent`` put of the same key in one call returns False)."""

    @abstractmethod
    async def get(self, kind: str, key: str) -> Record | None:
        """The live record, or None."""

    @abstractmethod
    async def take(self, kind: str, key: str) -> Record | None:
        """Atomically remove and return the live record: of two concurrent takes of the same
        key, exactly one gets it (single-use codes, refresh token rotation)."""

    @abstractmethod
    async def delete(self, kind: str, key: str) -> bool:
        """Remove the record; True if a live one was there."""

    @abstractmethod
    async def find(
        self,
        kind: str,
        value: str | None = None,
        *,
        limit: int = 1000,
        after: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> list[Record]:
        """Live records of ``kind`` in key order; with ``value``, only those whose ``index``
        field (named at put) equals it; with ``after``, only keys after it (paging). With
        ``fields`` (paths of fields, ``series`` or ``attributes.00200013``), each record as
        :func:`project` makes it: only those fields, read without parsing the rest where the
        store can (the imaging index's instance records are 4 KB, of which a study's writer
        needs a few fields of each)."""

    @abstractmethod
    async def purge_expired(self, now: datetime) -> int:
        """Remove the records expired at ``now``; returns how many."""
