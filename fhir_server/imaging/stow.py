"""STOW-RS (PS3.18 10.5): a multipart/related request of Part-10 instances → the ingest → the
Store Instances Response.

Pure over bytes: :func:`parts` splits the request body (RFC 2046 multipart, the boundary from the
Content-Type), :func:`store` gives each part to
:meth:`~fhir_server.imaging.service.ImagingService.store_part10` (the same gate and ingest path
as C-STORE; a few parts at a time, results kept in request order), flushes the studies touched
so QIDO-RS sees them at once, and builds the response (PS3.18 Table 10.5.3-3): Retrieve URL
(0008,1190) of the study, Referenced SOP Sequence (0008,1199) of what was stored, Failed SOP
Sequence (0008,1198) with a Failure Reason (0008,1197) and the Error Comment (0000,0902) of what
was not. HTTP status per Table 10.5.3-1: 200 all stored,
202 some failed (or a warning), 409 none stored.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from fhir_server.core.errors import InvalidRequest, UnsupportedMediaType
from fhir_server.imaging.attributes import tag_key
from fhir_server.imaging.instances import CANNOT_UNDERSTAND, DATA_SET_DOES_NOT_MATCH
from fhir_server.imaging.service import ImagingService
from fhir_server.imaging.store_result import Sender, StoreResult

Json = dict[str, Any]
DICOM = "application/dicom"
#: The tags of the Store Instances Response.
RETRIEVE_URL = tag_key(0x00081190)
REFERENCED_SOP_SEQUENCE = tag_key(0x00081199)
FAILED_SOP_SEQUENCE = tag_key(0x00081198)
REFERENCED_SOP_CLASS = tag_key(0x00081150)
REFERENCED_SOP_INSTANCE = tag_key(0x00081155)
FAILURE_REASON = tag_key(0x00081197)
WARNING_REASON = tag_key(0x00081196)
ERROR_COMMENT = tag_key(0x00000902)
#: Instances of one request stored at a time.
STORE_CONCURRENCY = 4
_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


class MalformedMultipart(InvalidRequest):
    """The body is not the multipart/related it says it is (400); the message says where."""


class UnsupportedMedia(UnsupportedMediaType):
    """Not multipart/related; type="application/dicom" (415)."""


@dataclass(frozen=True, slots=True)
class MediaType:
    """A media type and its parameters (names lower-cased, quotes removed)."""

    type: str
    params: dict[str, str]

    @classmethod
    def parse(cls, text: str) -> MediaType:
        main = text.split(";", 1)[0].strip().lower()
        params = {}
        for name, value in _PARAM.findall(text):
            value = value.strip()
            if value.startswith('"') and value.endswith('"') and len(value) >= 2:
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            params[name.lower()] = value
        return cls(main, params)

    @classmethod
    def ranges(cls, accept: str | None, default: str = "*/*") -> list[MediaType]:
        """The media ranges of an Accept header (``default`` when there is none), the most
        preferred first (by their ``q``, in the order written among equals), those of ``q=0``
        (not acceptable, RFC 9110 12.5.1) left out."""
        parsed = [cls.parse(text) for text in (accept or default).split(",") if text.strip()]
        weighted = [(media.quality(), media) for media in parsed]
        return [media for q, media in sorted(weighted, key=lambda w: -w[0]) if q > 0]

    def quality(self) -> float:
        try:
            return float(self.params.get("q", "1"))
        except ValueError:
            return 1.0


def parts(content_type: str | None, body: bytes) -> list[bytes]:
    """The Part-10 bodies of a STOW-RS request. UnsupportedMedia when the request is not
    ``multipart/related; type="application/dicom"``, MalformedMultipart when its body does not
    follow RFC 2046 (the message says which part and what is wrong)."""
    if not content_type:
        raise UnsupportedMedia('Content-Type must be multipart/related; type="application/dicom"')
    media = MediaType.parse(content_type)
    root = media.params.get("type", "").lower()
    if media.type != "multipart/related" or root not in ("", DICOM):
        raise UnsupportedMedia(
            f"Content-Type {content_type!r} is not supported: this server stores "
            f'multipart/related; type="application/dicom" (PS3.18 10.5.1.1)'
        )
    boundary = media.params.get("boundary")
    if not boundary:
        raise MalformedMultipart("the multipart/related Content-Type has no boundary parameter")
    return [_part_body(i, raw) for i, raw in enumerate(_split(body, boundary.encode()), 1)]


def _split(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise MalformedMultipart(f"the boundary {boundary.decode(errors='replace')!r} is not found")
    out: list[bytes] = []
    position = start + len(delimiter)
    while True:
        if body.startswith(b"--", position):
            return out
        line_end = body.find(b"\r\n", position)
        if line_end < 0 or body[position:line_end].strip(b" \t"):
            raise MalformedMultipart(f"part {len(out) + 1}: a boundary line must end with CRLF")
        following = body.find(b"\r\n" + delimiter, line_end + 2)
        if following < 0:
            raise MalformedMultipart(
                f"part {len(out) + 1} is not closed: the body ends without the closing boundary "
                f"--{boundary.decode(errors='replace')}--"
            )
        out.append(body[line_end + 2 : following])
        position = following + 2 + len(delimiter)


def _part_body(number: int, raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    if raw.startswith(b"\r\n"):
        headers, content = b"", raw[2:]
    elif end < 0:
        raise MalformedMultipart(f"part {number}: no blank line after its headers")
    else:
        headers, content = raw[:end], raw[end + 4 :]
    for line in headers.split(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-type":
            part_type = MediaType.parse(value).type
            if part_type != DICOM:
                raise UnsupportedMedia(
                    f"part {number} is {part_type}: only application/dicom parts are stored"
                )
    return content


# --- storing -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StowResponse:
    status: int  # HTTP status
    body: Json  # the Store Instances Response (DICOM JSON)
    #: Error Comments of the failures and the RO-14 review flags of stored instances (HTTP
    #: ``Warning: 299`` headers; a review flag is no DICOM warning status: the instance is stored)
    comments: tuple[str, ...]


async def store(
    imaging: ImagingService,
    bodies: list[bytes],
    sender: Sender,
    *,
    study: str | None,
    base: str,
) -> StowResponse:
    """Store each Part-10 body (instances of another study than the URL's fail with 0xA900)
    and build the Store Instances Response (see the module docstring)."""
    results = await _store_all(imaging, bodies, sender, study)
    for touched in sorted({r.study_uid for r in results if r.ok and r.study_uid}):
        await imaging.flush(touched)
    return response(results, study=study, base=base)


async def _store_all(
    imaging: ImagingService, bodies: list[bytes], sender: Sender, study: str | None
) -> list[StoreResult]:
    """Each body's result, in request order; up to STORE_CONCURRENCY stored at a time, so the
    durable writes of one instance overlap the checks of the next (the ingest serialises the
    copies of one SOP Instance UID: the later one is a duplicate)."""
    gate = asyncio.Semaphore(STORE_CONCURRENCY)

    async def one(body: bytes) -> StoreResult:
        async with gate:
            return await _store_one(imaging, body, sender, study)

    results = await asyncio.gather(*(one(body) for body in bodies), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if not isinstance(r, BaseException)]


async def _store_one(
    imaging: ImagingService, body: bytes, sender: Sender, study: str | None
) -> StoreResult:
    if study is not None:
        uids = _uids(body)
        found = uids.get("study")
        if found is not None and found != study:
            return StoreResult(
                DATA_SET_DOES_NOT_MATCH, f"Study Instance UID is not {study}"[:64],
                uids.get("class"), uids.get("instance"), found, None,
            )  # fmt: skip
    return await imaging.store_part10(body, sender)


def _uids(body: bytes) -> dict[str, str | None]:
    """The study, SOP class and instance UIDs of a Part-10 body (empty when unreadable: the
    ingest says what is wrong with it)."""
    try:
        ds = pydicom.dcmread(
            BytesIO(body), stop_before_pixels=True,
            specific_tags=[0x0020000D, 0x00080016, 0x00080018],
        )  # fmt: skip
    except (InvalidDicomError, ValueError, EOFError, OSError, KeyError, TypeError):
        return {}
    return {
        "study": _text(ds.get("StudyInstanceUID")),
        "class": _text(ds.get("SOPClassUID")),
        "instance": _text(ds.get("SOPInstanceUID")),
    }


def _text(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None


def response(results: list[StoreResult], *, study: str | None, base: str) -> StowResponse:
    """The Store Instances Response for ``results`` (PS3.18 10.5.3)."""
    stored = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    body: Json = {}
    studies = {r.study_uid for r in stored if r.study_uid}
    if study is not None or len(studies) == 1:
        body[RETRIEVE_URL] = _ur(f"{base}/studies/{study or next(iter(studies))}")
    if failed:
        body[FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": [_failed(r) for r in failed]}
    if stored:
        body[REFERENCED_SOP_SEQUENCE] = {
            "vr": "SQ",
            "Value": [_referenced(r, base) for r in stored],
        }
    warned = any(r.status != 0 for r in stored)
    status = 409 if not stored else 202 if failed or warned else 200
    comments = [f"{r.sop_instance}: {r.comment}" for r in failed]
    comments += [f"{r.sop_instance}: stored, {r.review}" for r in stored if r.review]
    return StowResponse(status, body, tuple(comments))


def _ur(url: str) -> Json:
    return {"vr": "UR", "Value": [url]}


def _uid(value: str | None) -> Json:
    return {"vr": "UI", "Value": [value]} if value else {"vr": "UI"}


def _referenced(result: StoreResult, base: str) -> Json:
    item: Json = {
        REFERENCED_SOP_CLASS: _uid(result.sop_class),
        REFERENCED_SOP_INSTANCE: _uid(result.sop_instance),
        RETRIEVE_URL: _ur(
            f"{base}/studies/{result.study_uid}/series/{result.series_uid}"
            f"/instances/{result.sop_instance}"
        ),
    }
    if result.status != 0:
        item[WARNING_REASON] = {"vr": "US", "Value": [result.status]}
    return dict(sorted(item.items()))


def _failed(result: StoreResult) -> Json:
    item: Json = {
        ERROR_COMMENT: {"vr": "LO", "Value": [result.comment or "not stored"]},
        REFERENCED_SOP_CLASS: _uid(result.sop_class),
        REFERENCED_SOP_INSTANCE: _uid(result.sop_instance),
        FAILURE_REASON: {"vr": "US", "Value": [result.status or CANNOT_UNDERSTAND]},
    }
    return dict(sorted(item.items()))


def summary(response: Mapping[str, Any]) -> str:
    """How many were stored and failed, for logs."""
    stored = len(response.get(REFERENCED_SOP_SEQUENCE, {}).get("Value", []))
    failed = len(response.get(FAILED_SOP_SEQUENCE, {}).get("Value", []))
    return f"{stored} stored, {failed} failed"
