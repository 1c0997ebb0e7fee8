"""Discovery documents: SMART's ``.well-known/smart-configuration`` (App Launch 2.x
conformance), OpenID Connect discovery for the ``id_token`` issuer, and the
CapabilityStatement ``rest.security`` with SMART 1.0's ``oauth-uris`` extension (Python
fhirclient discovers only through it)."""

from __future__ import annotations

from typing import Any

from fhir_server.auth.server.issuer import Endpoints

#: Every capability listed is implemented (issue 7; SMART conformance.html).
CAPABILITIES = (
    "launch-ehr",
    "launch-standalone",
    "authorize-post",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-banner",
    "context-style",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-standalone-patient",
    "permission-offline",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
)
SCOPES_SUPPORTED = (
    "openid", "fhirUser", "profile", "launch", "launch/patient", "launch/encounter",
    "offline_access", "patient/*.cruds", "user/*.cruds", "system/*.cruds",
    "patient/*.read", "user/*.read", "patient/*.write", "user/*.write", "system/*.read",
)  # fmt: skip
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


def smart_configuration(e: Endpoints) -> dict[str, Any]:
    return {
        "issuer": e.issuer,
        "jwks_uri": e.jwks,
        "authorization_endpoint": e.authorize,
        "token_endpoint": e.token,
        "introspection_endpoint": e.introspect,
        "revocation_endpoint": e.revoke,
        "management_endpoint": e.manage,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "capabilities": list(CAPABILITIES),
    }


def openid_configuration(e: Endpoints) -> dict[str, Any]:
    return {
        "issuer": e.issuer,
        "authorization_endpoint": e.authorize,
        "token_endpoint": e.token,
        "jwks_uri": e.jwks,
        "introspection_endpoint": e.introspect,
        "revocation_endpoint": e.revoke,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": list(SCOPES_SUPPORTED),
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser"],
    }


def capability_security(e: Endpoints) -> dict[str, Any]:
    """CapabilityStatement.rest.security (R4), with the SMART oauth-uris extension."""
    return {
        "cors": True,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
            }
        ],
        "extension": [
            {
                "url": OAUTH_URIS,
                "extension": [
                    {"url": "authorize", "valueUri": e.authorize},
                    {"url": "token", "valueUri": e.token},
                    {"url": "introspect", "valueUri": e.introspect},
                    {"url": "revoke", "valueUri": e.revoke},
                    {"url": "manage", "valueUri": e.manage},
                ],
            }
        ],
        "description": "SMART App Launch 2.x: " + e.fhir_base + "/.well-known/smart-configuration",
    }
