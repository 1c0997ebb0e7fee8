"""The index rows the SQLite backend writes for a resource (storage/sqlite/index_tables.py)."""

from __future__ import annotations

from fhir_server.search.model import (
    CompositeEntry,
    DateEntry,
    IndexEntry,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    ResourceIndex,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.storage.sqlite.index_tables import _VALUES, _values, index_rows

ENTRIES: list[IndexEntry] = [
    StringEntry("ann", "Ann"),
    TokenEntry("urn:s", "c", "text", "ts", "tc"),
    DateEntry(1, 2),
    NumberEntry(1.5),
    QuantityEntry(1.0, 2.0, "urn:u", "mg", "mg", 0.001, 0.002, "g"),
    ReferenceEntry("Patient", "p", "http://x/Patient/p", "2", "urn:s", "v"),
    UriEntry("http://x"),
]


def test_the_fast_row_values_are_the_matched_ones() -> None:
    for entry in ENTRIES:
        fast = _VALUES.get(type(entry))
        assert fast is None or fast(entry) == _values(entry)
    assert len(_VALUES) >= 5


def test_rows_keep_their_pids_and_groups() -> None:
    asked: list[str] = []

    def pid_of(code: str) -> int:
        asked.append(code)
        return len(asked)

    composite = CompositeEntry(((TokenEntry("s", "c"),), (NumberEntry(2.0),)))
    index = ResourceIndex(
        {"a": tuple(ENTRIES), "pair": (composite, composite), "b": (UriEntry("u"),)}
    )
    rows = index_rows(index, pid_of, 7)
    assert asked == ["a", "pair$0", "pair$1", "pair$0", "pair$1", "b"]
    assert rows["idx_token"] == [
        (7, 1, 0, "urn:s", "c", "text", "ts", "tc"),
        (7, 2, 1, "s", "c", None, None, None),
        (7, 4, 2, "s", "c", None, None, None),
    ]
    assert rows["idx_uri"] == [(7, 1, 0, "http://x"), (7, 6, 0, "u")]
    assert rows["idx_number"] == [(7, 1, 0, 1.5), (7, 3, 1, 2.0), (7, 5, 2, 2.0)]
