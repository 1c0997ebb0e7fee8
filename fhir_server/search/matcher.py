"""The in-memory matcher: the oracle the storage backends are checked against.

It evaluates the query AST (:mod:`fhir_server.search.model`) over a plain dictionary of current
resources, following docs/search.md row by row without any of a database's shortcuts, so the
randomised congruence tests (tests/contract/test_search_congruence.py) can compare every
backend's results and order with it. Per-type rules live in
:mod:`fhir_server.search.matcher_values`; this module adds the corpus: chains, ``_has``,
compartments, ``Criteria`` and ``_sort``.

``_lastUpdated`` is answered from the time given to :meth:`MemoryIndex.put` (one instant, a
zero-length range) unless the index already carries entries for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.matcher_values import Entries, param_matches
from fhir_server.search.model import (
    ID_PARAM,
    ChainTest,
    CompartmentTest,
    CompositeEntry,
    Criteria,
    DateEntry,
    HasTest,
    IndexEntry,
    NumberEntry,
    ParamTest,
    QuantityEntry,
    ReferenceEntry,
    ResourceIndex,
    SearchParamDef,
    SortKey,
    StringEntry,
    Test,
    TokenEntry,
    UriEntry,
)

#: The code of the parameter every resource has for its last update time (search.html#all).
LAST_UPDATED_PARAM = "_lastUpdated"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ResourceKey = tuple[str, str]
SortValue = str | float | int


def to_microseconds(moment: datetime) -> int:
    """Microseconds since the epoch (model.py's unit); a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True, slots=True)
class _Stored:
    index: ResourceIndex
    order: int


class MemoryIndex:
    """The current resources of a corpus with their search indexes, keyed by (type, id).

    ``order`` is the creation order, the tie-breaker of every result order: a caller replacing
    a resource passes the order it was created with.
    """

    def __init__(self) -> None:
        self._resources: dict[ResourceKey, _Stored] = {}

    def put(
        self,
        resource_type: str,
        id: str,
        index: ResourceIndex,
        last_updated: datetime,
        order: int,
    ) -> None:
        """Add or replace a resource's current version."""
        if LAST_UPDATED_PARAM not in index.entries:
            instant = to_microseconds(last_updated)
            entries = {**index.entries, LAST_UPDATED_PARAM: (DateEntry(instant, instant),)}
            index = ResourceIndex(entries, index.compartments)
        self._resources[(resource_type, id)] = _Stored(index, order)

    def delete(self, resource_type: str, id: str) -> None:
        """Forget a resource (deleted resources are never found); unknown keys are ignored."""
        self._resources.pop((resource_type, id), None)

    def get(self, resource_type: str, id: str) -> ResourceIndex | None:
        stored = self._resources.get((resource_type, id))
        return stored.index if stored else None

    def __len__(self) -> int:
        return len(self._resources)

    def of_type(self, resource_type: str) -> Iterator[tuple[str, ResourceIndex]]:
        """The ids and indexes of the current resources of one type, in no particular order."""
        for (type_, id), stored in self._resources.items():
            if type_ == resource_type:
                yield id, stored.index

    def items(self) -> Iterator[tuple[ResourceKey, ResourceIndex]]:
        """Every current resource, in creation order."""
        ordered = sorted(self._resources.items(), key=lambda item: item[1].order)
        for key, stored in ordered:
            yield key, stored.index

    def matches(self, criteria: Criteria, *, now: datetime | None = None) -> set[ResourceKey]:
        """The resources satisfying every test of the criteria."""
        now_us = to_microseconds(now or datetime.now(UTC))
        return {
            key
            for key, stored in self._resources.items()
            if _criteria_match(criteria, key, stored.index, self, now_us)
        }

    def search(
        self,
        criteria: Criteria,
        sort: tuple[SortKey, ...] = (),
        *,
        now: datetime | None = None,
    ) -> list[ResourceKey]:
        """The matches in the documented order: by each sort key in turn (resources without a
        value last), ties and no sort by creation order."""
        found = sorted(self.matches(criteria, now=now), key=lambda key: self._resources[key].order)
        for sort_key in reversed(sort):  # stable sorts, least significant key first
            valued: list[tuple[SortValue, ResourceKey]] = []
            missing: list[ResourceKey] = []
            for key in found:
                value = self.sort_value(key, sort_key)
                if value is None:
                    missing.append(key)
                else:
                    valued.append((value, key))
            valued.sort(key=lambda pair: pair[0], reverse=sort_key.descending)
            found = [key for _, key in valued] + missing
        return found

    def sort_value(self, key: ResourceKey, sort_key: SortKey) -> SortValue | None:
        """The value a resource sorts by: its lowest value ascending, its highest descending
        (a date's ``low``/``high``); None when it has none."""
        param = sort_key.param
        if param.type in ("composite", "special"):
            raise InvalidRequest(
                f"Cannot sort by the {param.type} parameter {param.code}", expression=["_sort"]
            )
        if param.code == ID_PARAM:
            return key[1]
        stored = self._resources.get(key)
        if stored is None:
            return None
        values = [
            value
            for entry in stored.index.entries.get(param.code, ())
            if (value := _entry_sort_value(param, entry, sort_key.descending)) is not None
        ]
        if not values:
            return None
        return max(values) if sort_key.descending else min(values)

    def sort_values(
        self, key: ResourceKey, sort: tuple[SortKey, ...]
    ) -> tuple[SortValue | None, ...]:
        """:meth:`sort_value` for each key of a ``_sort``, e.g. to compare orders by value."""
        return tuple(self.sort_value(key, sort_key) for sort_key in sort)


def match_test(
    test: Test,
    resource_type: str,
    id: str,
    index: ResourceIndex,
    corpus: MemoryIndex,
    *,
    now: datetime | None = None,
) -> bool:
    """Whether one resource satisfies one test; ``corpus`` resolves chains and ``_has``."""
    now_us = to_microseconds(now or datetime.now(UTC))
    return _match(test, (resource_type, id), index, corpus, now_us)


def _criteria_match(
    criteria: Criteria, key: ResourceKey, index: ResourceIndex, corpus: MemoryIndex, now_us: int
) -> bool:
    if criteria.types and key[0] not in criteria.types:
        return False
    return all(_match(test, key, index, corpus, now_us) for test in criteria.tests)


def _match(
    test: Test, key: ResourceKey, index: ResourceIndex, corpus: MemoryIndex, now_us: int
) -> bool:
    match test:
        case ParamTest():
            entries: Entries = index.entries.get(test.param.code, ())
            return param_matches(test, key[1], entries, now_us)
        case ChainTest():
            return _chain(test, index, corpus, now_us)
        case HasTest():
            return _has(test, key, corpus, now_us)
        case CompartmentTest():
            return (test.compartment_type, test.compartment_id) in index.compartments
    raise TypeError(f"not a search test: {type(test).__name__}")


def _chain(test: ChainTest, index: ResourceIndex, corpus: MemoryIndex, now_us: int) -> bool:
    """Some reference of ``test.param`` points to a current resource of an allowed type that
    satisfies the rest of the chain."""
    allowed = test.target_types or test.param.targets
    for entry in index.entries.get(test.param.code, ()):
        if not isinstance(entry, ReferenceEntry):
            continue
        target_type, target_id = entry.target_type, entry.target_id
        if target_type is None or target_id is None:
            continue
        if allowed and target_type not in allowed:
            continue
        target = corpus.get(target_type, target_id)
        if target is not None and _match(
            test.test, (target_type, target_id), target, corpus, now_us
        ):
            return True
    return False


def _has(test: HasTest, key: ResourceKey, corpus: MemoryIndex, now_us: int) -> bool:
    """Some current ``source_type`` resource refers to this one through ``test.param`` and
    satisfies the rest of the ``_has``."""
    for source_id, source in corpus.of_type(test.source_type):
        refers = any(
            isinstance(entry, ReferenceEntry) and (entry.target_type, entry.target_id) == key
            for entry in source.entries.get(test.param.code, ())
        )
        if refers and _match(test.test, (test.source_type, source_id), source, corpus, now_us):
            return True
    return False


def _entry_sort_value(
    param: SearchParamDef, entry: IndexEntry | CompositeEntry, descending: bool
) -> SortValue | None:
    """One entry's contribution to the sort (docs/search.md, "Sorting and paging")."""
    match param.type, entry:
        case "date", DateEntry():
            return entry.high if descending else entry.low
        case "number", NumberEntry():
            return entry.value
        case "quantity", QuantityEntry():
            return entry.high if descending else entry.low
        case "string", StringEntry():
            return entry.normalized
        case "token", TokenEntry():
            return entry.code
        case "reference", ReferenceEntry():
            if entry.target_type is None or entry.target_id is None:
                return None
            return f"{entry.target_type}/{entry.target_id}"
        case "uri", UriEntry():
            return entry.uri
    return None
