"""SMART on FHIR authorization: scope grammar and policy (L1, pure), and under ``auth/server``
the authorization server itself (an L4 door). The services enforce what a token grants in
``fhir_server.interactions.authorize``."""
