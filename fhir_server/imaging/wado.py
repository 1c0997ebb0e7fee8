"""WADO-RS (PS3.18 10.4): the stored instances of a study, series or instance, their metadata
and their bulk data.

- Instances are served exactly as received (the Part-10 blob, byte-identical) unless the Accept
  asks for another transfer syntax: between native little-endian syntaxes they are transcoded
  (transcode.py); any other is 406 (NotAcceptable). Without a ``transfer-syntax`` parameter
  the stored one is served (as Orthanc does).
- Metadata is read from the stored instance (every attribute, sequences included), as DICOM JSON
  with a BulkDataURI (``…/instances/{i}/bulk/{tag}``) for top-level binary values over 1 KiB
  (pixel data included); binary values inside sequences are inline.
- Frames: native pixel data is sliced per frame (``application/octet-stream``); encapsulated
  pixel data gives each frame's fragments as stored (the compressed bit stream, with the image
  media type of its transfer syntax).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.encaps import generate_frames

from fhir_server.core.errors import InvalidRequest, NotAcceptable, ResourceNotFound
from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.kinds import INSTANCE, blob_key, every
from fhir_server.imaging.rendered import Rendering, render
from fhir_server.imaging.stow import DICOM, MediaType
from fhir_server.imaging.transcode import EXPLICIT_LE, IMPLICIT_LE, SOURCES, possible, transcode
from fhir_server.storage.blobs import BlobStore
from fhir_server.storage.records import RecordStore

Json = dict[str, Any]
OCTET_STREAM = "application/octet-stream"
BULK_THRESHOLD = 1024
#: PS3.18 Table 8.7.3-4/-5: the media type of a compressed frame by its transfer syntax.
IMAGE_TYPES = {
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.201": "image/jphc", "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc", "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.100": "video/mpeg", "1.2.840.10008.1.2.4.102": "video/mp4",
    "1.2.840.10008.1.2.4.103": "video/mp4",
}  # fmt: skip
NATIVE = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                    "1.2.840.10008.1.2.1.99"})  # fmt: skip


def accepted(accept: str | None, wanted: str, stored: Iterable[str]) -> str:
    """The media type to answer a retrieval of ``wanted`` parts (application/dicom, or a frame
    type) whose stored transfer syntaxes are ``stored``: ``multipart/related`` (or the bare
    ``wanted`` type when the client asks for it alone). NotAcceptable naming what was asked
    when no acceptable range can be served as stored."""
    return negotiate(accept, wanted, stored, convert=False)[0]


def negotiate(
    accept: str | None, wanted: str, stored: Iterable[str], *, convert: bool = True
) -> tuple[str, str | None]:
    """As :func:`accepted`, with the transfer syntax to serve the parts in: None for the stored
    one, else one a range asks for that every stored syntax can be transcoded to (``convert``,
    for application/dicom parts only: transcode.py)."""
    syntaxes = set(stored)
    for media in MediaType.ranges(accept):
        inner = media.params.get("type", "").lower()
        syntax = media.params.get("transfer-syntax", "*")
        target = None
        if syntax != "*" and syntaxes != {syntax}:
            if not (convert and wanted == DICOM and all(possible(s, syntax) for s in syntaxes)):
                continue
            target = syntax
        if media.type in ("*/*", "multipart/*") or (
            media.type == "multipart/related" and inner in ("", wanted, "*/*")
        ):
            return "multipart/related", target
        if media.type == wanted and len(syntaxes) <= 1:
            return wanted, target
        if wanted != DICOM and media.type == "multipart/related" and inner == OCTET_STREAM:
            return "multipart/related", None  # a frame in its stored syntax, as octet-stream asks
    stored_text = ", ".join(sorted(syntaxes)) or "none"
    can = (
        f" or in {IMPLICIT_LE} or {EXPLICIT_LE}"
        if convert and wanted == DICOM and syntaxes <= SOURCES
        else ""
    )
    raise NotAcceptable(
        f"Accept {accept!r} cannot be served: the data is {wanted} in transfer syntax "
        f"{stored_text}, which this server serves as stored{can} (ask for multipart/related; "
        f'type="{wanted}"; transfer-syntax=*)'
    )


@dataclass(frozen=True, slots=True)
class Frames:
    media_type: str  # of each part
    transfer_syntax: str
    frames: list[bytes]


class Retrieval:
    """Reads the index records and blobs for WADO-RS."""

    def __init__(self, records: RecordStore, blobs: BlobStore) -> None:
        self.records = records
        self.blobs = blobs

    async def instances(
        self, study: str, series: str | None = None, instance: str | None = None
    ) -> list[Json]:
        """The instance records of a study (of one series, or one instance), in SOP Instance UID
        order; ResourceNotFound saying which UID is unknown."""
        if instance is not None:
            record = await self.records.get(INSTANCE, instance)
            if (
                record is None
                or record.get("study") != study
                or (series is not None and record.get("series") != series)
            ):
                raise ResourceNotFound(
                    f"no instance {instance} in series {series} of study {study}"
                )
            return [record]
        found = [
            r
            async for r in every(self.records, INSTANCE, study)
            if series is None or r.get("series") == series
        ]
        if not found:
            what = f"series {series} of study {study}" if series else f"study {study}"
            raise ResourceNotFound(f"no {what} is stored here")
        return found

    async def part10(self, record: Mapping[str, Any], syntax: str | None = None) -> bytes:
        """The stored Part-10 file, or it in transfer ``syntax`` (transcoded in a thread)."""
        async with await self.blobs.stream(blob_key(record)) as stream:
            body = await stream.read_all()
        if syntax is None or syntax == record.get("ts"):
            return body
        return await asyncio.to_thread(transcode, body, syntax)

    async def metadata(self, records: Iterable[Mapping[str, Any]], base: str) -> list[Json]:
        out = []
        for record in records:
            data = await self.part10(record)
            url = _instance_url(base, record)
            out.append(await asyncio.to_thread(metadata_json, data, url))
        return out

    async def rendered(
        self, record: Mapping[str, Any], numbers: list[int], how: Rendering, thumbnail: bool
    ) -> list[bytes]:
        """Frames ``numbers`` of an instance rendered (rendered.py), in a worker thread."""
        data = await self.part10(record)
        return [
            await asyncio.to_thread(render, data, number, how, thumbnail=thumbnail)
            for number in numbers
        ]

    async def frames(self, record: Mapping[str, Any], numbers: list[int]) -> Frames:
        data = await self.part10(record)
        return await asyncio.to_thread(frames_of, data, numbers)

    async def bulk(self, record: Mapping[str, Any], tag: str) -> bytes:
        data = await self.part10(record)
        return await asyncio.to_thread(bulk_value, data, tag)


def _instance_url(base: str, record: Mapping[str, Any]) -> str:
    return (
        f"{base}/studies/{record['study']}/series/{record['series']}"
        f"/instances/{record['sop_instance']}"
    )


def metadata_json(part10: bytes, instance_url: str) -> Json:
    """The DICOM JSON of a stored instance (file meta excluded); top-level binary values over
    1 KiB as BulkDataURI ``<instance_url>/bulk/<tag>``."""
    ds = pydicom.dcmread(BytesIO(part10))

    def bulk_uri(element: DataElement) -> str:
        return f"{instance_url}/bulk/{tag_key(int(element.tag))}"

    out: Json = {}
    for element in ds:
        tag = int(element.tag)
        try:
            if element.VR == "SQ":
                out[tag_key(tag)] = element.to_json_dict(None, 1 << 62)
            else:
                out[tag_key(tag)] = element.to_json_dict(bulk_uri, BULK_THRESHOLD)
        except (ValueError, TypeError, OverflowError):  # a value its VR cannot hold ('1A' in IS)
            out[tag_key(tag)] = {"vr": element.VR, "BulkDataURI": bulk_uri(element)}
    return out


def parse_frame_numbers(text: str) -> list[int]:
    """``1,3,4`` → [1, 3, 4]; InvalidRequest for anything but positive whole numbers."""
    numbers = []
    for part in text.split(","):
        if not part.strip().isdigit() or int(part) < 1:
            raise InvalidRequest(f"frame list {text!r}: frame numbers are whole numbers from 1")
        numbers.append(int(part))
    return numbers


def frames_of(part10: bytes, numbers: list[int]) -> Frames:
    """The frames ``numbers`` (1-based) of an instance's pixel data."""
    try:
        return _frames(pydicom.dcmread(BytesIO(part10)), numbers)
    except (ValueError, TypeError, AttributeError) as exc:
        raise ResourceNotFound(f"the frames of the stored instance cannot be read: {exc}") from None


def _frames(ds: pydicom.Dataset, numbers: list[int]) -> Frames:
    syntax = str(ds.file_meta.get("TransferSyntaxUID", ""))
    if "PixelData" not in ds:
        raise ResourceNotFound("the instance has no Pixel Data (7FE0,0010): it has no frames")
    count = int(ds.get("NumberOfFrames", 1) or 1)
    beyond = [n for n in numbers if n > count]
    if beyond:
        raise ResourceNotFound(f"frame {beyond[0]} does not exist: the instance has {count}")
    pixels: bytes = ds.PixelData
    if syntax in NATIVE or not syntax:
        size = _frame_size(ds)
        frames = [pixels[(n - 1) * size : n * size] for n in numbers]
        return Frames(OCTET_STREAM, syntax, frames)
    every = list(generate_frames(pixels, number_of_frames=count))
    return Frames(IMAGE_TYPES.get(syntax, OCTET_STREAM), syntax, [every[n - 1] for n in numbers])


def _frame_size(ds: pydicom.Dataset) -> int:
    bits = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1) or 1)
    bits *= int(ds.BitsAllocated)
    return (bits + 7) // 8


def bulk_value(part10: bytes, tag: str) -> bytes:
    """The value of a top-level binary element (``7FE00010`` …) as stored."""
    ds = pydicom.dcmread(BytesIO(part10))
    try:
        raw = ds.get_item(int(tag, 16))  # the value as stored, not converted
    except ValueError:
        raw = None
    value = raw.value if raw is not None else None
    if not isinstance(value, bytes):
        raise ResourceNotFound(f"the instance has no bulk data element {tag}")
    return value


def part_content_type(wanted: str, syntax: str) -> str:
    """The Content-Type of one part: ``application/dicom; transfer-syntax=<uid>`` …"""
    return f"{wanted}; transfer-syntax={syntax}" if syntax else wanted


__all__ = ["DICOM", "Frames", "Retrieval", "accepted", "parse_frame_numbers"]
