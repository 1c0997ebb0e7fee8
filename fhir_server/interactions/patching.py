"""The two patch formats of FHIR's PATCH interaction (http://hl7.org/fhir/R4/http.html#patch).

A :class:`Patch` is parsed once and applied to the current version: JSON Patch (RFC 6902,
:mod:`~fhir_server.interactions.jsonpatch`) or FHIRPath Patch (a Parameters resource,
:mod:`~fhir_server.interactions.fhirpath_patch`). Over HTTP the Content-Type picks the format
(:func:`parse_http_patch`); in a transaction or batch Bundle the entry's resource does
(:func:`parse_bundle_patch`: a Parameters resource, or a Binary holding a JSON Patch).
Applying returns a patched copy; the caller still checks identity and validates the result.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Protocol

from fhir_server.core import fhirjson
from fhir_server.core.errors import FhirError, InvalidRequest, UnsupportedMediaType
from fhir_server.interactions import fhirpath_patch, jsonpatch

JSON_PATCH = "application/json-patch+json"
FHIRPATH_PATCH = "application/fhir+json"
#: Content types of a FHIRPath Patch body: FHIR JSON, plain JSON and the DSTU2 name.
FHIRPATH_PATCH_TYPES = (FHIRPATH_PATCH, "application/json", "application/json+fhir")


class Patch(Protocol):
    """A parsed patch document, ready to apply to any number of resources."""

    @property
    def format(self) -> str:
        """``application/json-patch+json`` or ``application/fhir+json``."""
        ...

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The patched copy of ``resource``; raises :class:`FhirError` subclasses."""
        ...


@dataclass(frozen=True, slots=True)
class JsonPatch:
    """A JSON Patch document (RFC 6902)."""

    operations: tuple[jsonpatch.Operation, ...]
    format: str = JSON_PATCH

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        return jsonpatch.apply_patch(resource, self.operations)


@dataclass(frozen=True, slots=True)
class FhirPathPatch:
    """A FHIRPath Patch (a Parameters resource of ``operation`` parameters)."""

    operations: tuple[fhirpath_patch.Operation, ...]
    format: str = FHIRPATH_PATCH

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        return fhirpath_patch.apply_fhirpath_patch(resource, self.operations)


def parse_json_patch(document: object) -> JsonPatch:
    return JsonPatch(tuple(jsonpatch.parse_patch(document)))


def parse_fhirpath_patch(document: object) -> FhirPathPatch:
    return FhirPathPatch(fhirpath_patch.parse_fhirpath_patch(document))


def patch_format(content_type: str | None) -> str:
    """The patch format a PATCH request's Content-Type names: :data:`JSON_PATCH` or
    :data:`FHIRPATH_PATCH`; any other type (or none) is 415, saying which are accepted."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == JSON_PATCH:
        return JSON_PATCH
    if media in FHIRPATH_PATCH_TYPES:
        return FHIRPATH_PATCH
    raise UnsupportedMediaType(
        f"PATCH: send a JSON Patch as {JSON_PATCH} or a FHIRPath Patch (a Parameters resource) "
        f"as {' or '.join(FHIRPATH_PATCH_TYPES)}"
    )


def parse_http_patch(content_type: str | None, document: object) -> Patch:
    """The patch in a PATCH request's body (``document``: the parsed JSON, None if empty),
    in the format its Content-Type names (:func:`patch_format`)."""
    if patch_format(content_type) == JSON_PATCH:
        return parse_json_patch(document)
    return parse_fhirpath_patch(document)


def parse_bundle_patch(resource: object) -> Patch:
    """The patch of a Bundle entry whose request method is PATCH: a Parameters resource
    (FHIRPath Patch) or a Binary of contentType application/json-patch+json whose base64
    ``data`` holds the JSON Patch document."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    if kind == "Parameters":
        return parse_fhirpath_patch(resource)
    if not isinstance(resource, dict) or kind != "Binary":
        raise InvalidRequest(
            "A PATCH entry's resource must be a Parameters resource (FHIRPath Patch) or a "
            f"Binary holding a JSON Patch ({JSON_PATCH})",
            expression=["resource"],
        )
    content_type = resource.get("contentType")
    media = content_type.split(";", 1)[0].strip().lower() if isinstance(content_type, str) else ""
    if media != JSON_PATCH:
        raise InvalidRequest(
            f"A Binary patch must have contentType {JSON_PATCH}", expression=["resource"]
        )
    data = resource.get("data")
    try:
        if not isinstance(data, str):
            raise ValueError
        raw = base64.b64decode("".join(data.split()), validate=True)
        document = fhirjson.loads(raw)
    except (ValueError, binascii.Error, FhirError):  # binascii.Error: bad base64
        raise InvalidRequest(
            "The Binary's data must be a JSON Patch document in base64", expression=["resource"]
        ) from None
    return parse_json_patch(document)
