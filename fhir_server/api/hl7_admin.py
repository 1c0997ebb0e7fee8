"""The HL7 v2 message log's admin API (JSON), under ``/admin/hl7/messages``.

- ``GET /admin/hl7/messages``: search, oldest first; parameters ``state``, ``direction``
  (in/out), ``sender`` (MSH-3, ``MSH-3^MSH-4`` or ``Organization/<id>``), ``type``
  (``ORM^O01``), ``control_id`` (MSH-10), ``since`` (ISO date or instant, on ``received``),
  ``_count`` (default 100, at most 1000), ``after`` (paging: a full page carries ``next``, the
  id to pass as ``after`` for the following page). Each entry without ``raw`` and ``ack``.
- ``GET /admin/hl7/messages/{id}``: one message, with its raw text, ACK and error.
- ``POST /admin/hl7/messages/{id}/$replay``: an inbound message goes back to "received" (the
  worker maps it again, e.g. after a mapping fix), an outbound one back to "queued".

With authorization on, a bearer token with a system-level Admin scope is required:
``system/Admin.s`` to search, ``system/Admin.r`` to read one, ``system/Admin.u`` to replay
(401 without a valid token, 403 without the scope). With ``--auth off`` the API is open (as the
FHIR API is: loopback development only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from fhir_server.auth.tokens import bearer_token
from fhir_server.core.access import ADMIN_TYPE, Access
from fhir_server.core.errors import Unauthenticated
from fhir_server.messaging.log import STATES, MessageLog

Authenticate = Callable[[str, str], Awaitable[Access]]
PREFIX = "/admin/hl7/messages"
MAX_COUNT = 1000
_NO_STORE = {"Cache-Control": "no-store"}
_SEARCH = ("state", "direction", "sender", "type", "control_id", "since", "after")


def _problem(status: int, error: str, description: str) -> JSONResponse:
    headers = dict(_NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = f'Bearer realm="fhir-server", error="{error}"'
    return JSONResponse({"error": error, "error_description": description}, status, headers)


class Hl7AdminApi:
    """``authenticate``: the SMART token check (None with --auth off); ``on_replay``: called
    after a replay (wakes the inbound worker)."""

    def __init__(
        self,
        messages: MessageLog,
        authenticate: Authenticate | None,
        *,
        on_replay: Callable[[], None] | None = None,
    ) -> None:
        self._messages = messages
        self._authenticate = authenticate
        self._on_replay = on_replay

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PREFIX, self.search, methods=["GET"]),
            Route(PREFIX + "/{id}", self.read, methods=["GET"]),
            Route(PREFIX + "/{id}/$replay", self.replay, methods=["POST"]),
        ]

    async def _denied(self, request: Request, letter: str) -> Response | None:
        """None when the caller may; else the 401/403 answer."""
        if self._authenticate is None:
            return None
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return _problem(401, "invalid_token", "A bearer access token is required")
        try:
            access = await self._authenticate(token, str(request.base_url).rstrip("/") + "/fhir")
        except Unauthenticated as exc:
            return _problem(401, "invalid_token", exc.diagnostics)
        if not any(s.level == "system" for s in access.granting(letter, ADMIN_TYPE)):
            needed = f"system/{ADMIN_TYPE}.{letter}"
            return _problem(403, "insufficient_scope", f"This needs the scope {needed}")
        return None

    async def search(self, request: Request) -> Response:
        if (denied := await self._denied(request, "s")) is not None:
            return denied
        query = request.query_params
        unknown = sorted(set(query) - {*_SEARCH, "_count"})
        if unknown:
            known = ", ".join((*_SEARCH, "_count"))
            return _problem(400, "invalid_request", f"unknown parameter {unknown[0]!r} ({known})")
        state = query.get("state")
        if state is not None and state not in STATES:
            return _problem(400, "invalid_request", f"state must be one of {', '.join(STATES)}")
        try:
            count = int(query.get("_count", "100"))
        except ValueError:
            return _problem(400, "invalid_request", "_count must be a whole number")
        if not 1 <= count <= MAX_COUNT:
            return _problem(400, "invalid_request", f"_count must be 1 to {MAX_COUNT}")
        try:
            found = await self._messages.search(
                direction=query.get("direction"), state=state, sender=query.get("sender"),
                type=query.get("type"), control_id=query.get("control_id"),
                since=query.get("since"), after=query.get("after"), limit=count,
            )  # fmt: skip
        except ValueError:
            return _problem(400, "invalid_request", "since must be an ISO date or instant")
        listed = [_summary(m) for m in found]
        page: dict[str, Any] = {"count": len(listed), "messages": listed}
        if len(listed) == count:  # there may be more: ask again with after=<next>
            page["next"] = listed[-1]["id"]
        return JSONResponse(page, 200, _NO_STORE)

    async def read(self, request: Request) -> Response:
        if (denied := await self._denied(request, "r")) is not None:
            return denied
        message = await self._messages.get(request.path_params["id"])
        if message is None:
            return _problem(404, "not_found", "no such HL7 v2 message")
        return JSONResponse(message, 200, _NO_STORE)

    async def replay(self, request: Request) -> Response:
        if (denied := await self._denied(request, "u")) is not None:
            return denied
        try:
            message = await self._messages.replay(request.path_params["id"])
        except KeyError:
            return _problem(404, "not_found", "no such HL7 v2 message")
        if self._on_replay is not None:
            self._on_replay()
        return JSONResponse(_summary(message), 200, _NO_STORE)


def _summary(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k not in ("raw", "ack")}
