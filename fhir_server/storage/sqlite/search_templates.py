"""Compiled token searches kept as templates: the SQL of ``identifier=system|value`` is the
same for every value, only its bound parameters differ.

Conditional writes search like this for every entry, twice (the planner's search, then the
store's check inside the write transaction), and compiling the criteria cost about as much as
running the query. A criteria whose tests are all plain token tests (no modifier, fewer values
than are grouped, each value ``code``, ``system|code``, ``|code`` or ``system|``) has a
*shape*: its types, per test the parameter's code and type, the pids it resolves to and which
parts of each value are given. The first compilation of a shape is made with placeholders in
place of the values; later ones copy it with the values put where the placeholders were. The
result is exactly what compiling the criteria gives (same text, same parameters).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_server.search.model import ID_PARAM, Criteria, ParamTest, TokenValue
from fhir_server.storage.sqlite.search_values import GROUPED
from fhir_server.storage.sqlite.sql_fragments import CompiledTest, Sql

#: Templates kept at most (a server sees few shapes; a flood of new ones starts over).
LIMIT = 512

#: (types, per test: code, type, pids, per value: which parts are given) of a criteria.
Shape = tuple[tuple[str, ...], tuple[tuple[str, str, tuple[int, ...], tuple[int, ...]], ...]]


class _Slot(str):
    """A placeholder for the value at position ``int(self)`` (never a value a user sends:
    those are plain ``str``)."""

    __slots__ = ()


def shape_of(criteria: Criteria, pids: Callable[[tuple[str, ...], str], list[int]]) -> Shape | None:
    """The shape of a criteria made only of plain token tests, else None."""
    tests = []
    for test in criteria.tests:
        if (
            type(test) is not ParamTest
            or test.param.type != "token"
            or test.modifier is not None
            or test.missing is not None
            or test.param.code == ID_PARAM
            or not 0 < len(test.values) < GROUPED
        ):
            return None
        parts = []
        for value in test.values:
            if type(value) is not TokenValue or value.value is not None:
                return None
            parts.append(_parts(value))
        code = test.param.code
        tests.append((code, test.param.type, tuple(pids(criteria.types, code)), tuple(parts)))
    return (criteria.types, tuple(tests)) if tests else None


def _parts(value: TokenValue) -> int:
    """Which parts are given: system absent/empty/valued (0/1/2), times code absent/valued."""
    system = 0 if value.system is None else (1 if value.system == "" else 2)
    return system * 2 + (value.code is not None)


def values_of(criteria: Criteria) -> list[str]:
    """The valued parts of the criteria's values, in placeholder order."""
    out: list[str] = []
    for test in criteria.tests:
        assert isinstance(test, ParamTest)
        for value in test.values:
            assert isinstance(value, TokenValue)
            if value.system:
                out.append(value.system)
            if value.code is not None:
                out.append(value.code)
    return out


def with_placeholders(criteria: Criteria) -> Criteria:
    """The same criteria with placeholders for the values (their order: :func:`values_of`)."""
    count = 0

    def slot() -> str:
        nonlocal count
        count += 1
        return _Slot(str(count - 1))

    tests = []
    for test in criteria.tests:
        assert isinstance(test, ParamTest)
        values = []
        for value in test.values:
            assert isinstance(value, TokenValue)
            system = slot() if value.system else value.system
            code = slot() if value.code is not None else None
            values.append(TokenValue(system, code))
        tests.append(ParamTest(test.param, None, tuple(values)))
    return Criteria(criteria.types, tuple(tests))


@dataclass(frozen=True, slots=True)
class Template:
    """A compilation with placeholders; ``aliases``: the table aliases it numbered."""

    base: Sql
    tests: tuple[CompiledTest, ...]
    aliases: int

    def fill(self, values: Sequence[str]) -> tuple[Sql, tuple[CompiledTest, ...]]:
        tests = tuple(
            CompiledTest(
                _filled(t.condition, values),
                None if t.candidates is None else _filled(t.candidates, values),
            )
            for t in self.tests
        )
        return _filled(self.base, values), tests


def _filled(sql: Sql, values: Sequence[str]) -> Sql:
    if not any(type(p) is _Slot for p in sql.params):
        return sql
    params: tuple[Any, ...] = tuple(values[int(p)] if type(p) is _Slot else p for p in sql.params)
    return Sql(sql.text, params)


class Templates:
    """The templates by shape, shared by the reader threads and the writer."""

    def __init__(self) -> None:
        self._known: dict[Shape, Template] = {}
        self._lock = threading.Lock()

    def get(self, shape: Shape) -> Template | None:
        return self._known.get(shape)

    def keep(self, shape: Shape, template: Template) -> None:
        with self._lock:
            if len(self._known) >= LIMIT:
                self._known.clear()
            self._known[shape] = template
