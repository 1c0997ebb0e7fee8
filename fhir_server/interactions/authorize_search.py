"""Scope enforcement for searches: the criteria are narrowed before the store runs them, so
paging and ``_total`` stay right (see :mod:`fhir_server.interactions.authorize` for the rules).

* a type the token may not search: 403 when the request names it (type search, ``_type``, a
  compartment search of one type), left out when it does not (system search, ``Patient/1/*``);
* patient scopes add the test "in the compartment of the patient in context"; a compartment
  search of another patient is 403;
* granular scopes add their query. Several granular scopes on one type are OR'ed: the AST has no
  OR of tests, so they become one test when they differ only in values of one parameter (the
  usual ``category=a`` / ``category=b``: a comma OR), else each page is filtered in memory
  (then no total is given: it would count what the caller may not see);
* chains and ``_has`` into a type the token may search only in part are refused (403): the
  answer would tell something about resources it may not see.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from fhir_server.core import fhirjson, r4
from fhir_server.core.access import SEARCH, Access
from fhir_server.core.errors import Forbidden
from fhir_server.interactions.authorize import PATIENT, Rule, ScopePolicy, missing
from fhir_server.search.model import ChainTest, Criteria, HasTest, ParamTest, Test
from fhir_server.storage.port import ResourceVersion

Alternative = tuple[Test, ...]


@dataclass(frozen=True, slots=True)
class Narrowed:
    """The criteria to run, and when the restriction could not be written as criteria, the
    filter every found resource must pass (None: the criteria say it all)."""

    criteria: Criteria
    keep: Callable[[ResourceVersion], bool] | None = None


def narrow_search(
    policy: ScopePolicy,
    access: Access,
    criteria: Criteria,
    *,
    implicit_types: bool,
    compartment: tuple[str, str] | None = None,
) -> Narrowed:
    """``criteria`` as the token may run it. ``implicit_types``: the request did not name its
    types (system search without ``_type``, compartment ``*``), so forbidden ones are dropped
    rather than refused."""
    _check_chains(policy, access, criteria.tests)
    implicit = implicit_types or not criteria.types
    types = criteria.types or tuple(sorted(r4.resource_types()))
    allowed: dict[str, tuple[Rule, ...]] = {}
    for resource_type in types:
        rules = policy.rules(access, SEARCH, resource_type)
        if compartment is not None and compartment[0] == PATIENT and rules:
            rules = tuple(r for r in rules if r.compartment in (None, compartment))
            if not rules and not implicit:
                raise Forbidden(_other_patient(access, compartment))
        if rules:
            allowed[resource_type] = rules
        elif not implicit:
            raise Forbidden(missing(access, SEARCH, resource_type))
    if not allowed:
        if compartment is not None:
            raise Forbidden(_other_patient(access, compartment))
        raise Forbidden("The access token grants no scope to search any resource type")
    restricted = {t: r for t, r in allowed.items() if not any(rule.unrestricted for rule in r)}
    kept = () if not criteria.types and len(allowed) == len(types) else tuple(allowed)
    narrowed = replace(criteria, types=kept)
    if not restricted:
        return Narrowed(narrowed)
    alternatives = {_merged(rules) for rules in restricted.values()}
    if len(restricted) == len(allowed) and len(alternatives) == 1:
        (merged,) = alternatives
        if len(merged) == 1:
            return Narrowed(replace(narrowed, tests=(*merged[0], *criteria.tests)))
    return Narrowed(narrowed, _filter(policy, restricted))


def _filter(
    policy: ScopePolicy, restricted: dict[str, tuple[Rule, ...]]
) -> Callable[[ResourceVersion], bool]:
    def keep(version: ResourceVersion) -> bool:
        rules = restricted.get(version.resource_type)
        if rules is None:
            return True
        if version.body is None:
            return False
        index = policy.index_of(fhirjson.loads(version.body))
        return any(rule.accepts(version.resource_type, version.id, index) for rule in rules)

    return keep


def _merged(rules: Sequence[Rule]) -> tuple[Alternative, ...]:
    """The rules as alternative test conjunctions; rules that differ only in the values of one
    parameter (same compartment, one plain test each) become one test with all the values."""
    out: list[Alternative] = []
    groups: dict[tuple[object, ...], list[Rule]] = {}
    for rule in rules:
        test = rule.tests[0] if len(rule.tests) == 1 else None
        if isinstance(test, ParamTest) and test.modifier is None and test.missing is None:
            groups.setdefault((rule.compartment, test.param), []).append(rule)
        else:
            out.append(rule.restriction())
    for group in groups.values():
        first = group[0]
        assert isinstance(first.tests[0], ParamTest)
        values = tuple(dict.fromkeys(v for rule in group for v in _param_test(rule).values))
        merged = Rule(first.scope, first.compartment, (replace(_param_test(first), values=values),))
        out.append(merged.restriction())
    return tuple(dict.fromkeys(out))


def _param_test(rule: Rule) -> ParamTest:
    test = rule.tests[0]
    assert isinstance(test, ParamTest)
    return test


def _check_chains(policy: ScopePolicy, access: Access, tests: Sequence[Test]) -> None:
    for test in tests:
        match test:
            case ChainTest():
                for target in test.target_types or test.param.targets:
                    _open(policy, access, target, "A chained search")
                _check_chains(policy, access, (test.test,))
            case HasTest():
                _open(policy, access, test.source_type, "A _has search")
                _check_chains(policy, access, (test.test,))


def _open(policy: ScopePolicy, access: Access, resource_type: str, what: str) -> None:
    rules = policy.rules(access, SEARCH, resource_type)
    if not any(rule.unrestricted for rule in rules):
        raise Forbidden(
            f"{what} into {resource_type} needs a scope to search every {resource_type} "
            f"(user/{resource_type}.s or system/{resource_type}.s); the access token's scopes "
            f"do not give one"
        )


def _other_patient(access: Access, compartment: tuple[str, str]) -> str:
    if access.patient is None:
        return "The access token's patient scopes grant nothing without a patient in context"
    return (
        f"{compartment[0]}/{compartment[1]} is not the patient in context; the access token's "
        f"patient scopes reach only {PATIENT}/{access.patient}"
    )
