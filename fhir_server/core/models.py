"""The only door to fhir.resources: its R4B (4.3.0) pydantic models, used to validate, never to
serialise.

Architecture decision: R4 structure is checked with ``fhir.resources.R4B`` (fhir.resources 8.3),
the closest published model set to R4 4.0.1; the R4 types it lacks or reshaped are listed in
:mod:`fhir_server.validation.r4_gaps`. The server stores the JSON it received; models only report.

This module hides fhir.resources behind neutral values: :class:`ModelError` (pydantic's raw error)
and :class:`FieldSpec` (what a model accepts for one JSON property), so no other module imports
the library or depends on its internals.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir.resources import R4B
from fhir_core.types import FhirBase
from pydantic import ValidationError

R4B_FHIR_VERSION: str = R4B.__fhir_version__

# fhir_core's annotation markers -> FHIR primitive type code (http://hl7.org/fhir/R4/datatypes.html)
_PRIMITIVE_MARKERS = {
    "String": "string",
    "Code": "code",
    "Id": "id",
    "Uri": "uri",
    "Url": "url",
    "Canonical": "canonical",
    "Oid": "oid",
    "UuidVersion": "uuid",
    "Uuid": "uuid",
    "Markdown": "markdown",
    "Date": "date",
    "DateTime": "dateTime",
    "Instant": "instant",
    "Time": "time",
    "Decimal": "decimal",
    "Integer": "integer",
    "UnsignedInt": "unsignedInt",
    "PositiveInt": "positiveInt",
    "Base64Binary": "base64Binary",
    "Xhtml": "xhtml",
    "Integer64": "integer64",
}


@dataclass(frozen=True, slots=True)
class ModelError:
    """One pydantic error. ``msg`` and ``input`` may embed submitted values: never show them."""

    type: str
    loc: tuple[str | int, ...]
    msg: str
    input: object
    ctx: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What a model accepts under one JSON property name.

    ``type_code`` is a FHIR type code (``string``, ``dateTime``, ``CodeableConcept``,
    ``Resource``) or, for a backbone element, the model name; ``target`` names the model of
    complex content (None for primitives and resources).
    """

    name: str
    type_code: str
    target: str | None
    is_list: bool
    required: bool
    choice: str | None
    primitive_extension: bool

    @property
    def is_primitive(self) -> bool:
        return self.target is None and self.type_code != "Resource"


@cache
def _model(name: str) -> Any:
    try:
        return R4B.get_fhir_model_class(name)
    except ValueError:
        return None


def has_model(name: str) -> bool:
    """True if R4B has a model (resource, datatype or backbone element) of that name."""
    return _model(name) is not None


@cache
def model_class(resource_type: str) -> type | None:
    """The R4B class of a concrete resource type, None if R4B has no such resource."""
    cls = _model(resource_type)
    if cls is None or cls.__resource_type__ != resource_type or resource_type == "Resource":
        return None
    return cls if cls.has_resource_base() else None


def validate(model_name: str, data: Mapping[str, object]) -> list[ModelError]:
    """Validate ``data`` with the R4B model ``model_name``; [] when it conforms."""
    try:
        _model(model_name).model_validate(data)
    except ValidationError as exc:
        return [
            ModelError(e["type"], tuple(e["loc"]), e["msg"], e.get("input"), e.get("ctx", {}))
            for e in exc.errors(include_url=False)
        ]
    except (KeyError, TypeError):
        # fhir_core looks nested resource types up in a table and raises on unknown ones;
        # callers replace those before validating, so this is a last-resort guard.
        return [ModelError("unresolvable_content", (), "", None, {})]
    return []


@cache
def fields(model_name: str) -> Mapping[str, FieldSpec]:
    """The JSON properties the R4B model accepts, ``_name`` extensions and comments excluded."""
    cls = _model(model_name)
    required = {name for name, _ in cls.get_required_fields(None)}
    extension_aliases = {i.alias for a, i in cls.model_fields.items() if a.endswith("__ext")}
    specs: dict[str, FieldSpec] = {}
    for attr, info in cls.model_fields.items():
        if attr.endswith("__ext") or attr == "fhir_comments":
            continue
        is_list, type_code, target = _describe(info.annotation)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        choice = extra.get("one_of_many")
        name = info.alias or attr
        specs[name] = FieldSpec(
            name=name,
            type_code=type_code,
            target=target,
            is_list=is_list,
            required=info.is_required() or attr in required,
            choice=choice if isinstance(choice, str) else None,
            primitive_extension=f"_{name}" in extension_aliases,
        )
    return specs


def _describe(annotation: Any) -> tuple[bool, str, str | None]:
    """(is_list, FHIR type code, target model) of a field annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return _describe(next(a for a in args if a is not type(None)))
    if origin is list:
        return True, *_describe(args[0])[1:]
    if origin is typing.Annotated:
        for marker in annotation.__metadata__:
            code = _PRIMITIVE_MARKERS.get(type(marker).__name__)
            if code is not None:
                return False, code, None
    if annotation is bool:
        return False, "boolean", None
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        name = annotation.get_model_klass().__resource_type__
        return (False, "Resource", None) if name == "Resource" else (False, name, name)
    raise TypeError(f"unexpected R4B field annotation {annotation!r}")
