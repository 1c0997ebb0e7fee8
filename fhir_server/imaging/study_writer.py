"""Writing one study's ImagingStudy (for :class:`~fhir_server.imaging.service.ImagingService`).

The resource is built from every instance record of the study (:mod:`.study_map`) over the
stored ImagingStudy, whose elements the mapping does not manage (reasonCode, a radiologist's
note, interpreter…) are kept, and written through the one write pipeline: an update of the
stored one **only if it has not changed since it was read** (If-Match on the version read), else
it is read and rebuilt again, up to :data:`WRITE_ATTEMPTS` times, so an edit made meanwhile (a
user's PUT, another writer) is never overwritten with the copy read before it; a conditional
create when there is none. Then the index records of the study point at it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import PreconditionFailed, VersionConflict
from fhir_server.imaging import study_map
from fhir_server.imaging.kinds import INSTANCE, study_instances
from fhir_server.imaging.links import Links
from fhir_server.interactions.service import FhirService
from fhir_server.storage.records import RecordStore

LOG = logging.getLogger(__name__)
#: Studies with more instances have their ImagingStudy and index records built off the loop.
BUILD_ON_LOOP_INSTANCES = 200
#: Times an ImagingStudy changed by someone else while it was rebuilt is read and rebuilt again
#: before giving up (the study then stays pending and is written later).
WRITE_ATTEMPTS = 3
T = TypeVar("T")


class StudyWriter:
    """Writes studies' ImagingStudy resources through ``service`` (see the module docstring)."""

    def __init__(
        self, service: FhirService, records: RecordStore, base_url: str, zone: str
    ) -> None:
        self.service = service
        self.records = records
        self.base_url = base_url
        self.zone = zone
        self.links = Links(service, base_url)

    async def write(self, study: str) -> None:
        """Write the ImagingStudy of ``study`` from its instance records (nothing if none)."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                await self._write_once(study)
                return
            except (PreconditionFailed, VersionConflict):
                if attempt == WRITE_ATTEMPTS:
                    raise
                LOG.info("the ImagingStudy of study %s changed while it was rebuilt: again", study)

    async def _write_once(self, study: str) -> None:
        links = self.links
        query = study_map.study_identifier_query(study)
        # the stored ImagingStudy is looked up beside the instance records (reads started
        # together share one read transaction); an internal search, not audited either way
        system = RequestContext(channel="dicom", base_url=self.base_url)
        instances, found = await asyncio.gather(
            self._instances(study),
            links.search(system, "ImagingStudy", identifier=query.partition("=")[2]),
        )
        if not instances:
            return
        first = instances[0]
        organization = first.get("organization")
        ctx = RequestContext(channel="dicom", base_url=self.base_url, organization=organization)
        attributes = first.get("attributes", {})
        subject = await links.subject(ctx, attributes, first.get("ae_title"), organization)
        based_on = await links.based_on(ctx, attributes, subject)
        endpoint = await links.endpoint(ctx)
        managed = await off_loop_if_large(len(instances), functools.partial(
            study_map.imaging_study, study, instances, subject=subject, based_on=based_on,
            endpoint=endpoint, zone=self.zone,
        ))  # fmt: skip
        existing = found[0] if len(found) == 1 else None
        body = study_map.merge(existing, managed)
        if existing is not None:
            version = _version(existing)
            written = await self.service.update(
                ctx, "ImagingStudy", str(existing["id"]), body, if_match=version
            )
        else:
            body.pop("id", None)
            written = await self.service.update_conditional(ctx, "ImagingStudy", query, body)
        reference = f"ImagingStudy/{written.version.id}"
        puts = await off_loop_if_large(len(instances), functools.partial(
            study_map.index_puts, study, instances, reference, organization
        ))  # fmt: skip
        await self.records.put_many(puts)

    async def _instances(self, study: str) -> list[dict[str, Any]]:
        """The study's instance records as the mapping reads them: the fields it reads of each
        (a few hundred bytes of a 4 KB record), and the whole records of the first instances
        of the study and of each series (study_map.leading)."""
        instances = await study_instances(self.records, study, study_map.INSTANCE_FIELDS)
        chosen = study_map.leading(instances)
        whole = await asyncio.gather(
            *(self.records.get(INSTANCE, str(instances[p]["sop_instance"])) for p in chosen)
        )
        for position, record in zip(chosen, whole, strict=True):
            if record is None:  # deleted since: read them all
                return await study_instances(self.records, study)
            instances[position] = record
        return instances


async def off_loop_if_large(count: int, build: Callable[[], T]) -> T:
    """``build()``, in a worker thread when it walks more than :data:`BUILD_ON_LOOP_INSTANCES`
    instance records (a study of thousands takes tens of milliseconds the event loop would
    spend unable to answer a C-STORE or a FHIR request), else inline (a hop would cost more)."""
    if count > BUILD_ON_LOOP_INSTANCES:
        return await asyncio.to_thread(build)
    return build()


def _version(resource: dict[str, Any]) -> int | None:
    """The version the stored resource was read at (this server's versions are whole numbers;
    None, no precondition, for one it cannot read)."""
    text = str(resource.get("meta", {}).get("versionId", ""))
    return int(text) if text.isdigit() else None
