"""Workloads the load workers run (see :mod:`bench.loadgen`): module-level, so workers import them.

Each factory is called once per worker process, before the timed interval, and prepares that
worker's share of the data as bytes; sending is all that is timed.

- :func:`reference_data` POSTs the shared Organizations, Practitioners and PractitionerRoles of
  the synthetic stream (:mod:`bench.datagen`) and outputs ``(generator ref, server ref)`` pairs.
- :func:`cases` POSTs the patients' cases: a Patient, then its Consents, ServiceRequests,
  Observations, ImagingStudies, DiagnosticReports and Tasks, each with its references rewritten
  to the ids the server assigned (``mapping`` for the shared data, the case's own answers for
  the rest). It outputs the server refs it created, for the CRUD mix.
- :func:`bundles` POSTs transaction Bundles of the same stream (PUT entries with the generator's
  ids), for servers that serve transactions.
- :func:`crud_mix` reads 60 %, creates 20 %, updates 15 % and deletes 5 % of a pool of known
  resources until the duration ends.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from bench import datagen
from bench.loadgen import Item, Request, Session, WorkerContext

Resource = dict[str, Any]

#: Resource types the CRUD mix creates and updates (what a telemedicine EHR writes most).
CRUD_TYPES = ("Observation", "Patient", "ServiceRequest", "Task")


def _ref(resource: Resource) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _body(resource: Resource, mapping: Mapping[str, str]) -> bytes:
    """The resource as POSTed: its generator id dropped, references mapped to server ids."""
    rewritten = datagen.rewrite_references(resource, mapping)
    rewritten.pop("id", None)
    return orjson.dumps(rewritten)


def reference_data(worker: WorkerContext, size: int, seed: int) -> Iterator[Item]:
    """The shared reference data, in stream order, by one worker (it refers to itself)."""
    if worker.index != 0:
        return
    shared = next(iter(datagen.generate(size, seed)))
    if shared.kind != "reference":
        return

    async def post_all(session: Session) -> None:
        mapping: dict[str, str] = {}
        for resource in shared.resources:
            kind = resource["resourceType"]
            answer = await session.request(
                "POST", f"/fhir/{kind}", _body(resource, mapping), _JSON, label=kind
            )
            if answer.status != 201:
                raise RuntimeError(f"POST {kind} answered {answer.status}")
            mapping[_ref(resource)] = f"{kind}/{answer.resource_id()}"
        worker.output(sorted(mapping.items()))

    yield post_all


_JSON = (("Content-Type", "application/fhir+json"),)


def cases(
    worker: WorkerContext, size: int, seed: int, shared: Sequence[tuple[str, str]]
) -> Iterator[Item]:
    """This worker's share of the patients' cases, each POSTed in dependency order."""
    mine = [
        c for i, c in enumerate(_patient_cases(size, seed)) if i % worker.workers == worker.index
    ]
    base = dict(shared)
    created: list[str] = []
    for case in mine:

        async def post_case(session: Session, case: tuple[Resource, ...] = case) -> None:
            mapping = dict(base)
            for resource in case:
                kind = resource["resourceType"]
                answer = await session.request(
                    "POST", f"/fhir/{kind}", _body(resource, mapping), _JSON, label=kind
                )
                if answer.status != 201:
                    return  # recorded as an error by the session; the case cannot go on
                server_ref = f"{kind}/{answer.resource_id()}"
                mapping[_ref(resource)] = server_ref
                created.append(server_ref)

        yield post_case
    worker.output(created)


def _patient_cases(size: int, seed: int) -> Iterator[tuple[Resource, ...]]:
    for case in datagen.generate(size, seed):
        if case.kind != "reference":
            yield case.resources


def bundles(worker: WorkerContext, size: int, seed: int, entries: int) -> Iterator[Item]:
    """Transaction Bundles, in order within each worker (a Bundle refers only to earlier ones,
    so one worker sends all of them when references must resolve: use workers=1)."""
    for index, bundle in enumerate(datagen.bundles(size, seed, entries)):
        if index % worker.workers == worker.index:
            yield Request.post("/fhir", orjson.dumps(bundle), label="transaction")


def crud_mix(worker: WorkerContext, pool: Sequence[str], size: int, seed: int) -> Iterator[Item]:
    """60 % read, 20 % create, 15 % update, 5 % delete over ``pool`` (server refs), endless.

    Creates and updates send resources of :data:`CRUD_TYPES` from a fresh synthetic stream,
    their references pointed at resources of the pool. Deletes remove resources the mix created
    (nothing refers to them; the server refuses to delete a resource others refer to, and the
    loaded ones are referred to), a create taking their place until there is one; deleted refs
    leave the pool first.
    """
    rng = random.Random(seed * 1_000 + worker.index)
    refs = [ref for ref in worker.shard(pool) if ref.split("/", 1)[0] in CRUD_TYPES]
    mine: list[str] = []  # created by this worker's mix, not deleted yet
    known: dict[str, list[str]] = {}
    for ref in pool:
        known.setdefault(ref.split("/", 1)[0], []).append(ref)
    by_type: dict[str, list[Resource]] = {}
    for template in datagen.resources(size, seed + 1 + worker.index):
        if template["resourceType"] in CRUD_TYPES:
            by_type.setdefault(template["resourceType"], []).append(template)

    def fresh(kind: str) -> Resource:
        """A new resource of that kind, its references pointed at known ones of the same type."""
        template = rng.choice(by_type[kind])
        mapping = {}
        for ref in datagen.references(template):
            same = known.get(ref.split("/", 1)[0])
            if same:
                mapping[ref] = rng.choice(same)
        resource: Resource = datagen.rewrite_references(template, mapping)
        return resource

    async def create(session: Session) -> None:
        kind = rng.choice(CRUD_TYPES)
        body = orjson.dumps({k: v for k, v in fresh(kind).items() if k != "id"})
        answer = await session.request("POST", f"/fhir/{kind}", body, _JSON, label="create")
        if answer.status == 201:
            refs.append(f"{kind}/{answer.resource_id()}")
            mine.append(refs[-1])

    async def delete(session: Session) -> None:
        if not mine:  # another lane took the last one since this delete was chosen
            await create(session)
            return
        ref = mine.pop(rng.randrange(len(mine)))
        refs.remove(ref)
        await session.request("DELETE", f"/fhir/{ref}", label="delete")

    def mix() -> Iterator[Item]:
        while refs:
            roll = rng.random()
            if roll < 0.60:
                yield Request.get(f"/fhir/{rng.choice(refs)}", label="read")
            elif roll < 0.80:
                yield create
            elif roll < 0.95:
                ref = rng.choice(refs)
                kind, id = ref.split("/", 1)
                body = orjson.dumps({**fresh(kind), "id": id})
                yield Request.put(f"/fhir/{ref}", body, label="update")
            else:
                yield delete if mine else create

    # The templates above are built now, while the workload is built (untimed), not on the
    # first item: 20,000 synthetic resources take seconds, a whole short run on a busy machine.
    return mix()
