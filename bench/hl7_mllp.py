"""HL7 v2 over MLLP: messages persisted and acknowledged per second (``python -m bench --only
hl7_mllp``).

A server is started with its MLLP door on a free loopback port and the inbound worker held back
(``--hl7-worker-delay``), so the figure is the listener's alone: read the frame, check it, store
it durably (message + duplicate claim, group commit over ``RecordStore.put_many``), write the AA.
The client (this process, asyncio) sends N distinct ORM^O01 (the research note's Appendix A
order, 1.9 KB, MSH-10 and placer number made unique) pipelined with a window of frames in flight,
on one connection and then on 8 connections at once, and checks every ACK is AA for its MSH-10
(CA in fact: that order asks for enhanced mode, MSH-15 AL).

Beside each figure, the same run's bare durable write of the same bytes: SQLite (WAL,
``synchronous=FULL``, as the server's store) inserting the raw messages with one transaction
per window of messages, and with one transaction per message (what persist-then-ACK costs
without group commit).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.harness import ServerProcess, free_port

FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/hl7v2/ORM-O01-appendix-a.hl7"
START, END = b"\x0b", b"\x1c\x0d"
WINDOW = 50
CONNECTIONS = 8


def messages(count: int, prefix: str) -> list[bytes]:
    """``count`` distinct orders: MSH-10 and the placer order number made unique."""
    template = FIXTURE.read_text().replace("\r\n", "\r").replace("\n", "\r")
    control = template.split("\r", 1)[0].split("|")[9]
    placer = "PLC-20250314-0001"
    out = []
    for n in range(count):
        unique = f"{prefix}{n:07d}"
        text = template.replace(control, unique).replace(placer, f"PLC-{unique}")
        out.append(text.encode())
    return out


async def _connection(port: int, batch: list[bytes], window: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    slots = asyncio.Semaphore(window)

    async def send() -> None:
        for message in batch:
            await slots.acquire()
            writer.write(START + message + END)
            await writer.drain()

    async def receive() -> None:
        for message in batch:
            ack = await asyncio.wait_for(reader.readuntil(END), 60)
            control = message.split(b"\r", 1)[0].split(b"|")[9]
            if b"MSA|AA|" + control not in ack and b"MSA|CA|" + control not in ack:
                raise RuntimeError(f"not AA/CA for {control!r}: {ack[:200]!r}")
            slots.release()

    try:
        await asyncio.gather(send(), receive())
    finally:
        writer.close()
        await writer.wait_closed()


async def acknowledged_rate(port: int, batches: list[list[bytes]], window: int) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, batch, window) for batch in batches))
    return sum(len(b) for b in batches) / (time.perf_counter() - started)


def bare_write_rate(payloads: list[bytes], per_transaction: int) -> float:
    """Raw messages/s into SQLite (WAL, synchronous=FULL), ``per_transaction`` rows a commit."""
    folder = Path(tempfile.mkdtemp(prefix="hl7-bare-"))
    try:
        conn = sqlite3.connect(folder / "bare.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE m (key TEXT PRIMARY KEY, raw BLOB)")
        started = time.perf_counter()
        for at in range(0, len(payloads), per_transaction):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO m VALUES (?, ?)",
                [(f"{at + i}", p) for i, p in enumerate(payloads[at : at + per_transaction])],
            )
            conn.execute("COMMIT")
        rate = len(payloads) / (time.perf_counter() - started)
        conn.close()
        return rate
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(count: int = 5000) -> dict[str, float]:
    port = free_port()
    args = ["--mllp-port", str(port), "--hl7-worker-delay", "3600"]
    one = messages(count, "ONE")
    many = messages(count, "MANY")
    figures: dict[str, float] = {}
    with ServerProcess(args=args):
        asyncio.run(acknowledged_rate(port, [messages(200, "WARM")], WINDOW))  # warm-up
        figures["one"] = asyncio.run(acknowledged_rate(port, [one], WINDOW))
        slices = [many[i::CONNECTIONS] for i in range(CONNECTIONS)]
        figures["eight"] = asyncio.run(acknowledged_rate(port, slices, WINDOW))
    figures["bare_window"] = bare_write_rate(one, WINDOW)
    figures["bare_single"] = bare_write_rate(one[: max(count // 10, 200)], 1)
    size = sum(len(m) for m in one) / len(one)
    print(f"\nhl7_mllp  {count} ORM^O01 ({size:.0f} B), window {WINDOW} frames in flight")
    print(f"  bare SQLite write, {WINDOW}/commit   {figures['bare_window']:>9,.0f} msg/s")
    print(f"  bare SQLite write, 1/commit    {figures['bare_single']:>9,.0f} msg/s")
    for key, label in (("one", "1 connection"), ("eight", f"{CONNECTIONS} connections")):
        rate = figures[key]
        print(
            f"  ACKed (persisted), {label:<13} {rate:>9,.0f} msg/s   "
            f"{rate / figures['bare_window']:.2f}x bare {WINDOW}/commit, "
            f"{rate / figures['bare_single']:.1f}x bare 1/commit"
        )
    return figures


if __name__ == "__main__":
    run()
