"""The in-memory matcher (the congruence oracle) beyond single values: composites, :missing,
and over a corpus chains, _has, compartments, criteria and sorting, against docs/search.md.

Every expectation is worked out by hand from the documented rule, since a wrong oracle would
silently bless a wrong backend.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.matcher import MemoryIndex, match_test
from fhir_server.search.model import (
    ChainTest,
    CompartmentTest,
    CompositeEntry,
    CompositeValue,
    Criteria,
    DateEntry,
    HasTest,
    IndexEntry,
    NumberEntry,
    ParamTest,
    ReferenceEntry,
    ResourceIndex,
    SearchParamDef,
    SortKey,
    StringValue,
    TokenEntry,
    UriEntry,
)
from fhir_server.search.values import date_bounds
from tests.unit.search.matcher_helpers import (
    CODE,
    CODINGS,
    COMBO,
    DATE,
    ENC_SUBJECT,
    ENCOUNTER,
    ID,
    LAST_UPDATED,
    LOINC,
    NAME,
    NOW,
    PROBABILITY,
    PROFILE,
    SUBJECT,
    T0,
    VALUE_QUANTITY,
    check,
    date,
    qentry,
    qty,
    sentry,
    sp,
    tok,
)

# --- composite and :missing ---------------------------------------------------------------------


def component(code: str, value: float) -> CompositeEntry:
    return CompositeEntry(((TokenEntry(LOINC, code),), (qentry(value),)))


def test_composite_pairs_within_one_element_only() -> None:
    entries = (component("8480-6", 120), component("8462-4", 80))
    pair = CompositeValue((tok("8480-6", LOINC), qty("gt", 100)))
    assert check(COMBO, entries, pair)
    assert check(COMBO, entries, CompositeValue((tok("8462-4"), qty("lt", 100))))
    # systolic code with the diastolic value: a pair from two different elements
    assert not check(COMBO, entries, CompositeValue((tok("8480-6"), qty("lt", 100))))
    assert not check(COMBO, entries, CompositeValue((tok("8462-4"), qty("eq", 120))))


def test_special_parameters_are_rejected() -> None:
    near = sp("near", "special", "Location")
    with pytest.raises(InvalidRequest, match="Search is not supported on the special parameter"):
        check(near, (), tok("x"))


def test_composite_needs_one_value_per_component() -> None:
    with pytest.raises(InvalidRequest, match="takes 2 values"):
        check(COMBO, (component("x", 1),), CompositeValue((tok("x"),)))


@pytest.mark.parametrize(
    ("entries", "missing", "expected"),
    [((), True, True), ((), False, False), (CODINGS, True, False), (CODINGS, False, True)],
)
def test_missing(entries: tuple[TokenEntry, ...], missing: bool, expected: bool) -> None:
    index = ResourceIndex({"code": entries} if entries else {})
    test = ParamTest(CODE, "missing", (), missing=missing)
    assert match_test(test, "Observation", "1", index, MemoryIndex()) is expected
    empty_tuple = ResourceIndex({"code": entries})  # an empty tuple is "no entries" too
    assert match_test(test, "Observation", "1", empty_tuple, MemoryIndex()) is expected


def test_missing_on_id_is_never_true() -> None:
    test = ParamTest(ID, "missing", (), missing=True)
    assert not match_test(test, "Patient", "a", ResourceIndex(), MemoryIndex())


# --- the corpus: chains, _has, compartments, criteria -------------------------------------------


def corpus() -> MemoryIndex:
    """Two patients, an encounter of p1, and observations of each (o3 is in no encounter)."""
    memory = MemoryIndex()
    rows: list[tuple[str, str, ResourceIndex]] = [
        ("Patient", "p1", ResourceIndex({"name": (sentry("Ana Lopez"),)}, (("Patient", "p1"),))),
        ("Patient", "p2", ResourceIndex({"name": (sentry("Bo Chen"),)}, (("Patient", "p2"),))),
        (
            "Encounter",
            "e1",
            ResourceIndex({"subject": (ReferenceEntry("Patient", "p1"),)}, (("Patient", "p1"),)),
        ),
        ("Observation", "o1", obs("p1", "e1", "glu")),
        ("Observation", "o2", obs("p2", None, "hb")),
        ("Observation", "o3", obs("p1", None, "hb")),
        ("Observation", "o4", obs("Group/p1", None, "glu")),
    ]
    for order, (type_, id, index) in enumerate(rows):
        memory.put(type_, id, index, T0 + timedelta(hours=order), order)
    return memory


def obs(subject: str, encounter: str | None, code: str) -> ResourceIndex:
    type_, _, id = subject.rpartition("/")
    entries: dict[str, tuple[IndexEntry | CompositeEntry, ...]] = {
        "subject": (ReferenceEntry(type_ or "Patient", id),),
        "code": (TokenEntry(LOINC, code),),
    }
    if encounter:
        entries["encounter"] = (ReferenceEntry("Encounter", encounter),)
    compartments = ((type_ or "Patient", id),) + ((("Encounter", encounter),) if encounter else ())
    return ResourceIndex(entries, compartments)


def find(memory: MemoryIndex, types: tuple[str, ...], *tests: ParamTest | ChainTest | HasTest
         | CompartmentTest) -> set[str]:  # fmt: skip
    return {id for _, id in memory.matches(Criteria(types, tests), now=NOW)}


def name_is(text: str) -> ParamTest:
    return ParamTest(NAME, None, (StringValue(text),))


def code_is(code: str) -> ParamTest:
    return ParamTest(CODE, None, (tok(code),))


def test_chain_follows_references_to_current_targets_of_the_allowed_types() -> None:
    memory = corpus()
    chain = ChainTest(SUBJECT, ("Patient",), name_is("ana"))
    assert find(memory, ("Observation",), chain) == {"o1", "o3"}  # o4 points to a Group
    assert find(memory, ("Observation",), ChainTest(SUBJECT, ("Group",), name_is("ana"))) == set()
    memory.delete("Patient", "p1")
    assert find(memory, ("Observation",), chain) == set()


def test_chains_nest() -> None:
    inner = ChainTest(ENC_SUBJECT, ("Patient",), name_is("ana"))
    chain = ChainTest(ENCOUNTER, ("Encounter",), inner)
    assert find(corpus(), ("Observation",), chain) == {"o1"}


def test_has_finds_targets_of_matching_sources() -> None:
    memory = corpus()
    has_hb = HasTest("Observation", SUBJECT, code_is("hb"))
    assert find(memory, ("Patient",), has_hb) == {"p1", "p2"}
    has_glu = HasTest("Observation", SUBJECT, code_is("glu"))
    assert find(memory, ("Patient",), has_glu) == {"p1"}  # o4's Group/p1 is not Patient/p1
    memory.delete("Observation", "o1")
    assert find(memory, ("Patient",), has_glu) == set()


def test_has_nests() -> None:
    # patients with an encounter referenced by a glucose observation
    inner = HasTest("Observation", ENCOUNTER, code_is("glu"))
    assert find(corpus(), ("Patient",), HasTest("Encounter", ENC_SUBJECT, inner)) == {"p1"}
    inner = HasTest("Observation", ENCOUNTER, code_is("hb"))
    assert find(corpus(), ("Patient",), HasTest("Encounter", ENC_SUBJECT, inner)) == set()


def test_compartment_membership() -> None:
    memory = corpus()
    in_p1 = CompartmentTest("Patient", "p1")
    assert find(memory, ("Observation",), in_p1) == {"o1", "o3"}
    assert find(memory, (), in_p1) == {"p1", "e1", "o1", "o3"}
    assert find(memory, ("Observation",), CompartmentTest("Encounter", "e1")) == {"o1"}


def test_criteria_and_across_tests_or_across_values() -> None:
    memory = corpus()
    either = ParamTest(CODE, None, (tok("glu"), tok("hb")))
    assert find(memory, ("Observation",), either) == {"o1", "o2", "o3", "o4"}
    assert find(memory, ("Observation",), either, CompartmentTest("Patient", "p2")) == {"o2"}
    assert find(
        memory, ("Observation", "Patient"), ParamTest(ID, None, (tok("o2"), tok("p2")))
    ) == {
        "o2",
        "p2",
    }
    assert find(memory, ("Encounter",)) == {"e1"}


def test_last_updated_comes_from_the_put_time() -> None:
    memory = corpus()
    after = ParamTest(LAST_UPDATED, None, (date("ge", "2025-06-01T03:00:00Z"),))
    assert find(memory, (), after) == {"o1", "o2", "o3", "o4"}


# --- sorting ------------------------------------------------------------------------------------


def dated(*rows: tuple[str, str | None]) -> MemoryIndex:
    """Observations by id with an optional date (``a/b`` is a period)."""
    memory = MemoryIndex()
    for order, (id, when) in enumerate(rows):
        entries: dict[str, tuple[IndexEntry | CompositeEntry, ...]] = {}
        if when:
            low, _, high = when.partition("/")
            entries["date"] = (DateEntry(date_bounds(low)[0], date_bounds(high or low)[1]),)
        memory.put("Observation", id, ResourceIndex(entries), T0, order)
    return memory


ALL = Criteria(("Observation",))


def ids(memory: MemoryIndex, *sort: SortKey) -> list[str]:
    return [id for _, id in memory.search(ALL, sort, now=NOW)]


def test_sort_dates_ascending_by_low_descending_by_high_missing_last() -> None:
    memory = dated(("none", None), ("long", "2019/2022"), ("a", "2020"), ("b", "2021-03"))
    assert ids(memory, SortKey(DATE)) == ["long", "a", "b", "none"]
    assert ids(memory, SortKey(DATE, descending=True)) == ["long", "b", "a", "none"]


def test_sort_ties_and_no_sort_follow_creation_order() -> None:
    memory = dated(("c", "2020"), ("a", "2020"), ("b", None), ("d", "2020"))
    assert ids(memory) == ["c", "a", "b", "d"]
    assert ids(memory, SortKey(DATE, descending=True)) == ["c", "a", "d", "b"]
    memory.put("Observation", "c", ResourceIndex(), T0, 0)  # an update keeps its creation order
    assert ids(memory) == ["c", "a", "b", "d"]
    assert ids(memory, SortKey(DATE)) == ["a", "d", "c", "b"]


def test_sort_by_several_keys_and_by_id() -> None:
    memory = dated(("c", "2020"), ("a", "2021"), ("b", "2020"))
    assert ids(memory, SortKey(ID)) == ["a", "b", "c"]
    assert ids(memory, SortKey(ID, descending=True)) == ["c", "b", "a"]
    assert ids(memory, SortKey(DATE), SortKey(ID, descending=True)) == ["c", "b", "a"]
    assert memory.sort_values(("Observation", "a"), (SortKey(DATE), SortKey(ID))) == (
        date_bounds("2021")[0],
        "a",
    )


SortCase = tuple[SearchParamDef, Callable[[int], tuple[IndexEntry, ...]], list[str], list[str]]


@pytest.mark.parametrize(
    ("param", "entries", "ascending", "descending"),
    [
        # entries(i) for i in 0, 1, 2; resource 3 has none
        (NAME, lambda i: (sentry(["Émile", "bob", "Zed"][i]), sentry("Yann")), ["1", "0", "2", "3"],
         ["2", "0", "1", "3"]),
        (CODE, lambda i: (TokenEntry(None, None, "text"), TokenEntry(LOINC, "c" + "bca"[i])),
         ["2", "0", "1", "3"], ["1", "0", "2", "3"]),
        (PROBABILITY, lambda i: (NumberEntry([0.5, 0.2, 0.9][i]), NumberEntry(0.3)),
         ["1", "0", "2", "3"], ["2", "0", "1", "3"]),
        (VALUE_QUANTITY, lambda i: (qentry(*[(1, 9), (2, 3), (0.5, 4)][i]),),
         ["2", "0", "1", "3"], ["0", "2", "1", "3"]),
        (SUBJECT, lambda i: (ReferenceEntry(["Patient", "Group", "Patient"][i], "p" + "bza"[i]),),
         ["1", "2", "0", "3"], ["0", "2", "1", "3"]),
        (PROFILE, lambda i: (UriEntry("http://x/" + "bca"[i]),), ["2", "0", "1", "3"],
         ["1", "0", "2", "3"]),
    ],
)  # fmt: skip
def test_sort_each_type_by_its_lowest_or_highest_value(
    param: SearchParamDef,
    entries: Callable[[int], tuple[IndexEntry, ...]],
    ascending: list[str],
    descending: list[str],
) -> None:
    memory = MemoryIndex()
    for i in range(4):
        index = ResourceIndex({param.code: entries(i)} if i < 3 else {})
        memory.put("Observation", str(i), index, T0, i)
    assert ids(memory, SortKey(param)) == ascending
    assert ids(memory, SortKey(param, descending=True)) == descending


def test_sort_by_a_composite_is_rejected() -> None:
    memory = dated(("a", "2020"))
    with pytest.raises(InvalidRequest, match="Cannot sort"):
        ids(memory, SortKey(COMBO))
