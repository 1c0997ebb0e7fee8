"""The operation framework (http://hl7.org/fhir/R4/operations.html): dispatch by name, level
and type, GET only for idempotent operations, a POSTed plain resource as the single resource
input, SMART scopes on the type, and a new row (as the lead's ``$validate`` will be) reaching
both the dispatcher and the CapabilityStatement."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fhir_server.bootstrap import Application
from fhir_server.conformance import Conformance
from fhir_server.core.context import RequestContext
from fhir_server.core.errors import Forbidden, InteractionNotSupported, InvalidRequest
from fhir_server.interactions.table import OperationCall
from fhir_server.operations import INSTANCE, TYPE, Invocation, OperationDef, OperationService
from fhir_server.operations.build import build_operations
from fhir_server.terminology import TerminologyService
from tests.conftest import running_application
from tests.unit.interactions.authorize_corpus import ctx

STATUS_VS = "http://hl7.org/fhir/ValueSet/observation-status"
SEEN: list[Invocation] = []


async def echo(call: Invocation) -> dict[str, Any]:
    SEEN.append(call)
    return {"resourceType": "OperationOutcome", "issue": []}


VALIDATE = OperationDef(
    "validate", "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    frozenset((TYPE, INSTANCE)), ("Patient", "Observation"), echo,
    frozenset(("resource", "mode", "profile")), resource_input="resource",
)  # fmt: skip
CHANGE = OperationDef(
    "change", "http://example.org/OperationDefinition/change", frozenset((TYPE,)),
    ("Patient",), echo, frozenset(), idempotent=False, letter="u",
)  # fmt: skip


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Application]:
    async with running_application(tmp_path / "data") as application:
        yield application


@pytest.fixture
def operations(app: Application) -> OperationService:
    terminology = TerminologyService(Conformance.core())
    return build_operations(app.service, terminology, app.service.clock, (VALIDATE, CHANGE))


def call(name: str, type: str | None, method: str = "GET", **kw: Any) -> OperationCall:
    return OperationCall(name, type, kw.pop("id", None), method, kw.pop("query", ()), **kw)


async def test_dispatch_by_level_and_type(operations: OperationService) -> None:
    query = [("url", STATUS_VS), ("count", "1")]
    found = await operations.invoke(RequestContext(), call("expand", "ValueSet", query=query))
    assert found["expansion"]["total"] == 8
    with pytest.raises(InvalidRequest, match=r"Unknown operation \$nope"):
        await operations.invoke(RequestContext(), call("nope", None))
    with pytest.raises(InvalidRequest, match="cannot be invoked at the system level"):
        await operations.invoke(RequestContext(), call("expand", None))
    with pytest.raises(InvalidRequest, match=r"on ValueSet \(instance level\)"):
        await operations.invoke(RequestContext(), call("lookup", "ValueSet", id="x"))


async def test_get_only_for_idempotent_operations(operations: OperationService) -> None:
    with pytest.raises(InteractionNotSupported, match="invoke it with POST"):
        await operations.invoke(RequestContext(), call("change", "Patient"))
    await operations.invoke(RequestContext(), call("change", "Patient", "POST"))


async def test_a_posted_resource_is_the_single_resource_input(
    operations: OperationService,
) -> None:
    SEEN.clear()
    patient = {"resourceType": "Patient", "gender": "male"}
    await operations.invoke(RequestContext(), call("validate", "Patient", "POST", body=patient))
    assert SEEN[-1].inputs.resource("resource") == patient
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": patient},
            {"name": "mode", "valueCode": "create"},
        ],
    }
    await operations.invoke(RequestContext(), call("validate", "Patient", "POST", body=wrapped))
    assert SEEN[-1].inputs.string("mode") == "create"
    with pytest.raises(InvalidRequest) as unknown:
        await operations.invoke(RequestContext(), call("validate", "Patient", query=[("x", "1")]))
    assert unknown.value.issues[0].expression == ("x",)


async def test_scopes_are_checked_on_the_type(operations: OperationService) -> None:
    query = [("url", STATUS_VS)]
    with pytest.raises(Forbidden, match=r"no scope to read ValueSet"):
        await operations.invoke(ctx("user/Patient.rs"), call("expand", "ValueSet", query=query))
    found = await operations.invoke(ctx("user/ValueSet.r"), call("expand", "ValueSet", query=query))
    assert found["resourceType"] == "ValueSet"
    with pytest.raises(Forbidden, match="no scope to update Patient"):
        await operations.invoke(ctx("user/Patient.rs"), call("change", "Patient", "POST"))


async def test_new_rows_are_listed_in_the_capability_statement(
    app: Application, operations: OperationService
) -> None:
    statement = await app.service.capabilities(RequestContext())
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"name": "validate", "definition": VALIDATE.definition} in by_type["Patient"][
        "operation"
    ]
    assert by_type["ValueSet"]["operation"]
