"""``ImagingStudy/$fetch-priors``: fetch a patient's prior studies from the remote PACS (RO-16,
RO-17; fhir_server/imaging/priors.py does the work, the DICOM door the C-FIND/C-MOVE/C-GET).

Parameters: ``patient`` (required: ``Patient/<id>`` as valueReference or valueString, or the
identifier as ``system|value``) and ``before`` (optional date: only studies up to that day). The
answer is a Parameters with one ``study`` part per prior found: ``uid``, ``date``,
``modalities``, ``outcome`` (retrieved, already-held, in-progress, failed), sub-operation
counts and, when the study is here now, its ``imagingStudy`` reference. Invoked by POST only (it
changes the server's content); the caller's scopes need create on ImagingStudy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fhir_server.core.context import RequestContext
from fhir_server.core.errors import InvalidRequest
from fhir_server.operations.inputs import bad, parameters
from fhir_server.operations.table import TYPE, Invocation, OperationDef

DEFINITION = "urn:fhir-server:OperationDefinition/ImagingStudy-fetch-priors"
Fetch = Callable[[RequestContext, str, str | None], Awaitable[list[dict[str, Any]]]]


def fetch_priors_operation(fetch: Fetch) -> OperationDef:
    async def handler(call: Invocation) -> dict[str, Any]:
        patient = _patient(call)
        before = call.inputs.string("before")
        if before is not None and not (len(before) >= 4 and before[:4].isdigit()):
            raise bad("before", "expected a date (YYYY-MM-DD)")
        studies = await fetch(call.ctx, patient, before)
        return parameters([("study", {"part": _parts(s)}) for s in studies])

    return OperationDef(
        "fetch-priors", DEFINITION, frozenset((TYPE,)), ("ImagingStudy",), handler,
        frozenset(("patient", "before")), idempotent=False, letter="c",
    )  # fmt: skip


def _patient(call: Invocation) -> str:
    try:
        text = call.inputs.string("patient")
    except InvalidRequest:  # not a primitive: a valueReference
        reference = call.inputs.complex("patient", "valueReference") or {}
        text = reference.get("reference")
    if not text:
        raise bad("patient", "is required (Patient/<id> or the identifier system|value)")
    return str(text)


def _parts(study: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"name": "uid", "valueString": study["study"]}]
    for name in ("date", "modalities", "outcome", "comment"):
        if study.get(name):
            parts.append({"name": name, "valueString": str(study[name])})
    for name in ("completed", "failed"):
        if name in study:
            parts.append({"name": name, "valueInteger": int(study[name])})
    if study.get("imagingStudy"):
        parts.append(
            {"name": "imagingStudy", "valueReference": {"reference": study["imagingStudy"]}}
        )
    return parts
