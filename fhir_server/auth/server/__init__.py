"""The SMART on FHIR authorization server (an ingress door): authlib's OAuth 2.0 core driven
through a thin Starlette adapter, joserfc for every JOSE operation, state in the record port."""
