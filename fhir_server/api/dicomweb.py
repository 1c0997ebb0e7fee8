"""The DICOMweb door under ``/dicomweb`` (PS3.18): STOW-RS, QIDO-RS and WADO-RS.

Only HTTP translation lives here: the request becomes a call of the imaging services
(:mod:`fhir_server.imaging.stow`, :class:`~fhir_server.imaging.query.StudyQuery`,
:class:`~fhir_server.imaging.wado.Retrieval`) and their outcome an HTTP answer.

- STOW-RS ``POST /studies[/{study}]``: ``multipart/related; type="application/dicom"`` → the
  Store Instances Response (``application/dicom+json``): 200 all stored, 202 some failed,
  409 none stored, 400 malformed multipart, 413 too large, 415 another media type. Each failure
  also comes as an HTTP ``Warning: 299`` header with its Error Comment.
- QIDO-RS ``GET /studies``, ``/series``, ``/instances``, ``/studies/{s}/series``,
  ``/studies/{s}/instances``, ``/studies/{s}/series/{se}/instances``: match keys by keyword or
  tag (a UID list with commas), ``includefield`` (repeatable, comma lists, ``all``), ``limit``,
  ``offset``, ``emptyvaluematching``, ``multiplevaluematching`` (PS3.18 Table 8.3.4-1; the
  matching in :mod:`fhir_server.imaging.matching`), ``fuzzymatching`` (accepted, not offered:
  ``true`` gets the ``Warning: 299`` PS3.18 8.3.4.2 prescribes, "only literal matching has been
  performed"); 200 with a JSON array, empty when nothing matches (DICOM CP-2473 replaces 204 by
  200 for zero results); 400 for an unknown key or a control parameter's bad value.
- WADO-RS ``GET /studies/{s}[/series/{se}[/instances/{i}]]`` (multipart of the stored Part-10
  bytes, streamed), ``…/metadata``, ``…/instances/{i}/frames/{list}``, ``…/bulk/{tag}``,
  ``…/rendered`` and ``…/thumbnail`` (:mod:`fhir_server.imaging.rendered`).

Data sets are answered in DICOM JSON, or in the Native DICOM Model XML when the Accept asks for
it (:mod:`.dicomweb_media`). With authorization on, a SMART bearer token is required (401
without a valid one); scopes on ImagingStudy are checked by the services (403): read or search
for QIDO/WADO, create for STOW.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from fhir_server.api.dicomweb_media import (
    data_set,
    data_sets,
    dicom_model,
    multipart,
    multipart_response,
    warning,
)
from fhir_server.auth.tokens import bearer_token
from fhir_server.core.access import Access
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import (
    FhirError,
    InvalidRequest,
    PayloadTooLarge,
    Unauthenticated,
    http_status,
)
from fhir_server.imaging import stow
from fhir_server.imaging.kinds import blob_key
from fhir_server.imaging.query import Level, Matching, StudyQuery, require_read, require_store
from fhir_server.imaging.rendered import images, rendering, representative
from fhir_server.imaging.service import ImagingService
from fhir_server.imaging.store_result import Sender
from fhir_server.imaging.wado import (
    OCTET_STREAM,
    Retrieval,
    accepted,
    negotiate,
    parse_frame_numbers,
)

Authenticate = Callable[[str, str], Awaitable[Access]]
Endpoint = Callable[[Request], Awaitable[Response]]
PREFIX = "/dicomweb"
DICOM = "application/dicom"
NATIVE_LE = "1.2.840.10008.1.2.1"
FLAGS = ("fuzzymatching", "emptyvaluematching", "multiplevaluematching")
NO_FUZZY = "The fuzzymatching parameter is not supported. Only literal matching has been performed."
STUDY, SERIES, INSTANCE = "/studies/{study}", "/series/{series}", "/instances/{instance}"
RENDERABLE = (
    STUDY, STUDY + SERIES, STUDY + SERIES + INSTANCE, STUDY + SERIES + INSTANCE + "/frames/{frames}"
)  # fmt: skip


class DicomWebApi:
    """``authenticate``: the SMART token check (None with --auth off); ``base_url``: the FHIR
    base (None: from the request), the DICOMweb base is beside it."""

    def __init__(
        self,
        imaging: ImagingService,
        query: StudyQuery,
        retrieval: Retrieval,
        authenticate: Authenticate | None,
        *,
        base_url: str | None = None,
        max_body_bytes: int = 50 * 1024 * 1024,
    ) -> None:
        self.imaging = imaging
        self.query = query
        self.retrieval = retrieval
        self._authenticate = authenticate
        self._base_url = base_url
        self._max_body = max_body_bytes

    def routes(self) -> list[BaseRoute]:
        instance = STUDY + SERIES + INSTANCE
        get: list[tuple[str, Callable[[Request, RequestContext], Awaitable[Response]]]] = [
            ("/studies", self.qido("STUDY")),
            ("/series", self.qido("SERIES")),
            ("/instances", self.qido("IMAGE")),
            (STUDY + "/series", self.qido("SERIES")),
            (STUDY + "/instances", self.qido("IMAGE")),
            (STUDY + SERIES + "/instances", self.qido("IMAGE")),
            (STUDY, self.retrieve),
            (STUDY + SERIES, self.retrieve),
            (instance, self.retrieve),
            (STUDY + "/metadata", self.metadata),
            (STUDY + SERIES + "/metadata", self.metadata),
            (instance + "/metadata", self.metadata),
            (instance + "/frames/{frames}", self.frames),
            (instance + "/bulk/{tag}", self.bulk),
            *((path + "/rendered", self.rendered) for path in RENDERABLE),
            *((path + "/thumbnail", self.thumbnail) for path in RENDERABLE),
        ]
        posts = [("/studies", self.stow), (STUDY, self.stow)]
        return [
            *(Route(PREFIX + path, self._door(h), methods=["POST"]) for path, h in posts),
            *(Route(PREFIX + path, self._door(h), methods=["GET"]) for path, h in get),
        ]

    # --- the door: context, token, errors ------------------------------------------------------

    def _door(self, handler: Callable[[Request, RequestContext], Awaitable[Response]]) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            fhir_base = self._base_url or str(request.base_url).rstrip("/") + "/fhir"
            address = request.client.host if request.client else None
            ctx = RequestContext(channel="dicomweb", base_url=fhir_base, client_address=address)
            try:
                if self._authenticate is not None:
                    ctx = replace(ctx, access=await self._access(request, fhir_base))
                return await handler(request, ctx)
            except FhirError as error:
                return _error(http_status(error), error.diagnostics)

        return endpoint

    async def _access(self, request: Request, fhir_base: str) -> Access:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("DICOMweb needs a SMART access token: Authorization: Bearer")
        assert self._authenticate is not None
        return await self._authenticate(token, fhir_base)

    def _dicomweb_base(self, ctx: RequestContext) -> str:
        fhir = ctx.base_url.rstrip("/")
        return (fhir.removesuffix("/fhir") if fhir.endswith("/fhir") else fhir) + PREFIX

    # --- STOW-RS -------------------------------------------------------------------------------

    async def stow(self, request: Request, ctx: RequestContext) -> Response:
        require_store(ctx)
        bodies = stow.parts(request.headers.get("content-type"), await self._body(request))
        if not bodies:
            raise InvalidRequest("the multipart/related body has no part: nothing to store")
        sender = Sender(None, ctx.organization, "stow-rs")
        study = request.path_params.get("study")
        result = await stow.store(
            self.imaging, bodies, sender, study=study, base=self._dicomweb_base(ctx)
        )
        model = dicom_model(request.headers.get("accept"))
        response = data_set(result.body, model, result.status)
        for comment in result.comments[:20]:
            response.headers.append("Warning", warning(comment))
        return response

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise PayloadTooLarge(f"the body is larger than the limit of {self._max_body} bytes")
        chunks = bytearray()
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > self._max_body:
                raise PayloadTooLarge(
                    f"the body is larger than the limit of {self._max_body} bytes"
                )
        return bytes(chunks)

    # --- QIDO-RS -------------------------------------------------------------------------------

    def qido(self, level: Level) -> Callable[[Request, RequestContext], Awaitable[Response]]:
        async def search(request: Request, ctx: RequestContext) -> Response:
            model = dicom_model(request.headers.get("accept"))
            query = search_parameters(request.query_params.multi_items())
            how = Matching(comma_lists=True, empty_values=query.flags["emptyvaluematching"],
                           multiple_values=query.flags["multiplevaluematching"],
                           strict=True)  # fmt: skip
            found = await self.query.search(
                ctx, level, query.keys, study_uid=request.path_params.get("study"),
                series_uid=request.path_params.get("series"), includefields=query.include,
                limit=query.limit, offset=query.offset, base=self._dicomweb_base(ctx), how=how,
            )  # fmt: skip
            response = data_sets(found, model)
            if query.flags["fuzzymatching"]:
                response.headers.append("Warning", warning(NO_FUZZY))
            return response

        return search

    # --- WADO-RS -------------------------------------------------------------------------------

    async def _records(self, request: Request, ctx: RequestContext) -> list[dict[str, Any]]:
        require_read(ctx)
        params = request.path_params
        return await self.retrieval.instances(
            params["study"], params.get("series"), params.get("instance")
        )

    async def retrieve(self, request: Request, ctx: RequestContext) -> Response:
        records = await self._records(request, ctx)
        stored = (str(r["ts"]) for r in records)
        media, target = negotiate(request.headers.get("accept"), DICOM, stored)
        if media == DICOM:  # one instance, asked for alone
            [record] = records
            body = await self.retrieval.part10(record, target)
            return Response(body, 200, media_type=DICOM)
        boundary = uuid.uuid4().hex
        return StreamingResponse(
            self._stream(records, boundary, target), 200, media_type=multipart(DICOM, boundary)
        )

    async def _stream(
        self, records: list[dict[str, Any]], boundary: str, target: str | None
    ) -> AsyncIterator[bytes]:
        for record in records:
            if target is not None and target != record["ts"]:  # transcoded: whole, in memory
                body = await self.retrieval.part10(record, target)
                head = f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={target}\r\n"
                yield f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body + b"\r\n"
                continue
            head = f"--{boundary}\r\nContent-Type: {DICOM}; transfer-syntax={record['ts']}\r\n"
            yield f"{head}Content-Length: {record['size']}\r\n\r\n".encode()
            async with await self.retrieval.blobs.stream(blob_key(record)) as blob:
                async for chunk in blob:
                    yield chunk
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    async def metadata(self, request: Request, ctx: RequestContext) -> Response:
        model = dicom_model(request.headers.get("accept"))
        records = await self._records(request, ctx)
        return data_sets(await self.retrieval.metadata(records, self._dicomweb_base(ctx)), model)

    async def frames(self, request: Request, ctx: RequestContext) -> Response:
        numbers = parse_frame_numbers(request.path_params["frames"])
        [record] = await self._records(request, ctx)
        found = await self.retrieval.frames(record, numbers)
        syntax = NATIVE_LE if found.media_type == OCTET_STREAM else found.transfer_syntax
        accepted(request.headers.get("accept"), found.media_type, [syntax])
        part_type = f"{found.media_type}; transfer-syntax={syntax}"
        return multipart_response(found.frames, found.media_type, part_type)

    async def rendered(self, request: Request, ctx: RequestContext) -> Response:
        """Rendered resources: an instance's first frame, the frames listed, or each image of a
        series or study (multipart/related)."""
        how = rendering(dict(request.query_params), request.headers.get("accept"))
        records = await self._records(request, ctx)
        if "instance" not in request.path_params:
            parts = [
                (await self.retrieval.rendered(r, [1], how, False))[0] for r in images(records)
            ]
            return multipart_response(parts, how.media_type, how.media_type)
        numbers = parse_frame_numbers(request.path_params.get("frames", "1"))
        parts = await self.retrieval.rendered(records[0], numbers, how, False)
        if len(parts) == 1 and not how.multipart:
            return Response(parts[0], 200, media_type=how.media_type)
        return multipart_response(parts, how.media_type, how.media_type)

    async def thumbnail(self, request: Request, ctx: RequestContext) -> Response:
        """A thumbnail: of the instance's (first listed) frame, or of the middle image of the
        series (the first series, for a study)."""
        how = rendering(dict(request.query_params), request.headers.get("accept"))
        records = await self._records(request, ctx)
        record = records[0] if "instance" in request.path_params else representative(records)
        number = parse_frame_numbers(request.path_params.get("frames", "1"))[0]
        [image] = await self.retrieval.rendered(record, [number], how, True)
        if how.multipart:
            return multipart_response([image], how.media_type, how.media_type)
        return Response(image, 200, media_type=how.media_type)

    async def bulk(self, request: Request, ctx: RequestContext) -> Response:
        [record] = await self._records(request, ctx)
        value = await self.retrieval.bulk(record, request.path_params["tag"])
        accepted(request.headers.get("accept"), OCTET_STREAM, [NATIVE_LE])
        return multipart_response([value], OCTET_STREAM, OCTET_STREAM)


@dataclass
class QidoParameters:
    """A QIDO-RS request's query: match keys, include fields, paging and the three flags."""

    keys: dict[str, str] = field(default_factory=dict)
    include: list[str] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    flags: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(FLAGS, False))


def search_parameters(items: list[tuple[str, str]]) -> QidoParameters:
    """QIDO-RS query parameters (PS3.18 Table 8.3.4-1) read; InvalidRequest saying which
    parameter is wrong (unknown attributes are found by the query service)."""
    query = QidoParameters()
    for name, value in items:
        if name == "includefield":
            query.include.extend(v for v in value.split(",") if v.strip())
        elif name in ("limit", "offset"):
            if not value.strip().isdigit():
                raise InvalidRequest(f"{name} must be a whole number, not {value!r}")
            if name == "limit":
                query.limit = int(value)
            else:
                query.offset = int(value)
        elif name in FLAGS:
            if value.lower() not in ("true", "false"):
                raise InvalidRequest(f"{name} must be true or false, not {value!r}")
            query.flags[name] = value.lower() == "true"
        elif name in query.keys:
            raise InvalidRequest(
                f"{name} is given twice: a match key is given once (a list of UIDs is one value, "
                "comma-separated)"
            )
        else:
            query.keys[name] = value
    return query


def _error(status: int, message: str) -> Response:
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="fhir-server", error="invalid_token"'
    return Response(f"{message}\n", status, headers, media_type="text/plain")
