"""Token modifiers that need a terminology service (http://hl7.org/fhir/R4/search.html#token):
``:in``/``:not-in`` (a ValueSet) and ``:above``/``:below`` (subsumption in a code system).

Search is an engine (L1) and cannot import the terminology service (L2): the composition root
injects it as a :class:`SearchTerminology`. Before the search runs each of these parameters
becomes the plain token test on the codes it stands for, which every backend compiles as usual:

* ``code:in=<url>``: the value set's codes (comma: any of the value sets);
* ``code:not-in=<url>``: ``:not`` of the same codes — resources with **no** code in the value
  set, those without the element included (as ``:not``);
* ``code:below=system|code``: the code and every code it subsumes; ``:above``: the code and
  every code that subsumes it (a system must be named; only systems the server holds).

Each code is also matched without a system (``|code``), for elements of type ``code`` (e.g.
``Observation.status``), which the index holds without the system their binding implies.
Errors name the parameter and keep the issue type of the cause (``not-found``,
``not-supported``, ``too-costly``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from fhir_server.core.errors import FhirError, InvalidRequest, Issue
from fhir_server.search.model import ParamTest, SearchParamDef, TokenValue
from fhir_server.search.parse_values import SHOWN, bad_value, shown, unescape

#: Most codes one such parameter may stand for.
MAX_CODES = 10_000
VALUE_SET_MODIFIERS = frozenset(("in", "not-in"))
SUBSUMPTION_MODIFIERS = frozenset(("above", "below"))


class SearchTerminology(Protocol):
    """What search asks of the terminology service; each raises a FhirError saying why it
    cannot answer (unknown value set or code system, not expandable, too large)."""

    def codes(self, value_set_url: str) -> Iterable[tuple[str, str]]:
        """The (system, code) pairs of a value set."""
        ...

    def subsumption(self, system: str, code: str, direction: str) -> Iterable[tuple[str, str]]:
        """``below``: the code and those it subsumes; ``above``: the code and its ancestors."""
        ...


def terminology_test(
    terminology: SearchTerminology,
    name: str,
    param: SearchParamDef,
    modifier: str,
    pieces: list[str],
) -> ParamTest:
    """The plain token test a terminology modifier stands for (see the module docstring)."""
    values: dict[TokenValue, None] = {}
    for piece in pieces:
        for system, code in _answer(name, _question(terminology, name, modifier, piece)):
            values[TokenValue(system, code)] = None
            values[TokenValue("", code)] = None  # a `code` element: its system is implied
            if len(values) > 2 * MAX_CODES:
                raise _too_costly(name)
    return ParamTest(param, "not" if modifier == "not-in" else None, tuple(values))


def _question(
    terminology: SearchTerminology, name: str, modifier: str, piece: str
) -> Callable[[], Iterable[tuple[str, str]]]:
    if modifier in VALUE_SET_MODIFIERS:
        return lambda: terminology.codes(piece)
    system, bar, code = piece.partition("|")
    if not bar or not system or not code:
        raise bad_value(name, f":{modifier} takes system|code (a code system must be named)")
    return lambda: terminology.subsumption(unescape(system), unescape(code), modifier)


def _answer(name: str, ask: Callable[[], Iterable[tuple[str, str]]]) -> list[tuple[str, str]]:
    try:
        return list(ask())
    except FhirError as error:
        issue = error.issues[0]
        text = f"Search parameter {shown(name)}: {issue.diagnostics}"
        raise InvalidRequest(
            text, issues=[Issue("error", issue.code, text, (name[:SHOWN],))]
        ) from None


def _too_costly(name: str) -> InvalidRequest:
    text = (
        f"Search parameter {shown(name)} stands for more than {MAX_CODES} codes, too many "
        "to search by"
    )
    return InvalidRequest(text, issues=[Issue("error", "too-costly", text, (name[:SHOWN],))])
