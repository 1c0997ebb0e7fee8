"""The authorization matrix (RO-24 controlled access; CN-4.1.4 "prevent illegal transmission
and modification"): every read-side interaction and every write, through the service as the
doors call it, for every kind of token. No response ever holds a resource outside what the
token may read, and a forbidden write stores nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden
from fhir_server.interactions.patching import parse_json_patch
from fhir_server.interactions.service import FhirService
from tests.unit.interactions.authorize_corpus import (
    ALL,
    KINDS,
    Key,
    Kind,
    corpus_app,
    keys_in,
    observation,
    stored_state,
)

Call = Callable[[FhirService, RequestContext], Awaitable[object]]


def _bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _get(url: str) -> dict[str, Any]:
    return {"request": {"method": "GET", "url": url}}


def _instance_reads(type_: str, id_: str) -> dict[str, Call]:
    return {
        f"read {type_}/{id_}": lambda s, c: s.read(c, type_, id_),
        f"vread {type_}/{id_}": lambda s, c: s.vread(c, type_, id_, "1"),
        f"history {type_}/{id_}": lambda s, c: s.history(c, (), type_, id_),
    }


def _type_reads(type_: str) -> dict[str, Call]:
    sources = ("Observation", "MedicationRequest", "AuditEvent")
    return {
        f"search {type_}": lambda s, c: s.search_type(c, type_),
        f"search {type_} _include=*": lambda s, c: s.search_type(
            c, type_, [("_include", "*"), ("_include:iterate", "*")]
        ),
        f"search {type_} _revinclude": lambda s, c: s.search_type(
            c, type_, [("_revinclude", f"{source}:*") for source in sources]
        ),
        f"history {type_}": lambda s, c: s.history(c, (), type_),
    }


READS: dict[str, Call] = {}
for _type, _id in sorted(ALL):
    READS.update(_instance_reads(_type, _id))
for _type in sorted({t for t, _ in ALL}):
    READS.update(_type_reads(_type))
READS.update(
    {
        "search system": lambda s, c: s.search_system(c),
        "search system _type": lambda s, c: s.search_system(
            c, [("_type", "Observation,Patient,Medication")]
        ),
        "search Observation?subject.name": lambda s, c: s.search_type(
            c, "Observation", [("subject:Patient.name", "Two")]
        ),
        "search Patient?_has": lambda s, c: s.search_type(
            c, "Patient", [("_has:Observation:subject:code", "1-8")]
        ),
        "search MedicationRequest _include medication": lambda s, c: s.search_type(
            c, "MedicationRequest", [("_include", "MedicationRequest:medication")]
        ),
        "search Patient/p1/*": lambda s, c: s.search_compartment(c, "Patient", "p1", "*"),
        "search Patient/p2/*": lambda s, c: s.search_compartment(c, "Patient", "p2", "*"),
        "search Patient/p2/Observation": lambda s, c: s.search_compartment(
            c, "Patient", "p2", "Observation"
        ),
        "history system": lambda s, c: s.history(c),
        "batch GETs": lambda s, c: s.batch_or_transaction(
            c, _bundle("batch", *(_get(f"{t}/{i}") for t, i in sorted(ALL)), _get("Observation"))
        ),
        "transaction GETs": lambda s, c: s.batch_or_transaction(
            c, _bundle("transaction", _get("Observation"), _get("Patient/p1"))
        ),
    }
)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
async def test_ro24_no_interaction_shows_a_resource_outside_the_scopes(
    tmp_path: Path, kind: Kind
) -> None:
    async with corpus_app(tmp_path) as application:
        service = application.service
        seen: set[Key] = set()
        for name, call in READS.items():
            try:
                found = await call(service, kind.context)
            except Forbidden:
                continue
            shown = keys_in(found)
            leaked = shown - kind.readable
            assert not leaked, f"{kind.name}: {name} showed {sorted(leaked)}"
            seen |= shown
        # and what the token may read, it can read
        for key in kind.readable:
            await service.read(kind.context, *key)
        assert seen == kind.readable


def _writes() -> dict[str, tuple[Key, Call]]:
    """Write interactions: the resource each one touches, and the call."""
    new_p1 = observation("new", "p1", "laboratory")
    new_p2 = observation("new", "p2", "laboratory")
    o1 = observation("o1", "p1", "laboratory", code="2-9")
    o3 = observation("o3", "p2", "laboratory", code="2-9")
    moved = observation("o1", "p2", "laboratory")  # p1's observation moved to p2
    patch = parse_json_patch([{"op": "replace", "path": "/status", "value": "amended"}])
    med = {"resourceType": "Medication", "id": "m1", "code": {"text": "other"}}
    return {
        "create p1": (("Observation", "*p1"), lambda s, c: s.create(c, "Observation", new_p1)),
        "create p2": (("Observation", "*p2"), lambda s, c: s.create(c, "Observation", new_p2)),
        "update o1": (("Observation", "o1"), lambda s, c: s.update(c, "Observation", "o1", o1)),
        "update o3": (("Observation", "o3"), lambda s, c: s.update(c, "Observation", "o3", o3)),
        "move o1 to p2": (
            ("Observation", "o1>p2"), lambda s, c: s.update(c, "Observation", "o1", moved)
        ),
        "upsert p1": (
            ("Observation", "*p1"),
            lambda s, c: s.update(c, "Observation", "up", {**new_p1, "id": "up"}),
        ),
        "patch o1": (("Observation", "o1"), lambda s, c: s.patch(c, "Observation", "o1", patch)),
        "patch o3": (("Observation", "o3"), lambda s, c: s.patch(c, "Observation", "o3", patch)),
        "delete o2": (("Observation", "o2"), lambda s, c: s.delete(c, "Observation", "o2")),
        "delete o3": (("Observation", "o3"), lambda s, c: s.delete(c, "Observation", "o3")),
        "update Medication": (
            ("Medication", "m1"), lambda s, c: s.update(c, "Medication", "m1", med)
        ),
        "conditional create matching o3": (
            ("Observation", "o3"),
            lambda s, c: s.create(c, "Observation", new_p2, if_none_exist="identifier=urn:t|o3"),
        ),
        "conditional create p1": (
            ("Observation", "*p1"),
            lambda s, c: s.create(c, "Observation", new_p1, if_none_exist="identifier=urn:t|zz"),
        ),
        "conditional update o3": (
            ("Observation", "o3"),
            lambda s, c: s.update_conditional(c, "Observation", "identifier=urn:t|o3", o3),
        ),
        "conditional update o1": (
            ("Observation", "o1"),
            lambda s, c: s.update_conditional(c, "Observation", "identifier=urn:t|o1", o1),
        ),
        "conditional delete o3": (
            ("Observation", "o3"),
            lambda s, c: s.delete_conditional(c, "Observation", "identifier=urn:t|o3"),
        ),
        "conditional delete o2": (
            ("Observation", "o2"),
            lambda s, c: s.delete_conditional(c, "Observation", "identifier=urn:t|o2"),
        ),
        "transaction update o3": (
            ("Observation", "o3"),
            lambda s, c: s.batch_or_transaction(
                c,
                _bundle("transaction", {
                    "resource": o3, "request": {"method": "PUT", "url": "Observation/o3"}
                }),
            ),
        ),
        "transaction create p1": (
            ("Observation", "*p1"),
            lambda s, c: s.batch_or_transaction(
                c,
                _bundle("transaction", {
                    "resource": new_p1, "request": {"method": "POST", "url": "Observation"}
                }),
            ),
        ),
        "transaction delete o2": (
            ("Observation", "o2"),
            lambda s, c: s.batch_or_transaction(
                c,
                _bundle("transaction", {
                    "request": {"method": "DELETE", "url": "Observation/o2"}
                }),
            ),
        ),
    }  # fmt: skip


WRITES = _writes()


def _may_write(kind: Kind, target: Key) -> bool:
    _, what = target
    if what == "o1>p2":  # both the current (p1) and the new content (p2) must be allowed
        return ("Observation", "o1") in kind.writable and ("Patient", "p2") in kind.writable
    if what.startswith("*"):  # new content in that patient's compartment
        return ("Patient", what[1:]) in kind.writable
    return target in kind.writable


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.name)
@pytest.mark.parametrize("write", sorted(WRITES))
async def test_cn414_a_forbidden_write_stores_nothing(
    tmp_path: Path, kind: Kind, write: str
) -> None:
    target, call = WRITES[write]
    async with corpus_app(tmp_path) as application:
        before = await stored_state(application, ALL)
        allowed = _may_write(kind, target)
        if allowed:
            await call(application.service, kind.context)
            return
        with pytest.raises(Forbidden) as raised:
            await call(application.service, kind.context)
        assert await stored_state(application, ALL) == before
        page = await application.service.search_type(
            RequestContext(), "Observation", [("identifier", "urn:t|new"), ("_total", "accurate")]
        )
        assert page["total"] == 0
        assert "access token" in raised.value.diagnostics
