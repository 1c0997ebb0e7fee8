"""Referential integrity through the storage port (storage/port.py): every backend must pass.

A put carries the local references of its version; a unit of work asked to check them refuses a
reference to a resource that does not exist, was deleted, or a version that is not stored, and
refuses to delete a resource that another current resource refers to. The checks run inside
the backend's write transaction, so a deletion and a concurrent write referring to the deleted
resource never both succeed. Without the check, everything is accepted (and still recorded).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from fhir_server.core.errors import DanglingReference, DeleteConflict
from fhir_server.storage.port import ABSENT, HistoryQuery, ResourceStore, ResourceVersion
from fhir_server.validation.references import LocalReference

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUBJECT = "Observation.subject"


def ref(target: str, path: str = SUBJECT, version: int | None = None) -> LocalReference:
    kind, id = target.split("/")
    return LocalReference(path, kind, id, version)


def live(kind: str, id: str, n: int = 1) -> ResourceVersion:
    body = f'{{"resourceType":"{kind}","id":"{id}"}}'.encode()
    return ResourceVersion(kind, id, n, T0 + timedelta(seconds=n), "PUT", body)


def tombstone(kind: str, id: str, n: int) -> ResourceVersion:
    return ResourceVersion(kind, id, n, T0 + timedelta(seconds=n), "DELETE", None)


async def put(
    store: ResourceStore,
    v: ResourceVersion,
    refs: Sequence[LocalReference] = (),
    *,
    check: bool = True,
) -> None:
    async with store.unit_of_work(check_references=check) as uow:
        uow.put(v, expected_version=v.version - 1 or ABSENT, interaction="update",
                references=refs)  # fmt: skip


async def exists(store: ResourceStore, kind: str, id: str) -> bool:
    current = await store.read(kind, id)
    return current is not None and not current.deleted


async def test_a_reference_to_a_missing_resource_is_refused(store: ResourceStore) -> None:
    with pytest.raises(DanglingReference) as caught:
        await put(store, live("Observation", "o"), [ref("Patient/nobody")])
    assert [i.expression for i in caught.value.issues] == [(SUBJECT,)]
    assert all(i.code == "not-found" for i in caught.value.issues)
    assert "nobody" not in caught.value.diagnostics  # the id is a value of the resource
    assert await store.read("Observation", "o") is None
    await put(store, live("Patient", "p"))
    await put(store, live("Observation", "o"), [ref("Patient/p")])
    assert await exists(store, "Observation", "o")


async def test_every_dangling_reference_is_listed(store: ResourceStore) -> None:
    await put(store, live("Patient", "p"))
    refs = [ref("Patient/p"), ref("Encounter/e", "Observation.encounter"),
            ref("Practitioner/x", "Observation.performer[1]")]  # fmt: skip
    with pytest.raises(DanglingReference) as caught:
        await put(store, live("Observation", "o"), refs)
    expressions = [i.expression for i in caught.value.issues]
    assert expressions == [("Observation.encounter",), ("Observation.performer[1]",)]
    assert caught.value.sources == (("Observation", "o"), ("Observation", "o"))


async def test_a_reference_to_a_deleted_resource_is_refused(store: ResourceStore) -> None:
    await put(store, live("Patient", "p"))
    await put(store, tombstone("Patient", "p", 2))
    with pytest.raises(DanglingReference) as caught:
        await put(store, live("Observation", "o"), [ref("Patient/p")])
    assert "deleted" in caught.value.issues[0].diagnostics
    assert await store.read("Observation", "o") is None


async def test_versioned_references_are_checked_against_that_version(
    store: ResourceStore,
) -> None:
    await put(store, live("Patient", "p", 1))
    await put(store, live("Patient", "p", 2))
    await put(store, tombstone("Patient", "p", 3))
    # version 1 is stored and not a deletion: fine, even though the resource is deleted now
    await put(store, live("Observation", "o1"), [ref("Patient/p", version=1)])
    for missing in (3, 4):  # a deletion, and a version never stored
        with pytest.raises(DanglingReference):
            await put(
                store, live("Observation", f"o{missing}"), [ref("Patient/p", version=missing)]
            )
    assert await store.read("Observation", "o3") is None


async def test_deleting_a_referenced_resource_is_refused_and_lists_the_referrers(
    store: ResourceStore,
) -> None:
    await put(store, live("Patient", "p"))
    await put(store, live("Observation", "o1"), [ref("Patient/p")])
    await put(store, live("Encounter", "e1"), [ref("Patient/p", "Encounter.subject")])
    with pytest.raises(DeleteConflict) as caught:
        await put(store, tombstone("Patient", "p", 2))
    error = caught.value
    assert error.code == "conflict" and error.target == ("Patient", "p")
    assert error.total == 2
    assert sorted(error.referrers) == [
        ("Encounter", "e1", "Encounter.subject"),
        ("Observation", "o1", SUBJECT),
    ]
    assert "Observation/o1 at Observation.subject" in error.diagnostics
    assert "Encounter/e1 at Encounter.subject" in error.diagnostics
    assert await exists(store, "Patient", "p")
    history = await store.history(HistoryQuery("Patient", "p"))
    assert [v.version for v in history.entries] == [1]


async def test_a_long_list_of_referrers_is_cut(store: ResourceStore) -> None:
    await put(store, live("Patient", "p"))
    for n in range(25):
        await put(store, live("Observation", f"o{n:02}"), [ref("Patient/p")])
    with pytest.raises(DeleteConflict) as caught:
        await put(store, tombstone("Patient", "p", 2))
    assert caught.value.total == 25
    assert len(caught.value.referrers) == 20
    assert caught.value.diagnostics.endswith("and 5 more")


async def test_the_delete_succeeds_once_the_referrer_points_elsewhere_or_is_gone(
    store: ResourceStore,
) -> None:
    for id in ("p", "q"):
        await put(store, live("Patient", id))
    await put(store, live("Observation", "o", 1), [ref("Patient/p")])
    await put(store, live("Encounter", "e", 1), [ref("Patient/p", "Encounter.subject")])
    await put(store, live("Observation", "o", 2), [ref("Patient/q")])  # now elsewhere
    with pytest.raises(DeleteConflict) as caught:
        await put(store, tombstone("Patient", "p", 2))
    assert caught.value.referrers == (("Encounter", "e", "Encounter.subject"),)
    await put(store, tombstone("Encounter", "e", 2))  # the last referrer is deleted
    await put(store, tombstone("Patient", "p", 2))
    assert not await exists(store, "Patient", "p")
    with pytest.raises(DeleteConflict):
        await put(store, tombstone("Patient", "q", 2))


async def test_self_references_and_versioned_referrers_do_not_block(
    store: ResourceStore,
) -> None:
    await put(store, live("Patient", "p", 1), [ref("Patient/p", "Patient.link[0].other")])
    await put(store, live("Patient", "p", 2), [ref("Patient/p", "Patient.link[0].other", 2)])
    await put(store, live("Provenance", "v"), [ref("Patient/p", "Provenance.target[0]", 2)])
    # a versioned reference pins a version, which the deletion keeps readable (vread)
    await put(store, tombstone("Patient", "p", 3))
    assert not await exists(store, "Patient", "p")


async def test_the_puts_of_one_unit_may_refer_to_one_another(store: ResourceStore) -> None:
    async with store.unit_of_work(check_references=True) as uow:
        uow.put(live("Observation", "o"), expected_version=ABSENT, interaction="create",
                references=[ref("Patient/p")])  # fmt: skip
        uow.put(live("Patient", "p"), expected_version=ABSENT, interaction="create",
                references=[ref("Observation/o", "Patient.link[0].other")])  # fmt: skip
    assert await exists(store, "Observation", "o") and await exists(store, "Patient", "p")
    # a referrer and its target deleted together
    async with store.unit_of_work(check_references=True) as uow:
        uow.put(tombstone("Patient", "p", 2), expected_version=1, interaction="delete")
        uow.put(tombstone("Observation", "o", 2), expected_version=1, interaction="delete")
    assert not await exists(store, "Patient", "p")


async def test_a_unit_is_checked_in_its_final_state(store: ResourceStore) -> None:
    await put(store, live("Patient", "p"))
    with pytest.raises(DanglingReference):  # refers to a resource the unit deletes
        async with store.unit_of_work(check_references=True) as uow:
            uow.put(live("Observation", "o"), expected_version=ABSENT, interaction="create",
                    references=[ref("Patient/p")])  # fmt: skip
            uow.put(tombstone("Patient", "p", 2), expected_version=1, interaction="delete")
    with pytest.raises(DanglingReference):  # the other order: the same final state
        async with store.unit_of_work(check_references=True) as uow:
            uow.put(tombstone("Patient", "p", 2), expected_version=1, interaction="delete")
            uow.put(live("Observation", "o"), expected_version=ABSENT, interaction="create",
                    references=[ref("Patient/p")])  # fmt: skip
    assert await exists(store, "Patient", "p")
    assert await store.read("Observation", "o") is None
    # the check may be switched on until commit, as a pipeline joining a unit does
    uow = store.unit_of_work()
    uow.put(live("Observation", "o"), expected_version=ABSENT, interaction="create",
            references=[ref("Patient/nobody")])  # fmt: skip
    uow.check_references = True
    with pytest.raises(DanglingReference):
        await uow.commit()
    assert await store.read("Observation", "o") is None


async def test_nothing_of_a_refused_unit_is_stored(store: ResourceStore) -> None:
    before = await store.pending_events("contract", 100, T0)
    with pytest.raises(DanglingReference) as caught:
        async with store.unit_of_work(check_references=True) as uow:
            uow.put(live("Patient", "p"), expected_version=ABSENT, interaction="create")
            refs = [ref("Patient/p"), ref("Group/g", "Observation.focus[0]")]
            uow.put(live("Observation", "o"), expected_version=ABSENT, interaction="create",
                    references=refs)  # fmt: skip
    assert caught.value.sources == (("Observation", "o"),)  # which write of the unit
    assert await store.read("Patient", "p") is None
    assert await store.read("Observation", "o") is None
    assert await store.pending_events("contract", 100, T0) == before
    assert (await store.history(HistoryQuery())).entries == []


async def test_without_the_check_everything_is_accepted_and_still_recorded(
    store: ResourceStore,
) -> None:
    await put(store, live("Observation", "o"), [ref("Patient/p")], check=False)
    await put(store, live("Patient", "p"), check=False)
    await put(store, live("Observation", "o2"), [ref("Patient/p")], check=False)
    await put(store, tombstone("Patient", "p", 2), check=False)
    assert not await exists(store, "Patient", "p")
    await put(store, live("Patient", "p", 3), check=False)
    # switched on later: the references recorded while it was off count
    with pytest.raises(DeleteConflict) as caught:
        await put(store, tombstone("Patient", "p", 4))
    assert sorted(r[:2] for r in caught.value.referrers) == [("Observation", "o"),
                                                             ("Observation", "o2")]  # fmt: skip


async def test_a_delete_and_a_concurrent_referrer_never_both_succeed(
    store: ResourceStore,
) -> None:
    rounds = 30
    for n in range(rounds):
        await put(store, live("Patient", f"p{n}"))

    async def delete(n: int) -> None:
        await put(store, tombstone("Patient", f"p{n}", 2))

    async def refer(n: int) -> None:
        await put(store, live("Observation", f"o{n}"), [ref(f"Patient/p{n}")])

    outcomes = await asyncio.gather(
        *(task for n in range(rounds) for task in (
            (delete(n), refer(n)) if n % 2 else (refer(n), delete(n)))),
        return_exceptions=True,
    )  # fmt: skip
    for n in range(rounds):
        first, second = outcomes[2 * n], outcomes[2 * n + 1]
        failures = [o for o in (first, second) if isinstance(o, BaseException)]
        assert len(failures) == 1, (n, first, second)
        assert isinstance(failures[0], DanglingReference | DeleteConflict)
        patient, observation = (
            await exists(store, "Patient", f"p{n}"),
            await exists(store, "Observation", f"o{n}"),
        )
        assert patient == observation  # either both (delete refused) or neither
