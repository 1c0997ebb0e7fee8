"""HL7 v2 mapping: ORM^O01 messages mapped to FHIR per second (``python -m bench --only
hl7_mapping``).

What the inbound worker does for each received message, in-process on a fresh SQLite data dir
(``synchronous=FULL``): parse (our ER7 reader), the pre-ACK checks, and ``OrderMapper.process``,
which builds one transaction Bundle (Patient, Encounter, Practitioner, ServiceRequest, Task, all
conditional) and applies it through FhirService (validation, conditional resolution, search
index, history, outbox: one durable commit per message). Messages are the research note's
Appendix A order (1.9 KB) with MSH-10, the placer number and the patient id made unique: every
message creates new resources; a second pass sends each order again as an XO change (the
conditional updates then match).

Beside it, in the same run: the mapping alone without storage (parse + checks + Bundle built),
and the bare durable write of the same bytes, one SQLite transaction per message (WAL,
``synchronous=FULL``), which is the floor any persisted mapping pays.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from fhir_server.bootstrap import build
from fhir_server.hl7v2.checks import check
from fhir_server.hl7v2.er7 import parse
from fhir_server.hl7v2.inbound import OrderMapper
from fhir_server.hl7v2.mapping.tables import V2Tables
from fhir_server.hl7v2.senders import SenderConfig
from fhir_server.settings import Settings

FIXTURE = Path(__file__).resolve().parents[1] / "tests/fixtures/hl7v2/ORM-O01-appendix-a.hl7"
GROUP = 50
SENDER = SenderConfig("EPICADT", "CITYHOSP", None, {"CITYHOSP": "urn:oid:1.2.3.4"})


def messages(count: int, control: str = "NW") -> list[str]:
    template = FIXTURE.read_bytes().decode()
    out = []
    for n in range(count):
        unique = f"{n:07d}"
        text = template.replace("MSG20250314093012000123", f"{control}{unique}")
        text = text.replace("PLC-20250314-0001", f"PLC-{unique}").replace("E4567890", f"E{unique}")
        if control != "NW":
            text = text.replace("ORC|NW|", f"ORC|{control}|")
        out.append(text)
    return out


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:8.0f} msg/s  ({seconds * 1000 / count:6.2f} ms/msg)"


def bare_writes(raw: list[str]) -> float:
    folder = Path(tempfile.mkdtemp(prefix="bench-hl7map-"))
    try:
        db = sqlite3.connect(folder / "bare.sqlite", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, raw BLOB)")
        started = time.perf_counter()
        for text in raw:
            db.execute("BEGIN")
            db.execute("INSERT INTO m (raw) VALUES (?)", (text.encode(),))
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        db.close()
        return elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def mapping_only(raw: list[str], mapper: OrderMapper) -> float:
    started = time.perf_counter()
    for text in raw:
        message = parse(text)
        assert not check(message)
        mapper.transaction(message, SENDER, {})
    return time.perf_counter() - started


async def mapped(raw: list[str], mapper: OrderMapper, group: int = 1) -> tuple[float, float]:
    """(seconds for the NW pass, seconds for the XO pass); ``group`` > 1: that many messages
    per transaction (``OrderMapper.process_many``)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-hl7map-"))
    app = build(Settings(data_dir=folder / "data", auth="off", mllp_port=0, dicom_port=0))
    app.settle_heap = True  # the garbage collector as in the server process (`serve`)
    await app.start()
    try:
        times = []
        for batch in (raw, [m.replace("ORC|NW|", "ORC|XO|") for m in raw]):
            started = time.perf_counter()
            for first in range(0, len(batch), group):
                parsed = [parse(text) for text in batch[first : first + group]]
                for message in parsed:
                    if check(message):
                        raise RuntimeError(f"check failed: {check(message)}")
                if group == 1:
                    await mapper.process(parsed[0], SENDER, app.service)
                    continue
                for outcome in await mapper.process_many(parsed, SENDER, app.service):
                    if not isinstance(outcome, list):
                        raise RuntimeError(f"mapping failed: {outcome}")
            times.append(time.perf_counter() - started)
        return times[0], times[1]
    finally:
        await app.stop()
        shutil.rmtree(folder, ignore_errors=True)


def run(count: int = 1000) -> None:
    raw = messages(count)
    mapper = OrderMapper(V2Tables.load())
    print(f"\nhl7_mapping: {count} ORM^O01 (1.9 KB, 5 resources each) mapped to FHIR, in-process")
    only = mapping_only(raw, mapper)
    new, changed = asyncio.run(mapped(raw, mapper))
    new_g, changed_g = asyncio.run(mapped(raw, mapper, GROUP))
    bare = bare_writes(raw)
    print(f"  parse + checks + Bundle (no storage)      {_rate(count, only)}")
    print(f"  mapped, new orders (NW)                   {_rate(count, new)}")
    print(f"  mapped, changes of those orders (XO)      {_rate(count, changed)}")
    print(f"  mapped, NW, {GROUP} messages per transaction   {_rate(count, new_g)}")
    print(f"  mapped, XO, {GROUP} messages per transaction   {_rate(count, changed_g)}")
    print(f"  bare durable write, 1 per commit          {_rate(count, bare)}")
    print(f"  mapped NW / bare write: {bare / new:.2f}x the bare write's rate")
