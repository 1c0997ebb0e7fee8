"""Shared fixtures of the HL7 v2 door's tests: an application with the MLLP listener on a free
loopback port (one per test module), order messages, and a small raw MLLP client.

The raw client (asyncio streams) is for the framing edge cases; python-hl7's ``mllp_send`` is
the real peer for the ordinary exchanges (:func:`mllp_send`).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from fhir_server.bootstrap import Application
from tests.conftest import free_port, running_application

START, END = b"\x0b", b"\x1c\x0d"
MLLP_SEND = str(Path(sys.executable).with_name("mllp_send"))


def order(
    control_id: str,
    *,
    placer: str | None = None,
    app: str = "RIS",
    facility: str = "CITYHOSP",
    version: str = "2.5.1",
    ack_modes: tuple[str, str] = ("", ""),
    charset: str = "",
    patient: str = "DOE^JANE",
    zds: bool = True,
) -> str:
    """A small radiology ORM^O01 (NW) with a Z-segment, segments separated by CR."""
    placer = placer or f"PL-{control_id}"
    accept, application = ack_modes
    segments = [
        f"MSH|^~\\&|{app}|{facility}|FHIRSERVER|TELE|20260314093012||ORM^O01^ORM_O01|"
        f"{control_id}|P|{version}|||{accept}|{application}||{charset}",
        f"PID|1||MRN-{control_id}^^^CITYHOSP^MR||{patient}||19780523|F",
        "PV1|1|O|RAD^CT1^01",
        f"ORC|NW|{placer}^{app}|||SC||||20260314093000|||2345678901^KILDARE^JAMES",
        f"OBR|1|{placer}^{app}||74177^CT ABDOMEN AND PELVIS WITH CONTRAST^CPT4|R|"
        "20260314093000|||||||Abdominal pain|||2345678901^KILDARE^JAMES||ACC-1|RP-1|SPS-1||||CT",
    ]
    if zds:
        uid = f"1.2.840.99999.{zlib.crc32(control_id.encode())}"
        segments.append(f"ZDS|{uid}^FHIRSERVER^Application^DICOM")
    return "\r".join(segments) + "\r"


def framed(message: str | bytes) -> bytes:
    data = message.encode() if isinstance(message, str) else message
    return START + data + END


def segments(ack: str) -> dict[str, list[str]]:
    """The ACK's segments by name (first occurrence), split into fields (index = field n)."""
    found: dict[str, list[str]] = {}
    for segment in filter(None, ack.replace("\n", "\r").split("\r")):
        fields = segment.split("|")
        if fields[0] == "MSH":
            fields = ["MSH", "|", *fields[1:]]
        found.setdefault(fields[0], fields)
    return found


def all_segments(ack: str, name: str) -> list[list[str]]:
    return [s.split("|") for s in ack.split("\r") if s.startswith(name + "|")]


class MllpPeer:
    """A raw MLLP connection: send bytes as they are, read framed answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def ack(self, wait: float = 10.0) -> str:
        data = await asyncio.wait_for(self.reader.readuntil(END), wait)
        assert data.startswith(START), data[:20]
        return data[1 : -len(END)].decode("utf-8", errors="replace")

    async def acks(self, count: int, wait: float = 20.0) -> list[str]:
        return [await self.ack(wait) for _ in range(count)]

    async def closed(self, wait: float = 10.0) -> bool:
        """True when the server has closed the connection (EOF) within ``wait`` seconds."""
        try:
            data = await asyncio.wait_for(self.reader.read(), wait)
        except TimeoutError:
            return False
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


@asynccontextmanager
async def connect(port: int, **kwargs: Any) -> AsyncIterator[MllpPeer]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, **kwargs)
    peer = MllpPeer(reader, writer)
    try:
        yield peer
    finally:
        await peer.close()


async def exchange(port: int, *messages: str) -> list[str]:
    """Send every message pipelined on one connection; their ACKs in order."""
    async with connect(port) as peer:
        await peer.send(b"".join(framed(m) for m in messages))
        return await peer.acks(len(messages))


def mllp_send(port: int, messages: list[str], tmp: Path) -> list[str]:
    """python-hl7's ``mllp_send`` sends every message of a file over one connection; the
    ACKs it prints (one per message)."""
    path = tmp / f"batch-{free_port()}.hl7"
    path.write_bytes(b"".join(framed(m) for m in messages))
    done = subprocess.run(
        [MLLP_SEND, "--port", str(port), "--file", str(path), "127.0.0.1"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    printed = done.stdout.decode().replace("\x0b", "").replace("\x1c", "")
    return ["MSH" + part.strip("\r\n").replace("\n", "\r") for part in printed.split("MSH")[1:]]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hl7_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Application]:
    """One application per test module with the MLLP door on a free loopback port
    (--auth off: any sender is accepted)."""
    data = tmp_path_factory.mktemp("hl7") / "data"
    async with running_application(data, mllp_port=free_port(), mllp_read_timeout=2.0,
                                   mllp_max_message_bytes=64 * 1024) as app:  # fmt: skip
        yield app


@pytest.fixture
def mllp_port(hl7_app: Application) -> int:
    assert hl7_app.mllp is not None
    return hl7_app.mllp.port


@pytest.fixture
def tmp(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
