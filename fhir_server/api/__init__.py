"""L4: the FHIR REST door (FastAPI). It only translates HTTP to service calls and back."""
