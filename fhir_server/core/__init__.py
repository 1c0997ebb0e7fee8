"""L0: models, errors, request context, FHIR JSON, ids and clock. No third-party I/O."""
