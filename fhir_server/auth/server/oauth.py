"""The thin adapter between Starlette and authlib's framework-agnostic OAuth core (authlib ships
Flask and Django providers only; its Flask integration is the model followed here).

A route reads the request body asynchronously, builds a :class:`SmartRequest` (query string and
form, with the URL clients see), and calls authlib in the bridge's worker thread. authlib answers
``(status, body, headers)``, kept as an :class:`OAuthAnswer` for the route to send.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Payload, OAuth2Request

from fhir_server.auth.server.accounts import Accounts
from fhir_server.auth.server.bridge import LoopBridge
from fhir_server.auth.server.client_auth import PrivateKeyJwt, PublicRefresh
from fhir_server.auth.server.grants import (
    SmartClientCredentialsGrant,
    SmartCodeGrant,
    SmartDeps,
    SmartRefreshGrant,
    StrictPkce,
)
from fhir_server.auth.server.issuer import Endpoints
from fhir_server.auth.server.models import ClientModel

Pairs = Sequence[tuple[str, str]]


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: Pairs) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class SmartRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth request: ``query`` and ``form`` pairs as received; ``uri`` the public URL."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Pairs,
        form: Pairs,
        endpoints: Endpoints,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self.endpoints = endpoints
        self._args = dict(reversed(list(query)))  # first value wins, as authlib's payloads
        self._form = dict(reversed(list(form)))
        self.payload = _Payload([*query, *form])
        self.smart_context: Any = None

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


@dataclass(slots=True)
class OAuthAnswer:
    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)


class SmartAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(
        self,
        accounts: Accounts,
        deps: SmartDeps,
        private_key_jwt: PrivateKeyJwt,
        bearer_token: Any,
        introspection: Any,
        revocation: Any,
    ) -> None:
        super().__init__()
        self._accounts = accounts
        self.smart = deps
        self.register_client_auth_method("private_key_jwt", private_key_jwt)
        self.register_client_auth_method("public_refresh", PublicRefresh(deps.state, deps.bridge))
        self.register_client_auth_method("bearer_token", bearer_token)
        self.register_grant(SmartCodeGrant, [StrictPkce(required=True)])
        self.register_grant(SmartRefreshGrant)
        self.register_grant(SmartClientCredentialsGrant)
        self.register_endpoint(introspection)
        self.register_endpoint(revocation)

    @property
    def bridge(self) -> LoopBridge:
        return self.smart.bridge

    def query_client(self, client_id: str) -> ClientModel | None:
        client = self.bridge.wait(self._accounts.client(client_id))
        return None if client is None else ClientModel(client)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        pass  # saved as it is issued (TokenFactory)

    def create_oauth2_request(self, request: SmartRequest) -> SmartRequest:
        return request

    def create_json_request(self, request: SmartRequest) -> SmartRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> OAuthAnswer:
        return OAuthAnswer(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass


AnswerFactory = Callable[[], OAuthAnswer]
