"""The search engine (layer L1, pure): SearchParameter registry, index extraction at write time,
the query parser (request parameters → AST) and the in-memory matcher used as the test oracle.
Storage backends compile the AST of :mod:`fhir_server.search.model` to their own queries."""
