"""The vocabulary tables of mappings/v2-to-fhir/ (derived from the v2-to-FHIR IG), loaded once.

:class:`V2Tables` is built by bootstrap (or a test) from the folder and held by the mapper:
nothing is read at import time. ``lookup("administrative-sex", "F")`` gives the FHIR target
(``{"code", "system"?, "display"?}``) or None when the table has no row for the code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

TABLE_NAMES = (
    "administrative-sex",
    "order-control",
    "order-control-request",
    "order-control-task",
    "order-status",
    "order-status-task",
    "result-status",
    "result-status-out",
    "name-type",
    "identifier-type",
    "patient-class",
    "priority",
    "coding-system",
)


def default_folder() -> Path:
    """mappings/v2-to-fhir/ of the source tree (the Docker image copies it to the same place)."""
    return Path(__file__).resolve().parents[3] / "mappings" / "v2-to-fhir"


class V2Tables:
    def __init__(self, tables: Mapping[str, Mapping[str, Mapping[str, str]]]) -> None:
        missing = [name for name in TABLE_NAMES if name not in tables]
        if missing:
            raise ValueError(f"HL7 v2 mapping tables missing: {', '.join(missing)}")
        self._tables = {name: dict(rows) for name, rows in tables.items()}

    @classmethod
    def load(cls, folder: Path | None = None) -> V2Tables:
        where = folder or default_folder()
        tables: dict[str, Mapping[str, Mapping[str, str]]] = {}
        for name in TABLE_NAMES:
            path = where / f"{name}.json"
            try:
                tables[name] = json.loads(path.read_text(encoding="utf-8"))["map"]
            except (OSError, KeyError, ValueError) as exc:
                raise ValueError(f"HL7 v2 mapping table {path}: {exc}") from exc
        return cls(tables)

    def lookup(self, table: str, code: str) -> Mapping[str, str] | None:
        return self._tables[table].get(code)

    def code(self, table: str, code: str) -> str | None:
        """Just the target code (e.g. ``female``), or None."""
        row = self._tables[table].get(code)
        return row["code"] if row is not None else None

    def rows(self, table: str) -> Mapping[str, Mapping[str, str]]:
        return self._tables[table]
