"""The MLLP listener: python-hl7's mllp_send as the real peer, pipelined frames, several
connections at once, persist-then-ACK, TLS, the sender allow-list, idle connections."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest

from fhir_server.bootstrap import Application
from fhir_server.messaging.log import MessageLog
from tests.conftest import free_port, running_application
from tests.hl7v2.conftest import connect, exchange, framed, mllp_send, order, segments

pytestmark = pytest.mark.asyncio(loop_scope="module")


def log_of(app: Application) -> MessageLog:
    assert app.messages is not None
    return app.messages


async def test_mllp_send_gets_aa_for_each_message_on_one_connection(
    hl7_app: Application, mllp_port: int, tmp: Path
) -> None:
    messages = [order("SEND-1"), order("SEND-2"), order("SEND-3")]
    acks = await asyncio.to_thread(mllp_send, mllp_port, messages, tmp)
    assert [segments(a)["MSA"][1:3] for a in acks] == [
        ["AA", "SEND-1"], ["AA", "SEND-2"], ["AA", "SEND-3"],
    ]  # fmt: skip
    for ack, sent in zip(acks, messages, strict=True):  # the ACK's MSH-10 is the log id
        stored = await log_of(hl7_app).get(segments(ack)["MSH"][10])
        assert stored is not None
        assert stored["raw"].rstrip("\r") == sent.rstrip("\r")
        assert (
            stored["raw"].rstrip("\r").split("\r")[-1].startswith("ZDS|")
        )  # the Z-segment is kept
        assert stored["state"] in ("received", "mapped", "failed")


async def test_pipelined_frames_are_answered_in_order_and_share_durable_writes(
    hl7_app: Application, mllp_port: int
) -> None:
    ids = [f"PIPE-{n:03d}" for n in range(120)]
    acks = await exchange(mllp_port, *(order(i) for i in ids))
    assert [segments(a)["MSA"][2] for a in acks] == ids
    assert {segments(a)["MSA"][1] for a in acks} == {"AA"}
    stored = await log_of(hl7_app).search(sender="RIS", limit=100_000)
    by_control = {m["control_id"]: m for m in stored}
    assert all(i in by_control for i in ids)
    # arrival order is key order: the worker maps them in the order they were sent
    keys = [by_control[i]["id"] for i in ids]
    assert keys == sorted(keys)


async def test_several_connections_at_once_each_get_their_own_acks_in_order(
    hl7_app: Application, mllp_port: int
) -> None:
    batches = [[f"CONN{c}-{n}" for n in range(25)] for c in range(8)]
    results = await asyncio.gather(
        *(exchange(mllp_port, *(order(i) for i in batch)) for batch in batches)
    )
    for batch, acks in zip(batches, results, strict=True):
        assert [segments(a)["MSA"][1:3] for a in acks] == [["AA", i] for i in batch]


async def test_connection_stays_open_between_messages(mllp_port: int) -> None:
    async with connect(mllp_port) as peer:
        for n in range(3):
            await peer.send(framed(order(f"KEEP-{n}")))
            assert segments(await peer.ack())["MSA"][1:3] == ["AA", f"KEEP-{n}"]
            await asyncio.sleep(0.2)


async def test_an_idle_connection_is_closed_after_the_read_timeout(mllp_port: int) -> None:
    async with connect(mllp_port) as peer:  # the module's server: --mllp-read-timeout 2
        assert await peer.closed(wait=6)


async def test_ro24_tls_listener_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await asyncio.to_thread(
        subprocess.run,
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    async with running_application(
        tmp_path / "data", mllp_port=free_port(), mllp_tls_cert=cert, mllp_tls_key=key
    ) as app:
        assert app.mllp is not None
        client = ssl.create_default_context(cafile=str(cert))
        async with connect(app.mllp.port, ssl=client, server_hostname="127.0.0.1") as peer:
            await peer.send(framed(order("TLS-1")))
            assert segments(await peer.ack())["MSA"][1:3] == ["AA", "TLS-1"]
        async with connect(app.mllp.port) as plain:  # a plain-text peer gets nothing
            await plain.send(framed(order("PLAIN-1")))
            assert await plain.closed(wait=5)
        assert await log_of(app).search(control_id="PLAIN-1") == []


async def test_ro24_with_auth_on_only_listed_senders_are_accepted(tmp_path: Path) -> None:
    async with running_application(
        tmp_path / "data", auth="smart", mllp_port=free_port(),
        hl7_senders=("RIS^CITYHOSP=Organization/city;destination=ris",
                     "LAB=Organization/lab"),
    ) as app:  # fmt: skip
        assert app.mllp is not None
        acks = await exchange(
            app.mllp.port,
            order("ALLOW-1"),  # RIS^CITYHOSP
            order("ALLOW-2", app="LAB", facility="ANYWHERE"),  # LAB from any facility
            order("DENY-1", app="RIS", facility="OTHERHOSP"),
            order("DENY-2", app="EVIL"),
        )
        msa = [segments(a)["MSA"] for a in acks]
        assert [m[1] for m in msa] == ["AA", "AA", "AR", "AR"]
        assert "MSH-3 'RIS', MSH-4 'OTHERHOSP'" in msa[2][3] and "--hl7-sender" in msa[2][3]
        assert segments(acks[3])["ERR"][2] == "MSH^1^3"
        log = log_of(app)
        (allowed,) = await log.search(control_id="ALLOW-1")
        assert allowed["sender"]["organization"] == "Organization/city"
        assert allowed["state"] in ("received", "mapped", "failed")
        (denied,) = await log.search(control_id="DENY-2")
        assert denied["state"] == "rejected"  # kept for audit, never mapped
        assert denied["error"]["field"] == 3 and "'EVIL'" in denied["error"]["text"]
