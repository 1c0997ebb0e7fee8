"""Content negotiation (http://hl7.org/fhir/R4/http.html#mime-type): ``_format`` wins over
``Accept``; JSON is served as ``application/fhir+json`` (or ``application/json`` if that is what
the client asked for); XML and RDF are refused with 406 until they are implemented."""

from __future__ import annotations

from fhir_server.core.errors import NotAcceptable, UnsupportedMediaType
from fhir_server.interactions.patching import patch_format

FHIR_JSON = "application/fhir+json"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

#: ``application/json+fhir`` is the DSTU2 name that older client libraries still send.
LEGACY_FHIR_JSON = "application/json+fhir"
_FORMAT_JSON = {
    "json": FHIR_JSON, FHIR_JSON: FHIR_JSON, LEGACY_FHIR_JSON: FHIR_JSON, JSON: JSON,
    "text/json": JSON,
}  # fmt: skip
_FORMAT_KNOWN_UNSUPPORTED = {
    "xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir",
    "ttl", "text/turtle", "application/fhir+turtle", "html", "text/html",
}  # fmt: skip
_FHIR_VERSIONS = {"4.0", "4.0.1"}


def _split(value: str) -> tuple[str, dict[str, str]]:
    media, *raw = (part.strip() for part in value.split(";"))
    params = {}
    for item in raw:
        key, _, val = item.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return media.lower(), params


def _check_fhir_version(params: dict[str, str], status_error: type[Exception]) -> None:
    version = params.get("fhirversion")
    if version is not None and version not in _FHIR_VERSIONS:
        raise status_error(
            f"This server speaks FHIR R4 (fhirVersion=4.0), not fhirVersion={version}"
        )


def response_media_type(format_param: str | None, accept: str | None) -> str:
    """The media type of the answer, or NotAcceptable."""
    if format_param is not None:
        media, params = _split(format_param.replace(" ", "+"))
        if media in _FORMAT_JSON:
            _check_fhir_version(params, NotAcceptable)
            return _FORMAT_JSON[media]
        what = "XML" if "xml" in media else "that format"
        raise NotAcceptable(f"_format: this server serves JSON only; {what} is not supported")
    if not accept:
        return FHIR_JSON
    ranked = []
    for order, item in enumerate(accept.split(",")):
        media, params = _split(item)
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality > 0:
            ranked.append((-quality, order, media, params))
    for _, _, media, params in sorted(ranked):
        if media in (
            FHIR_JSON,
            LEGACY_FHIR_JSON,
            JSON,
            "text/json",
            "*/*",
            "application/*",
            "json",
        ):
            _check_fhir_version(params, NotAcceptable)
            return JSON if media in (JSON, "text/json") else FHIR_JSON
    raise NotAcceptable(
        "Accept: this server serves application/fhir+json and application/json only "
        "(XML is not supported)"
    )


def check_resource_content_type(content_type: str | None) -> None:
    """A resource body must be FHIR JSON; an absent Content-Type is taken as JSON."""
    if not content_type:
        return
    media, params = _split(content_type)
    if media in (FHIR_JSON, LEGACY_FHIR_JSON, JSON, "text/json"):
        _check_fhir_version(params, UnsupportedMediaType)
        return
    what = "XML is" if "xml" in media else f"'{media}' is"
    raise UnsupportedMediaType(f"Content-Type: {what} not supported; send application/fhir+json")


def patch_content_type(content_type: str | None) -> str:
    """The patch format of a PATCH body (``interactions.patching.patch_format``: JSON Patch, or
    FHIRPath Patch as FHIR JSON), checked before the body is read; any other media type, or a
    fhirVersion other than R4, is 415."""
    media, params = _split(content_type or "")
    _check_fhir_version(params, UnsupportedMediaType)
    return patch_format(media)


def media_type_of(content_type: str | None) -> str:
    return _split(content_type or "")[0]
