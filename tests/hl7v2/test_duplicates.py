"""Duplicates: the same MSH-10 from the same MSH-3/MSH-4 is answered with the original ACK and
stored (and so processed) once — across connections, at the same moment, and in one pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fhir_server.bootstrap import Application
from tests.hl7v2.conftest import exchange, mllp_send, order, segments

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def stored(app: Application, control_id: str) -> list[str]:
    assert app.messages is not None
    return [m["id"] for m in await app.messages.search(control_id=control_id)]


async def test_a_resend_after_a_lost_ack_gets_the_original_ack_and_is_stored_once(
    hl7_app: Application, mllp_port: int, tmp: Path
) -> None:
    (first,) = await asyncio.to_thread(mllp_send, mllp_port, [order("DUP-1")], tmp)
    (again,) = await asyncio.to_thread(mllp_send, mllp_port, [order("DUP-1")], tmp)
    assert again == first  # byte for byte: same MSH-7, same MSH-10
    assert segments(first)["MSA"][1:3] == ["AA", "DUP-1"]
    assert await stored(hl7_app, "DUP-1") == [segments(first)["MSH"][10]]


async def test_concurrent_resends_on_several_connections_store_one(
    hl7_app: Application, mllp_port: int
) -> None:
    results = await asyncio.gather(*(exchange(mllp_port, order("DUP-2")) for _ in range(6)))
    acks = {ack for (ack,) in results}
    assert len(acks) == 1
    assert len(await stored(hl7_app, "DUP-2")) == 1


async def test_copies_in_one_pipeline_are_answered_with_the_first_ack(
    hl7_app: Application, mllp_port: int
) -> None:
    acks = await exchange(mllp_port, order("DUP-3"), order("DUP-4"), order("DUP-3"))
    assert acks[0] == acks[2] != acks[1]
    assert len(await stored(hl7_app, "DUP-3")) == 1


async def test_same_control_id_from_another_sender_is_not_a_duplicate(
    hl7_app: Application, mllp_port: int
) -> None:
    acks = await exchange(
        mllp_port, order("DUP-5"), order("DUP-5", facility="OTHERHOSP"), order("DUP-5", app="LIS")
    )
    assert len({segments(a)["MSH"][10] for a in acks}) == 3
    assert len(await stored(hl7_app, "DUP-5")) == 3


async def test_a_rejected_message_is_checked_again_when_resent(
    hl7_app: Application, mllp_port: int
) -> None:
    bad = order("DUP-6").replace("|ORM^O01^ORM_O01|", "||")  # no MSH-9: AR, no claim
    first, second = await exchange(mllp_port, bad, bad)
    assert segments(first)["MSA"][1] == segments(second)["MSA"][1] == "AR"
    assert segments(first)["MSH"][10] != segments(second)["MSH"][10]
    (fixed,) = await exchange(mllp_port, order("DUP-6"))  # the corrected resend is accepted
    assert segments(fixed)["MSA"][1] == "AA"
