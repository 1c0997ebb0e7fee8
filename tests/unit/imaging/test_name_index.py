"""The Patient's Name index (imaging/name_index.py) in a real SQLite record store: a query by
Patient's Name with a literal start reads the studies the index finds, and answers exactly what
matching every study record would (matching.py: case-insensitive, wildcards, lists), for ASCII
names and for the non-ASCII ones Python equates with ASCII letters."""

from __future__ import annotations

import random
from typing import Any

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.imaging import query as query_module
from fhir_server.imaging import study_map
from fhir_server.imaging.kinds import STUDY, STUDY_NAME
from fhir_server.imaging.matching import matches
from fhir_server.imaging.name_index import KEY_CHARS, name_prefixes, name_puts
from fhir_server.imaging.query import StudyQuery, keys_of
from fhir_server.storage.records import RecordStore

CTX = RequestContext(channel="test")


def study(uid: str, *names: dict[str, str] | str) -> dict[str, Any]:
    """A ``dicom-study`` value whose Patient's Name has ``names`` (none: no attribute); a
    string is an Alphabetic group."""
    attributes: dict[str, Any] = {"0020000D": {"vr": "UI", "Value": [uid]}}
    if names:
        values = [{"Alphabetic": n} if isinstance(n, str) else n for n in names]
        attributes["00100010"] = {"vr": "PN", "Value": values}
    return {"study": uid, "attributes": attributes, "imaging_study": None, "organization": None}


async def put_studies(records: RecordStore, studies: list[dict[str, Any]]) -> None:
    await records.put_many([p for s in studies for p in study_map.study_puts(s)])


async def by_name(query: StudyQuery, value: str) -> list[str]:
    found = await query.search(CTX, "STUDY", {"PatientName": value})
    return [item["0020000D"]["Value"][0] for item in found]


def test_keys_fold_ascii_names_and_file_the_rest_apart() -> None:
    groups = {"Alphabetic": "Popescu^Ana", "Ideographic": "ポペスク", "Phonetic": "POPESKU"}
    puts = name_puts("1.2", study("1.2", groups, "Popescu^Ana")["attributes"])
    assert {p.kind for p in puts} == {STUDY_NAME}
    assert [p.key for p in puts] == ["popescu^ana/1.2", "popesku/1.2", "~/1.2"]
    long = "A" * (KEY_CHARS + 5)
    [put] = name_puts("1.3", study("1.3", long)["attributes"])
    assert put.key == "a" * KEY_CHARS + "/1.3"
    [put] = name_puts("1.4", study("1.4", "\u017fmith")["attributes"])  # the long s: not folded
    assert put.key == "~/1.4"
    assert name_puts("1.5", study("1.5")["attributes"]) == []


def test_match_values_read_as_matching_reads_them() -> None:
    assert name_prefixes("Popescu*") == ["popescu"]
    assert name_prefixes("POP?SCU") == ["pop"]
    assert name_prefixes("Popescu^Ana\\Ionescu*") == ["popescu^ana", "ionescu"]
    for not_narrowed in ("", "*", "?opescu", "Ştefan*", "Pop*\\*", "Popescu=ポ*", "~x"):
        assert name_prefixes(not_narrowed) is None, not_narrowed


async def test_a_query_by_name_goes_by_the_index(records: RecordStore) -> None:
    await put_studies(records, [study("1.1", "Popescu^Ana"), study("1.2", "POPESCU^Dan"),
                                study("1.3", "Ionescu^Ana"), study("1.4", "Ştefănescu^Ion"),
                                study("1.5")])  # fmt: skip
    # a study record written without its name records is not found by a narrowed query
    await records.put(STUDY, "1.6", study("1.6", "Popescu^Eva"))
    query = StudyQuery(records)
    assert await by_name(query, "popescu*") == ["1.1", "1.2"]
    assert await by_name(query, "POPESCU^ANA") == ["1.1"]
    assert await by_name(query, "Ionescu*\\Popescu^Dan") == ["1.2", "1.3"]
    assert await by_name(query, "Ş*") == ["1.4"]  # not narrowed: every study record is read
    assert await by_name(query, "*escu^Eva") == ["1.6"]
    assert await by_name(query, "Nobody*") == []


async def test_more_studies_than_the_index_is_worth_reads_them_all(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(query_module, "INDEXED_MAX", 2)
    await put_studies(records, [study(f"3.{n}", f"Pop^{n}") for n in range(1, 6)])
    query = StudyQuery(records)
    assert await by_name(query, "pop*") == [f"3.{n}" for n in range(1, 6)]
    assert await by_name(query, "Pop^3") == ["3.3"]


#: Letters Python's case-insensitive matching equates with ASCII ones, or folds to several.
TRICKY = [
    "\u212a",
    "\u017f",
    "\u0131",
    "\u0130",
    "\u00df",
    "\ufb00",
    "\u03a3",
    "\u03c2",
    "\u03c3",
    "é",
    "É",
]


async def test_the_index_answers_what_matching_every_study_answers(
    records: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random names (ASCII, with letters Python equates with ASCII ones, several groups and
    values, longer than a key) and random match values, several pages of the index: the query
    answers the studies whose record matches, no more, no fewer."""
    monkeypatch.setattr("fhir_server.imaging.name_index.PAGE", 5)
    rng = random.Random(20261205)
    syllables = ["po", "PE", "sc", "u", "^", "an", "ki", "ss", "Si", "k", "s", " ", "-"]

    def name() -> str:
        letters = [rng.choice(syllables) for _ in range(rng.randint(1, 6))]
        if rng.random() < 0.3:
            letters.insert(rng.randint(0, len(letters)), rng.choice(TRICKY))
        text = "".join(letters)
        return text * 8 if rng.random() < 0.05 else text

    studies = []
    for n in range(80):
        groups: list[dict[str, str] | str] = [name()]
        if n % 7 == 0:
            groups = [{"Alphabetic": name(), "Phonetic": name()}]
        if n % 11 == 0:
            groups.append(name())
        studies.append(study(f"4.{n:02d}", *groups) if n % 17 else study(f"4.{n:02d}"))
    # names that start with a letter Python equates with an ASCII one but does not fold to it
    for n, odd in enumerate(
        [
            "\u0131on^Ana",
            "\u0130on",
            "\u017fmith",
            "\u212aelvin",
            "\u00dftrasse",
            "\ufb00",
            "\u03c3a",
        ]
    ):
        studies.append(study(f"5.{n}", odd))
    await put_studies(records, studies)
    query = StudyQuery(records)
    values = [name() for _ in range(30)]
    values += [
        "I*",
        "ION",
        "ion*",
        "S*",
        "SMITH",
        "K*",
        "KELVIN",
        "SS*",
        "sstrasse",
        "FF",
        "\u03a3*",
    ]
    values += [v[: rng.randint(1, max(1, len(v)))] + "*" for v in values[:20]]
    values += [v.upper() for v in values[:10]] + [v.lower() for v in values[10:20]]
    values += ["p?" + v for v in values[:5]] + [
        f"{a}\\{b}*" for a, b in zip(values, values[5:10], strict=False)
    ]
    values += ["SS*", "ss*", "K*", "k*", "S*", "I*", "i*", "s", "KI*"]
    for value in values:
        [key] = keys_of({"PatientName": value}, "STUDY")
        expected = sorted(str(s["study"]) for s in studies if matches(s["attributes"], key))
        assert await by_name(query, value) == expected, value
