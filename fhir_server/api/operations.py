"""The REST door of FHIR operations (http://hl7.org/fhir/R4/operations.html#request):
``[base]/$op``, ``[base]/{type}/$op`` and ``[base]/{type}/{id}/$op``, by GET (query
parameters) or POST (a Parameters body, or the operation's single resource input). The
operations themselves live in fhir_server/operations; this only translates HTTP."""

from __future__ import annotations

from starlette.responses import Response

from fhir_server.api import negotiation
from fhir_server.api.routes import Call
from fhir_server.core import fhirjson
from fhir_server.core.errors import InvalidRequest
from fhir_server.interactions.table import OperationCall

#: The interaction code the door's wrapper (logs, audit) uses for every operation.
OPERATION = "operation"


async def operation(call: Call) -> Response:
    name = call.path("operation")
    operations = call.service.operations
    if operations is None:
        raise InvalidRequest(
            f"Unknown operation ${name}: this server offers no operations",
            expression=[f"${name}"],
        )
    body = None
    if call.request.method == "POST":
        raw = await call.body()
        if raw.strip():
            negotiation.check_resource_content_type(call.request.headers.get("content-type"))
            body = fhirjson.loads_object(raw, "body")
    params = call.request.path_params
    invoked = OperationCall(
        name, params.get("type"), params.get("id"), call.request.method, call.params, body
    )
    return call.negotiated.json(await operations.invoke(call.ctx, invoked))
