"""authlib's model interfaces (ClientMixin, AuthorizationCodeMixin, TokenMixin) over our
records: thin read-only views, so authlib's checks run on our data."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin

from fhir_server.auth.scopes import grant
from fhir_server.auth.server.accounts import Client, check_secret
from fhir_server.auth.server.state import GrantContext

#: Client authentication methods per kind of client (``public_refresh``: a public client
#: identified by its refresh token alone, as client-js refreshes).
_METHODS = {
    "none": ("none", "public_refresh"),
    "client_secret_basic": ("client_secret_basic", "client_secret_post"),
    "private_key_jwt": ("private_key_jwt",),
}


class ClientModel(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: Client) -> None:
        self.client = client
        self.client_id = client.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # redirect_uri is always required (RFC 9700 §2.1)

    def get_allowed_scope(self, scope: str | None) -> str | None:
        if not scope:
            return None
        granted = grant(scope, self.client.scope)
        return granted or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exact string match (RFC 9700 §4.1.3)

    def check_client_secret(self, client_secret: str) -> bool:
        return check_secret(self.client.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if method == "bearer_token":
            return endpoint == "introspection"
        return method in _METHODS[self.client.auth_method]

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and self.client.type != "backend"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.client.grant_types


class CodeModel(AuthorizationCodeMixin):  # type: ignore[misc]
    def __init__(self, context: GrantContext) -> None:
        self.context = context
        self.code_challenge = context.code_challenge
        self.code_challenge_method = context.code_challenge_method
        self.nonce = context.nonce
        self.auth_time = context.auth_time

    def get_redirect_uri(self) -> str | None:
        return self.context.redirect_uri

    def get_scope(self) -> str:
        return self.context.scope

    def get_nonce(self) -> str | None:
        return self.context.nonce

    def get_auth_time(self) -> int | None:
        return self.context.auth_time


class RefreshModel(TokenMixin):  # type: ignore[misc]
    def __init__(self, context: GrantContext) -> None:
        self.context = context

    def check_client(self, client: ClientModel) -> bool:
        return bool(client.client_id == self.context.client_id)

    def get_scope(self) -> str:
        return self.context.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False  # an expired refresh token is never found

    def is_revoked(self) -> bool:
        return False  # a revoked one is never found either
