"""What a DICOMweb answer is made of (:mod:`.dicomweb`): the DICOM data model the client
accepts, JSON or XML, the answers in it, multipart bodies and Warning headers.

PS3.18 makes both models of a data set required of an origin server: ``application/dicom+json``
(the default) and ``multipart/related; type="application/dicom+xml"`` (one PS3.19 Native DICOM
Model document per part) for QIDO-RS results and WADO-RS metadata (Table 10.4.4-1), and
``application/dicom+xml`` (one document) for the STOW-RS response. A bare
``application/dicom+xml`` in the Accept of a query or metadata request is read as the multipart
form (the only one those resources have).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import orjson
from starlette.responses import Response

from fhir_server.core.errors import NotAcceptable
from fhir_server.imaging import native_xml
from fhir_server.imaging.stow import MediaType

DICOM_JSON: Final = "application/dicom+json"
DICOM_XML: Final = "application/dicom+xml"
Model = Literal["json", "xml"]
_JSON_RANGES: Final = frozenset({DICOM_JSON, "application/json", "application/*", "*/*"})


def dicom_model(accept: str | None) -> Model:
    """The model to answer in: the first of the Accept header's ranges, by quality, that one of
    them satisfies; JSON without an Accept. NotAcceptable when no range allows either."""
    for media in MediaType.ranges(accept):
        if media.type in _JSON_RANGES:
            return "json"
        inner = media.params.get("type", "").lower()
        if media.type == DICOM_XML or (
            media.type in ("multipart/related", "multipart/*") and inner == DICOM_XML
        ):
            return "xml"
    raise NotAcceptable(
        f"Accept {accept!r}: this server answers {DICOM_JSON} or "
        f'multipart/related; type="{DICOM_XML}"'
    )


def data_sets(items: Sequence[Mapping[str, Any]], model: Model, status: int = 200) -> Response:
    """Several data sets (query results, metadata): a JSON array, or one XML document each."""
    if model == "json":
        return json_response(items, status)
    return multipart_response(native_xml.documents(items), DICOM_XML, DICOM_XML, status)


def data_set(item: Mapping[str, Any], model: Model, status: int = 200) -> Response:
    """One data set (the STOW-RS response): a JSON object or one XML document."""
    if model == "json":
        return json_response(item, status)
    return Response(native_xml.document(item), status, media_type=DICOM_XML)


def json_response(value: Any, status: int) -> Response:
    return Response(orjson.dumps(value), status, media_type=DICOM_JSON)


def multipart(inner: str, boundary: str) -> str:
    return f'multipart/related; type="{inner}"; boundary={boundary}'


def multipart_response(
    parts: Sequence[bytes], inner: str, part_type: str, status: int = 200
) -> Response:
    boundary = uuid.uuid4().hex
    body = bytearray()
    for part in parts:
        body += f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
        body += part + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return Response(bytes(body), status, media_type=multipart(inner, boundary))


def warning(text: str) -> str:
    """An HTTP Warning header value (RFC 7234 §5.5): code 299, the text quoted, ASCII."""
    quoted = text.replace("\\", "/").replace('"', "'").encode("ascii", "replace").decode()
    return f'299 - "{quoted}"'
