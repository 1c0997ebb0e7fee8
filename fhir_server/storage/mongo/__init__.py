"""The MongoDB backend of the storage port (PyMongo's async API); see store.py."""
