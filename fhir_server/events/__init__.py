"""L2: the hook points of the pipeline and the outbox relay that runs POST_COMMIT hooks."""
