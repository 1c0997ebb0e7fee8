"""MLLP framing (fhir_server/hl7v2/mllp.py) on byte streams cut at every awkward place, and the
sender allow-list and settings of the door."""

from __future__ import annotations

import asyncio

import pytest

from fhir_server.hl7v2.mllp import Frame, FrameReader, ReadTimeout
from fhir_server.hl7v2.senders import Senders, parse_sender
from fhir_server.settings import Settings

START, END = b"\x0b", b"\x1c\x0d"


async def frames_of(chunks: list[bytes], *, max_bytes: int = 1000) -> list[Frame]:
    reader = asyncio.StreamReader()
    for chunk in chunks:
        reader.feed_data(chunk)
    reader.feed_eof()
    frames = FrameReader(reader, max_bytes=max_bytes, timeout=5)
    found = []
    while (frame := await frames.next()) is not None:
        found.append(frame)
    return found


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
async def test_frames_cut_anywhere_come_out_whole(size: int) -> None:
    stream = b"\x00\r\n" + START + b"MSH|one" + END + START + b"MSH|two\rPID|1" + END + b"  "
    found = await frames_of(pieces(stream, size))
    assert [(f.kind, f.data) for f in found] == [
        ("message", b"MSH|one"), ("message", b"MSH|two\rPID|1"),
    ]  # fmt: skip


@pytest.mark.parametrize("size", [1, 5, 333, 5000])
async def test_oversize_frame_is_discarded_up_to_its_end_then_reading_goes_on(size: int) -> None:
    big = b"MSH|^~\\&|A|B|C|D|||ORM^O01|BIG|P|2.5.1\r" + b"x" * 3000
    stream = START + big + END + START + b"MSH|after" + END
    found = await frames_of(pieces(stream, size), max_bytes=1000)
    assert [f.kind for f in found] == ["oversize", "message"]
    assert found[0].size == len(big) and found[0].data.startswith(b"MSH|^~\\&|A|B")
    assert found[1].data == b"MSH|after"


async def test_unframed_message_and_garbage_and_truncated_frame() -> None:
    stream = b"MSH|no-start" + END + b"junk" + END + START + b"MSH|ok" + END + START + b"MSH|cut"
    found = await frames_of(pieces(stream, 4))
    assert [(f.kind, f.data) for f in found] == [
        ("unframed", b"MSH|no-start"), ("message", b"MSH|ok"), ("truncated", b"MSH|cut"),
    ]  # fmt: skip


async def test_a_stalled_frame_raises_read_timeout_with_what_was_sent() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(START + b"MSH|^~\\&|A|B|||||ORM^O01|SLOW")
    frames = FrameReader(reader, max_bytes=1000, timeout=0.2)
    with pytest.raises(ReadTimeout) as raised:
        await frames.next()
    assert raised.value.partial.endswith(b"ORM^O01|SLOW")


def test_sender_entries_and_their_errors() -> None:
    entry = parse_sender("RIS^CITY=Organization/city;destination=ris;authority:CITY=urn:oid:1.2")
    assert (entry.application, entry.facility, entry.organization) == (
        "RIS", "CITY", "Organization/city",
    )  # fmt: skip
    assert entry.destination == "ris" and dict(entry.identifier_systems) == {"CITY": "urn:oid:1.2"}
    for bad, word in (("RIS", "expected"), ("RIS=Patient/1", "Organization/<id>"),
                      ("RIS=Organization/x;colour=red", "colour"),
                      ("RIS=Organization/x;destination", "NAME=VALUE")):  # fmt: skip
        with pytest.raises(ValueError, match=word):
            parse_sender(bad)
    closed = Senders([entry, parse_sender("LAB=Organization/lab")], accept_any=False)
    assert closed.resolve("RIS", "CITY") is entry
    assert closed.resolve("RIS", "OTHER") is None
    resolved = closed.resolve("LAB", "ANY")
    assert resolved is not None and resolved.organization == "Organization/lab"
    opened = Senders([entry], accept_any=True).resolve("NEW", "PLACE")
    assert opened is not None and opened.organization is None


def test_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "FHIR_SERVER_HL7_SENDERS": "RIS=Organization/a\n LAB^X=Organization/b",
            "FHIR_SERVER_MLLP_READ_TIMEOUT": "2.5",
            "FHIR_SERVER_MLLP_MAX_MESSAGE_BYTES": "1000",
            "FHIR_SERVER_MLLP_TLS_CERT": "/tmp/cert.pem",
        }
    )
    assert settings.hl7_senders == ("RIS=Organization/a", "LAB^X=Organization/b")
    assert settings.mllp_read_timeout == 2.5 and settings.mllp_max_message_bytes == 1000
    with pytest.raises(ValueError, match="--mllp-tls-key"):
        settings.check()
