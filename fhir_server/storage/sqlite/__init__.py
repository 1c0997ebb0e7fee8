"""SQLite backend of the storage port: the embedded default, zero set-up."""

from fhir_server.storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
