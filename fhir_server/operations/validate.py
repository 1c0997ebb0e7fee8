"""``$validate`` (http://hl7.org/fhir/R4/resource-operation-validate.html), type and instance level.

The resource (the ``resource`` parameter, or a POSTed plain resource; at instance level the stored
one when none is sent) is validated completely: structure, the core definition of its type with
its bindings and invariants, the profiles it claims, the profiles the server's rule set requires,
and the ``profile`` asked for. ``mode``: ``create`` (the default), ``update`` (the resource's id
must be the instance's) or ``delete`` (nothing to validate in a body: the answer says whether the
instance exists). The answer is always 200 with an OperationOutcome, its issues the findings (an
``information`` issue when there are none); a malformed request is 400.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest, Issue
from fhir_server.operations.inputs import bad
from fhir_server.operations.table import INSTANCE, TYPE, Invocation, OperationDef
from fhir_server.validation.profiles import ProfileValidator

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"
MODES = ("create", "update", "delete", "profile")


def validate_operation(validator: ProfileValidator) -> OperationDef:
    async def handler(call: Invocation) -> dict[str, Any]:
        return await _validate(validator, call)

    return OperationDef(
        "validate", DEFINITION, frozenset((TYPE, INSTANCE)), tuple(sorted(r4.resource_types())),
        handler, frozenset(("resource", "mode", "profile")), idempotent=False, letter="r",
        resource_input="resource",
    )  # fmt: skip


async def _validate(validator: ProfileValidator, call: Invocation) -> dict[str, Any]:
    mode = call.inputs.string("mode") or "create"
    if mode not in MODES:
        raise bad("mode", f"must be one of {', '.join(MODES)}")
    profile = call.inputs.string("profile")
    resource = call.inputs.resource("resource")
    if mode == "delete":
        if call.id is None:
            raise bad("mode", "delete is validated at instance level ([type]/[id]/$validate)")
        detail = f"{call.resource_type}/{call.id} exists; nothing prevents its deletion here"
        return _outcome([Issue("information", "informational", detail)])
    if resource is None:
        resource = call.resource
    if resource is None:
        raise InvalidRequest("$validate: the 'resource' parameter is required")
    kind = resource.get("resourceType")
    if call.resource_type is not None and kind != call.resource_type:
        raise bad("resource", f"is a {kind}, not a {call.resource_type}")
    if mode == "update" and call.id is not None and resource.get("id") != call.id:
        raise bad("resource", f"mode update: its id must be {call.id}")
    profiles = [profile] if profile else []
    if kind == "Bundle":  # possibly large: off the event loop
        issues = await asyncio.to_thread(validator.validate, resource, profiles, full=True)
    else:
        issues = validator.validate(resource, profiles, full=True)
    if not issues:
        issues = [Issue("information", "informational", "No issues found")]
    return _outcome(issues)


def _outcome(issues: list[Issue]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}
