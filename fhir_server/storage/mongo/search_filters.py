"""Compile search :class:`~fhir_server.search.model.Criteria` to a MongoDB query filter.

The filter selects current, non-deleted ``resources`` documents (``deleted: False``, the
partial filter of every search index) of the wanted types satisfying every test, over the
embedded index fields of search_index.py; value terms come from search_values.py and have the
SQLite backend's semantics (docs/search.md).

Chains and ``_has`` run their inner query first and put its answer into the outer filter as a
list of keys, instead of a ``$lookup``: a ``$lookup`` can only run in an aggregation, once per
outer document (a correlated sub-pipeline scanning the index per row), and a find could not use
it at all; the inner query instead runs once, through the indexes, and the outer filter stays a
plain indexable ``$in`` (on ``ixr.k`` for a chain, on ``_id`` for ``_has``). The price is a cap:
an inner query matching more than :data:`MAX_JOINED` resources is refused with InvalidRequest
(narrow the inner criteria) rather than building a huge filter (MongoDB filters are limited to
16 MB). Inner queries run in the caller's session, so a conditional create inside a transaction
sees the transaction's own writes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.comparisons import (
    check_searchable,
    composite_value,
    id_comparison,
    missing_wanted,
)
from fhir_server.search.model import (
    ID_PARAM,
    ChainTest,
    CompartmentTest,
    Criteria,
    DateValue,
    HasTest,
    ParamTest,
    Test,
)
from fhir_server.storage.mongo.search_index import (
    COMPARTMENTS,
    COMPOSITES,
    KIND_FIELDS,
    PRESENT,
    REFERENCES,
    component_names,
    param_prefix,
    reference_key,
)
from fhir_server.storage.mongo.search_values import EXPR, Term, date_conditions, value_terms

#: Most resources a chain's or a ``_has``'s inner query may match (their keys enter the filter).
MAX_JOINED = 10_000

#: The parameter every resource has; answered from the document's ``lastUpdated`` unless the
#: index carries entries of its own (as the in-memory matcher and the SQLite backend do).
LAST_UPDATED = "_lastUpdated"

Filter = dict[str, Any]

#: Matches every document / no document.
ALWAYS: Filter = {}
NEVER: Filter = {"_id": {"$in": []}}

_SUB_DOCUMENTS = frozenset("dnqr")


def all_of(parts: Sequence[Filter]) -> Filter:
    kept = [p for p in parts if p != ALWAYS]
    if any(p == NEVER for p in kept):
        return NEVER
    if not kept:
        return ALWAYS
    return kept[0] if len(kept) == 1 else {"$and": kept}


def any_of(parts: Sequence[Filter]) -> Filter:
    kept = [p for p in parts if p != NEVER]
    if any(p == ALWAYS for p in kept):
        return ALWAYS
    if not kept:
        return NEVER
    return kept[0] if len(kept) == 1 else {"$or": kept}


def negate(part: Filter) -> Filter:
    if part == NEVER:
        return ALWAYS
    if part == ALWAYS:
        return NEVER
    return {"$nor": [part]}


def _scoped(terms: Sequence[Term], names: dict[str, str], base: Filter) -> list[Filter]:
    """The terms as conditions on the fields ``names`` (one per term; string equalities of one
    field merged into an ``$in``); sub-document terms get ``base`` (the ``p`` of the top level)
    and an ``$elemMatch``."""
    equal: dict[str, list[str]] = {}
    out: list[Filter] = []
    for term in terms:
        if term.kind == EXPR:
            out.append(term.condition)
            continue
        field = names[term.kind]
        if term.kind in _SUB_DOCUMENTS:
            out.append({field: {"$elemMatch": {**base, **term.condition}}})
        elif isinstance(term.condition, str):
            equal.setdefault(field, []).append(term.condition)
        else:
            out.append({field: term.condition})
    for field, values in equal.items():
        unique = list(dict.fromkeys(values))
        out.insert(0, {field: unique[0] if len(unique) == 1 else {"$in": unique}})
    return out


class FilterCompiler:
    """Compiles one query; runs the inner queries of chains and ``_has`` in ``session``.

    ``now`` (microseconds since the epoch) anchors the ``ap`` prefix on dates.
    """

    def __init__(
        self,
        resources: AsyncCollection[dict[str, Any]],
        now: int,
        session: AsyncClientSession | None = None,
    ) -> None:
        self._resources = resources
        self._now = now
        self._session = session

    async def criteria(self, criteria: Criteria) -> Filter:
        """Current, non-deleted resources of ``criteria.types`` satisfying every test."""
        parts: list[Filter] = [{"deleted": False}]
        if len(criteria.types) == 1:
            parts.append({"type": criteria.types[0]})
        elif criteria.types:
            parts.append({"type": {"$in": list(criteria.types)}})
        for test in criteria.tests:
            compiled = await self.test(test, criteria.types)
            if compiled == NEVER:
                return NEVER
            parts.append(compiled)
        return all_of(parts)

    async def test(self, test: Test, types: tuple[str, ...]) -> Filter:
        match test:
            case ParamTest():
                return self._param(test, types)
            case ChainTest():
                return await self._chain(test)
            case HasTest():
                return await self._has(test)
            case CompartmentTest():
                member = reference_key(test.compartment_type, test.compartment_id)
                return {COMPARTMENTS: member}

    # --- parameters ------------------------------------------------------------------------

    def _param(self, test: ParamTest, types: tuple[str, ...]) -> Filter:
        if test.param.code == ID_PARAM:
            return _id_test(test, types)
        check_searchable(test)
        if test.modifier == "missing" or test.missing is not None:
            return _missing(test)
        composite = test.param.type == "composite"
        found = self._composite(test) if composite else self._values(test)
        if test.modifier == "not":
            return negate(found)
        return found

    def _values(self, test: ParamTest) -> Filter:
        code = test.param.code
        terms = [
            term
            for value in test.values
            for term in value_terms(
                test.param.type, test.modifier, value, param_prefix(code), self._now
            )
        ]
        found = any_of(_scoped(terms, KIND_FIELDS, {"p": code}))
        if code == LAST_UPDATED and test.param.type == "date":
            return any_of([found, self._last_updated(test)])
        return found

    def _last_updated(self, test: ParamTest) -> Filter:
        """``_lastUpdated`` from the document's own time, when the index has no entry for it."""
        alternatives: list[Filter] = []
        for value in test.values:
            if not isinstance(value, DateValue):
                continue  # value_terms refused it already
            for condition in date_conditions(value, self._now):
                alternatives.append(all_of([{"lastUpdated": ops} for ops in condition.values()]))
        return all_of([{PRESENT: {"$ne": LAST_UPDATED}}, any_of(alternatives)])

    def _composite(self, test: ParamTest) -> Filter:
        """One composite element matching every component of some value."""
        components = test.param.components
        alternatives: list[Filter] = []
        for given in test.values:
            value = composite_value(test, given)
            per_component = [
                _scoped(
                    value_terms(component.param.type, None, part, "", self._now),
                    component_names(position),
                    {},
                )
                for position, (component, part) in enumerate(
                    zip(components, value.parts, strict=True)
                )
            ]
            for combination in itertools.product(*per_component):
                element: Filter = {"p": test.param.code}
                for condition in combination:
                    element.update(condition)  # each component has fields of its own
                alternatives.append({COMPOSITES: {"$elemMatch": element}})
        return any_of(alternatives)

    # --- chains and _has ---------------------------------------------------------------------

    async def _chain(self, test: ChainTest) -> Filter:
        """Some reference of ``param`` names a current target satisfying the inner test."""
        allowed = test.target_types or test.param.targets
        inner = await FilterCompiler(self._resources, self._now, self._session).criteria(
            Criteria(tuple(allowed), (test.test,))
        )
        if inner == NEVER:
            return NEVER
        keys: list[str] = []
        async for doc in self._resources.find(
            inner, {"_id": 1}, session=self._session, limit=MAX_JOINED + 1
        ):
            keys.append(doc["_id"])
        _check_cap(len(keys), test.param.code)
        if not keys:
            return NEVER
        return {REFERENCES: {"$elemMatch": {"p": test.param.code, "k": {"$in": keys}}}}

    async def _has(self, test: HasTest) -> Filter:
        """Referenced, through ``param``, by a current ``source_type`` satisfying the test."""
        inner = await FilterCompiler(self._resources, self._now, self._session).criteria(
            Criteria((test.source_type,), (test.test,))
        )
        if inner == NEVER:
            return NEVER
        code = test.param.code
        sources = 0
        keys: dict[str, None] = {}
        async for doc in self._resources.find(
            all_of([inner, {REFERENCES: {"$elemMatch": {"p": code, "k": {"$exists": True}}}}]),
            {f"{REFERENCES}.p": 1, f"{REFERENCES}.k": 1},
            session=self._session,
            limit=MAX_JOINED + 1,
        ):
            sources += 1
            _check_cap(sources, f"_has:{test.source_type}:{code}")
            for ref in doc.get(REFERENCES, ()):
                if ref.get("p") == code and isinstance(ref.get("k"), str):
                    keys[ref["k"]] = None
        _check_cap(len(keys), f"_has:{test.source_type}:{code}")
        if not keys:
            return NEVER
        return {"_id": {"$in": list(keys)}}


def _check_cap(found: int, what: str) -> None:
    if found > MAX_JOINED:
        raise InvalidRequest(
            f"The chained search '{what}' matches more than {MAX_JOINED} resources; "
            "narrow it with more criteria",
            expression=[what],
        )


def _missing(test: ParamTest) -> Filter:
    """``:missing``: whether the resource has any entry of the parameter."""
    missing = missing_wanted(test)
    if test.param.code == LAST_UPDATED:  # every resource has one
        return NEVER if missing else ALWAYS
    if missing:
        return {PRESENT: {"$ne": test.param.code}}
    return {PRESENT: test.param.code}


def _id_test(test: ParamTest, types: tuple[str, ...]) -> Filter:
    """``_id`` compares the resource id itself (every resource has one): through the
    documents' own ``_id`` (``Type/id``) when the types are known."""
    wanted = id_comparison(test)
    if wanted.constant is not None:
        return ALWAYS if wanted.constant else NEVER
    found: Filter = NEVER
    if wanted.ids and types:
        found = {"_id": {"$in": [f"{t}/{id}" for t in types for id in wanted.ids]}}
    elif wanted.ids:
        found = {"id": {"$in": list(wanted.ids)}}
    return negate(found) if wanted.negated else found
