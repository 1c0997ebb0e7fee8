"""An instance's index record, and the instances indexed again after a power failure
(for :class:`~fhir_server.imaging.service.ImagingService`).

The ingest keeps with each instance's bytes a *note* (who sent it, when): with the bytes it is
all the record is made of, so a blob store may commit the record without a sync of its own
(the filesystem store's segments). After a power failure that store gives back the rows it
lost and lists those blobs (``BlobStore.restored``): :func:`index_restored`, at start, writes
their records again (with their study's pending marker, so the ImagingStudy is written too).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fhir_server.core.clock import Clock, to_instant
from fhir_server.imaging.gate import GatePolicy
from fhir_server.imaging.instances import Prepared, Refused, prepare
from fhir_server.imaging.kinds import INSTANCE, PENDING
from fhir_server.imaging.store_result import Sender
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordPut, RecordStore

LOG = logging.getLogger(__name__)


def instance_record(
    prepared: Prepared, part10: bytes, sender: Sender, received: str
) -> dict[str, Any]:
    """The index record (``dicom-instance``) of a stored instance."""
    return {
        "study": prepared.study_uid,
        "series": prepared.series_uid,
        "sop_instance": prepared.sop_instance,
        "sop_class": prepared.sop_class,
        "ts": prepared.transfer_syntax,
        "blob": prepared.sop_instance,
        "size": len(part10),
        "received": received,
        "organization": sender.organization,
        "ae_title": sender.ae_title,
        "channel": sender.channel,
        "attributes": prepared.attributes,
        "verdict": prepared.verdict.to_json(),
    }


def instance_puts(
    prepared: Prepared,
    part10: bytes,
    sender: Sender,
    received: str,
    *,
    replace: bool = False,
    marked: bool = True,
) -> list[RecordPut]:
    """The put of the instance's record (unless it has one; ``replace``: whether or not), after
    that of its study's pending marker if ``marked``."""
    study = prepared.study_uid
    record = RecordPut(
        INSTANCE, prepared.sop_instance, instance_record(prepared, part10, sender, received),
        index="study", if_absent=not replace,
    )  # fmt: skip
    if not marked:
        return [record]
    return [RecordPut(PENDING, study, {"study": study, "since": received}), record]


def note_of(sender: Sender, received: str) -> dict[str, Any]:
    """What, with the bytes, rebuilds the record."""
    return {
        "ae_title": sender.ae_title,
        "organization": sender.organization,
        "channel": sender.channel,
        "received": received,
    }


async def index_restored(
    blobs: BlobStore, records: RecordStore, policy: GatePolicy, clock: Clock
) -> None:
    """Write again the record of each instance the blob store restored that has none (one that
    fails is tried again at the next start), then let the store forget them."""
    done: list[str] = []
    for key, note in await blobs.restored():
        try:
            if await records.get(INSTANCE, key) is None:
                await _index_again(blobs, records, policy, clock, key, note)
        except Exception:
            LOG.exception("instance %s, stored before a power failure, not indexed again", key)
            continue
        done.append(key)
    await blobs.forget_restored(done)


async def _index_again(
    blobs: BlobStore,
    records: RecordStore,
    policy: GatePolicy,
    clock: Clock,
    key: str,
    note: dict[str, Any],
) -> None:
    stream = await blobs.stream(key)
    part10 = await stream.read_all()
    try:
        prepared = await asyncio.to_thread(prepare, part10, policy)
    except Refused as refused:  # the gate's policy changed since it was accepted
        LOG.warning("instance %s, stored before a power failure, now refused by the gate "
                    "(%s): not indexed again", key, refused.detail)  # fmt: skip
        return
    sender = Sender(note.get("ae_title"), note.get("organization"), str(note.get("channel")))
    received = str(note.get("received") or to_instant(clock()))
    await records.put_many(instance_puts(prepared, part10, sender, received))
    LOG.warning("instance %s of study %s indexed again (its record was lost with the "
                "database's last commits in a power failure)", key, prepared.study_uid)  # fmt: skip
