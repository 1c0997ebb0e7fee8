"""Token searches compiled from templates (storage/sqlite/search_templates.py) are exactly the
compilation of their criteria: same SQL text, same parameters, for every value form."""

from __future__ import annotations

import itertools

from fhir_server.search.model import Criteria, ParamTest, SearchValue, StringValue, TokenValue
from fhir_server.storage.sqlite.search_sql import CompiledCriteria, SearchCompiler
from fhir_server.storage.sqlite.search_templates import LIMIT, Templates
from tests.contract.test_search_contract import CODE, NAME, param

IDENTIFIER = param("identifier", "token")
OBS_CODE = param("code", "token", "Observation")
PIDS = {"code": [3], "identifier": [5, 9], "name": [7]}


def _pids(types: tuple[str, ...], code: str) -> list[int]:
    return PIDS.get(code, [])


def _compiled(criteria: Criteria, templates: Templates | None) -> CompiledCriteria:
    return SearchCompiler(_pids, 1_000, templates).compile(criteria)


def _token_forms(n: int) -> list[TokenValue]:
    return [
        TokenValue("urn:s", f"v{n}"),
        TokenValue(None, f"v{n}"),
        TokenValue("", f"v{n}"),
        TokenValue(f"urn:s{n}", None),
        TokenValue("0", "1"),  # values that read like placeholders
        TokenValue("urn:s", "urn:s"),
    ]


def _criteria(n: int) -> list[Criteria]:
    forms = _token_forms(n)
    out = [Criteria(("Patient",), (ParamTest(IDENTIFIER, None, (form,)),)) for form in forms]
    out += [
        Criteria(("Patient",), (ParamTest(IDENTIFIER, None, pair),))
        for pair in itertools.combinations(forms, 2)
    ]
    out += [
        Criteria(
            ("Patient",),
            (ParamTest(IDENTIFIER, None, (forms[0],)), ParamTest(CODE, None, (forms[3],))),
        ),
        Criteria(("Patient", "Observation"), (ParamTest(CODE, None, (forms[1],)),)),
        Criteria((), (ParamTest(IDENTIFIER, None, (forms[0],)),)),
        Criteria(("Patient",), (ParamTest(param("unknown", "token"), None, (forms[0],)),)),
        Criteria(("Observation",), (ParamTest(OBS_CODE, None, tuple(forms)),)),
    ]
    return out


def test_templates_compile_what_the_criteria_compile_to() -> None:
    templates = Templates()
    for n in range(3):  # the first round builds the templates, the others fill them
        for criteria in _criteria(n):
            assert _compiled(criteria, templates) == _compiled(criteria, None), criteria
    assert len(templates._known) >= 15


def test_other_criteria_are_compiled_as_before() -> None:
    templates = Templates()
    values: tuple[SearchValue, ...] = (StringValue("ann"),)
    others = [
        Criteria(("Patient",), (ParamTest(NAME, None, values),)),
        Criteria(("Patient",), (ParamTest(IDENTIFIER, "not", (TokenValue("urn:s", "a"),)),)),
        Criteria(("Patient",), (ParamTest(IDENTIFIER, "text", (TokenValue(None, "a"),)),)),
        Criteria(("Patient",), (ParamTest(IDENTIFIER, "missing", (), missing=True),)),
        Criteria(("Patient",), (ParamTest(IDENTIFIER, None, tuple(_token_forms(1) * 2)),)),
        Criteria(("Patient",)),
    ]
    for criteria in others:
        assert _compiled(criteria, templates) == _compiled(criteria, None)
    assert templates._known == {}


def test_a_full_cache_starts_over() -> None:
    templates = Templates()
    for n in range(LIMIT + 5):
        PIDS[f"p{n}"] = [n]
        criteria = Criteria(
            ("Patient",), (ParamTest(param(f"p{n}", "token"), None, (TokenValue("s", "c"),)),)
        )
        assert _compiled(criteria, templates) == _compiled(criteria, None)
    assert 0 < len(templates._known) <= LIMIT
