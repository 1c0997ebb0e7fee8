"""Bad input on the framing and MSH level: each gets AR with an ERR naming segment, field and
reason, nothing half-stored, the connection (where it can) and every other connection keep
working. (Content checks — types, versions, PID-3, dates — are H2's, in test_checks*.)"""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.bootstrap import Application
from tests.hl7v2.conftest import END, START, connect, exchange, framed, order, segments

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def found(app: Application, control_id: str) -> list[dict[str, object]]:
    assert app.messages is not None
    return await app.messages.search(control_id=control_id)


def reason(ack: str) -> tuple[str, str, str]:
    """MSA-1, ERR-2 (location) and MSA-3 (text)."""
    msa, err = segments(ack)["MSA"], segments(ack)["ERR"]
    return msa[1], err[2], msa[3]


async def test_no_msh(mllp_port: int) -> None:
    (ack,) = await exchange(mllp_port, "PID|1||X^^^H^MR\rORC|NW|P1\r")
    assert reason(ack) == ("AR", "MSH^1", "the message does not start with MSH")


@pytest.mark.parametrize("encoding", ["^~\\", "^~\\&&", "abcd", "^~ &"])
async def test_wrong_encoding_characters(
    hl7_app: Application, mllp_port: int, encoding: str
) -> None:
    control = f"ENC-{len(encoding)}-{encoding.isalpha()}"
    message = order(control).replace("MSH|^~\\&|", f"MSH|{encoding}|", 1)
    (ack,) = await exchange(mllp_port, message)
    code, where, text = reason(ack)
    assert (code, where) == ("AR", "MSH^1^2")
    assert "MSH-2 encoding characters" in text
    assert segments(ack)["MSA"][2] == control  # MSA-2 = MSH-10 even so
    assert [m["state"] for m in await found(hl7_app, control)] == ["rejected"]


@pytest.mark.parametrize(("field", "name"), [(9, "message type"), (10, "message control id"),
                                             (12, "version id")])  # fmt: skip
async def test_required_msh_fields(mllp_port: int, field: int, name: str) -> None:
    fields = order(f"REQ-{field}").split("\r")[0].split("|")
    fields[field - 1] = ""
    message = "|".join(fields) + "\r" + order(f"REQ-{field}").split("\r", 1)[1]
    (ack,) = await exchange(mllp_port, message)
    assert reason(ack) == ("AR", f"MSH^1^{field}", f"MSH-{field} ({name}) is required")
    assert segments(ack)["ERR"][3] == "101^Required field missing^HL70357"


async def test_oversize_frame_gets_ar_and_the_connection_keeps_working(
    hl7_app: Application, mllp_port: int
) -> None:
    big = order("BIG-1") + "NTE|1||" + "x" * 200_000 + "\r"  # limit here: 64 KiB
    async with connect(mllp_port) as peer:
        await peer.send(framed(big) + framed(order("AFTER-BIG")))
        too_big, after = await peer.acks(2)
    code, where, text = reason(too_big)
    assert (code, where) == ("AR", "MSH^1")
    assert text.startswith("message exceeds 65536 bytes")
    assert segments(too_big)["MSA"][2] == "BIG-1"
    assert segments(after)["MSA"][1:3] == ["AA", "AFTER-BIG"]
    assert await found(hl7_app, "BIG-1") == []


async def test_garbage_between_frames_is_skipped(mllp_port: int) -> None:
    noise = b"\x00\x00\r\n  junk \xff\xfe bytes "
    acks = await exchange_raw(
        mllp_port, noise + framed(order("G-1")) + noise + framed(order("G-2"))
    )
    assert [segments(a)["MSA"][1:3] for a in acks] == [["AA", "G-1"], ["AA", "G-2"]]


async def test_a_message_without_start_block_gets_ar(hl7_app: Application, mllp_port: int) -> None:
    data = order("NOSB-1").encode() + END + framed(order("NOSB-2"))
    first, second = await exchange_raw(mllp_port, data, count=2)
    assert reason(first) == ("AR", "MSH^1", "message without MLLP start block (0x0B) before MSH")
    assert segments(first)["MSA"][2] == "NOSB-1"
    assert segments(second)["MSA"][1:3] == ["AA", "NOSB-2"]
    assert await found(hl7_app, "NOSB-1") == []


async def test_a_frame_without_end_block_at_close_stores_nothing(
    hl7_app: Application, mllp_port: int
) -> None:
    async with connect(mllp_port) as peer:
        await peer.send(START + order("NOEB-1").encode())
        peer.writer.write_eof()
        assert await peer.closed()
    assert await found(hl7_app, "NOEB-1") == []


async def test_invalid_utf8_when_msh18_says_utf8(hl7_app: Application, mllp_port: int) -> None:
    message = order("CS-1", charset="UNICODE UTF-8", patient="B\xe9LA^ANA").encode("latin-1")
    (ack,) = await exchange_raw(mllp_port, framed(message), count=1)
    code, where, text = reason(ack)
    assert (code, where) == ("AR", "MSH^1^18")
    assert "byte 0xE9 at offset" in text and "UNICODE UTF-8" in text


async def test_charsets_decoded_per_msh18_and_latin1_fallback(
    hl7_app: Application, mllp_port: int
) -> None:
    romanian = order("CS-2", charset="8859/2", patient="ŞTEFĂNESCU^ŢUŢU")
    utf8 = order("CS-3", charset="UNICODE UTF-8", patient="ŞTEFĂNESCU^ŢUŢU")
    undeclared = order("CS-4", patient="MÜLLER^JOSÉ")
    acks = await exchange_raw(
        mllp_port,
        framed(romanian.encode("iso8859-2")) + framed(utf8.encode())
        + framed(undeclared.encode("latin-1")),
        count=3,
    )  # fmt: skip
    assert [segments(a)["MSA"][1] for a in acks] == ["AA", "AA", "AA"]
    for control, text in (("CS-2", romanian), ("CS-3", utf8), ("CS-4", undeclared)):
        (message,) = await found(hl7_app, control)
        assert message["raw"] == text


async def test_an_unsupported_charset_gets_ar_103(mllp_port: int) -> None:
    (ack,) = await exchange(mllp_port, order("CS-5", charset="EBCDIC"))
    code, where, text = reason(ack)
    assert (code, where) == ("AR", "MSH^1^18")
    assert "'EBCDIC' is not supported" in text
    assert segments(ack)["ERR"][3].startswith("103^")


async def test_a_slow_sender_hits_the_read_timeout_while_others_are_served(
    hl7_app: Application, mllp_port: int
) -> None:
    async with connect(mllp_port) as slow:
        await slow.send(START + order("SLOW-1").encode()[:200])  # then nothing: timeout is 2 s
        for n in range(3):  # meanwhile another connection is served normally
            (ack,) = await exchange(mllp_port, order(f"FAST-{n}"))
            assert segments(ack)["MSA"][1:3] == ["AA", f"FAST-{n}"]
        late = await slow.ack(wait=6)
        assert reason(late)[0] == "AR"
        assert "no end block (0x1C 0x0D) within the read timeout" in reason(late)[2]
        assert segments(late)["MSA"][2] == "SLOW-1"
        assert await slow.closed()
    assert await found(hl7_app, "SLOW-1") == []


async def test_a_reset_connection_does_not_disturb_others(mllp_port: int) -> None:
    async with connect(mllp_port) as rude:
        await rude.send(framed(order("RST-1")) + START + b"MSH|^~\\&|partial")
        rude.writer.transport.abort()
    await asyncio.sleep(0.1)
    (ack,) = await exchange(mllp_port, order("RST-2"))
    assert segments(ack)["MSA"][1:3] == ["AA", "RST-2"]


async def exchange_raw(port: int, data: bytes, count: int = 2) -> list[str]:
    async with connect(port) as peer:
        await peer.send(data)
        return await peer.acks(count)


async def test_unknown_type_and_version_get_ar_and_missing_pid3_gets_ae_from_the_checks(
    hl7_app: Application, mllp_port: int
) -> None:
    wrong_type = order("CHK-1").replace("|ORM^O01^ORM_O01|", "|XYZ^Z99|")
    wrong_version = order("CHK-2", version="9.9")
    no_pid3 = order("CHK-3").replace("PID|1||MRN-CHK-3^^^CITYHOSP^MR|", "PID|1|||")
    acks = await exchange(mllp_port, wrong_type, wrong_version, no_pid3, order("CHK-4"))
    assert [reason(a)[:2] for a in acks[:3]] == [
        ("AR", "MSH^1^9^^1"), ("AR", "MSH^1^12"), ("AE", "PID^1^3^^1"),
    ]  # fmt: skip
    assert segments(acks[0])["ERR"][3].startswith("200^")
    assert segments(acks[1])["ERR"][3].startswith("203^")
    assert segments(acks[3])["MSA"][1:3] == ["AA", "CHK-4"]  # the connection keeps working
    states = [[m["state"] for m in await found(hl7_app, f"CHK-{n}")] for n in (1, 2, 3)]
    assert states == [["rejected"], ["rejected"], ["failed"]]  # kept, never mapped
