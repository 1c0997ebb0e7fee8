"""The HL7 v2 message log (fhir_server/messaging/log.py) on every backend of the storage
contract (SQLite and MongoDB): group commit, duplicate claims, arrival order, states, outbound
idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from fhir_server.messaging.log import InboundMeta, Mark, MessageLog
from fhir_server.storage.port import ResourceStore


def meta(control_id: str, app: str = "RIS") -> InboundMeta:
    return InboundMeta(control_id, app, "CITYHOSP", "ORM^O01", "2.5.1", "Organization/city")


def raw(control_id: str) -> str:
    return f"MSH|^~\\&|RIS|CITYHOSP|||20260314||ORM^O01|{control_id}|P|2.5.1\rZDS|1.2.3\r"


async def test_accepts_together_duplicates_answered_with_the_first_ack(
    store: ResourceStore,
) -> None:
    log = MessageLog(store.records, lambda: datetime.now(UTC))
    ids = [f"C{n}" for n in range(30)]
    accepted = await asyncio.gather(
        *(log.accept(raw(i), meta(i), ack=f"ACK {i}") for i in ids),
        log.accept(raw("C3"), meta("C3"), ack="ACK second"),  # same burst, same claim
    )
    assert [a.duplicate_ack for a in accepted[:30]] == [None] * 30
    assert accepted[30].duplicate_ack == "ACK C3" and accepted[30].id == accepted[3].id
    again = await log.accept(raw("C5"), meta("C5"), ack="ACK later")
    assert (again.id, again.duplicate_ack) == (accepted[5].id, "ACK C5")
    other = await log.accept(raw("C5"), meta("C5", app="LIS"), ack="ACK lis")
    assert other.duplicate_ack is None
    pending = await log.pending("received", 100)
    assert [p["control_id"] for p in pending] == [*ids, "C5"]  # arrival order
    assert pending[0]["raw"] == raw("C0") and pending[0]["sender"]["organization"]


async def test_states_marks_replay_and_unclaimed_messages(store: ResourceStore) -> None:
    log = MessageLog(store.records, lambda: datetime.now(UTC))
    first = await log.accept(raw("S1"), meta("S1"), ack="A1")
    error = {"segment": "PID", "field": 3, "code": "101", "text": "PID-3 missing"}
    bad = await log.accept(raw("S2"), meta("S2"), ack="AE", state="failed", error=error,
                           claim=False)  # fmt: skip
    resent = await log.accept(raw("S2"), meta("S2"), ack="AE", state="failed", claim=False)
    assert resent.id != bad.id and resent.duplicate_ack is None  # checked again, not claimed
    await log.mark(first.id, "mapped", resources=["ServiceRequest/1", "Task/2"])
    assert [m["id"] for m in await log.search(state="mapped")] == [first.id]
    assert (await log.get(bad.id) or {})["error"] == error
    replayed = await log.replay(first.id)
    assert replayed["state"] == "received" and replayed["resources"] == ["ServiceRequest/1",
                                                                          "Task/2"]  # fmt: skip
    assert [m["id"] for m in await log.search(sender="RIS^CITYHOSP", type="ORM^O01",
                                              control_id="S1")] == [first.id]  # fmt: skip


async def test_marks_of_a_group_are_written_together(store: ResourceStore) -> None:
    """The worker's mark_many: each message leaves "received" with its own state, error and
    resources; nothing else in the record changes."""
    log = MessageLog(store.records, lambda: datetime.now(UTC))
    ids = [(await log.accept(raw(f"G{n}"), meta(f"G{n}"), ack=f"A{n}")).id for n in range(3)]
    records = await log.pending("received", 10)
    error = {"segment": "ORC", "field": 2, "code": "204", "text": "unknown order"}
    await log.mark_many([
        Mark(records[0], "mapped", resources=["ServiceRequest/1"]),
        Mark(records[1], "failed", error=error),
        Mark(records[2], "mapped", resources=["ServiceRequest/2"]),
    ])  # fmt: skip
    assert await log.pending("received", 10) == []
    stored = [await log.get(i) or {} for i in ids]
    assert [s["state"] for s in stored] == ["mapped", "failed", "mapped"]
    assert stored[1]["error"] == error and stored[1]["resources"] == []
    assert stored[2]["resources"] == ["ServiceRequest/2"] and stored[2]["ack"] == "A2"
    assert stored[0]["raw"] == raw("G0") and stored[0]["received"] == records[0]["received"]
    assert [m["id"] for m in await log.search(state="failed")] == [ids[1]]


async def test_outbound_is_queued_once_per_key(store: ResourceStore) -> None:
    log = MessageLog(store.records, lambda: datetime.now(UTC))
    oru = "MSH|^~\\&|FHIRSERVER|TELE|RIS|CITYHOSP|20260314||ORU^R01^ORU_R01|R1|P|2.5.1\r"
    key = "ORU|DiagnosticReport/9/_history/1"
    ids = await asyncio.gather(
        *(log.enqueue_outbound("ris", oru, key=key, source="DiagnosticReport/9") for _ in range(5))
    )
    assert len(set(ids)) == 1
    (queued,) = await log.pending("queued", 10)
    assert (queued["direction"], queued["destination"], queued["control_id"]) == (
        "out",
        "ris",
        "R1",
    )
    assert queued["type"] == "ORU^R01" and queued["source"] == "DiagnosticReport/9"
    await log.mark(queued["id"], "failed", error={"code": "207", "text": "AE"}, attempts=3)
    assert (await log.replay(queued["id"]))["state"] == "queued"
    assert (await log.get(queued["id"]) or {})["attempts"] == 0
