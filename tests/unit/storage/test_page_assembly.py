"""storage/cursors.py's page assembly (page_start, assemble_page), which both backends use, over
an in-memory list of rows read the way a backend reads them: forward and back through every
page, with rows created and deleted between pages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fhir_server.core.errors import InvalidRequest
from fhir_server.storage.cursors import (
    KeysetPosition,
    PageStart,
    assemble_page,
    encode_position,
    page_start,
)
from fhir_server.storage.port import Page, ResourceVersion

T = datetime(2026, 1, 1, tzinfo=UTC)


def _beyond(rids: list[int], position: KeysetPosition | None, backward: bool) -> list[int]:
    """The rows after ``position`` in reading order (the backends' keyset condition)."""
    ordered = sorted(rids, reverse=backward)
    if position is None:
        return ordered
    key = int(position.key)
    if backward:
        return [r for r in ordered if r < key or (position.inclusive and r == key)]
    return [r for r in ordered if r > key or (position.inclusive and r == key)]


def _versions(rows: list[int]) -> list[ResourceVersion]:
    return [ResourceVersion("Patient", str(r), 1, T, "POST", b"{}") for r in rows]


def _position(row: int, backward: bool) -> KeysetPosition:
    return KeysetPosition((), row, backward)


def read(rids: list[int], cursor: str | None, count: int) -> Page:
    start = page_start(cursor, ())
    rows = _beyond(rids, start.position, start.backward)[: count + 1]
    behind = start.behind
    more_behind = behind is not None and bool(_beyond(rids, behind, behind.backward))
    return assemble_page(start, rows, count, more_behind, _position, _versions)


def ids(page: Page) -> list[int]:
    return [int(v.id) for v in page.entries]


def test_forward_and_back_through_every_page() -> None:
    rids = list(range(1, 11))
    first = read(rids, None, 4)
    assert ids(first) == [1, 2, 3, 4] and first.previous_cursor is None
    assert first.next_cursor is not None
    second = read(rids, first.next_cursor, 4)
    assert ids(second) == [5, 6, 7, 8]
    assert second.next_cursor is not None and second.previous_cursor is not None
    last = read(rids, second.next_cursor, 4)
    assert ids(last) == [9, 10] and last.next_cursor is None
    assert last.previous_cursor is not None
    back = read(rids, last.previous_cursor, 4)
    assert ids(back) == [5, 6, 7, 8]
    assert back.previous_cursor is not None
    assert ids(read(rids, back.previous_cursor, 4)) == [1, 2, 3, 4]


def test_an_emptied_page_links_to_the_rows_behind_it() -> None:
    first = read([1, 2, 3, 4], None, 2)
    assert first.next_cursor is not None
    empty = read([1, 2], first.next_cursor, 2)  # 3 and 4 deleted meanwhile
    assert empty.entries == [] and empty.next_cursor is None
    assert empty.previous_cursor is not None
    assert ids(read([1, 2, 5], empty.previous_cursor, 2)) == [1, 2]
    assert read([], first.next_cursor, 2) == Page([])


def test_page_start() -> None:
    assert page_start(None, ()) == PageStart("", None, None)
    start = page_start(encode_position(KeysetPosition((), 7, True), ""), ())
    assert start.backward and start.position == KeysetPosition((), 7, True)
    assert start.behind == KeysetPosition((), 7, False, True)
    with pytest.raises(InvalidRequest):  # the backends' keys are row numbers
        page_start(encode_position(KeysetPosition((), "x"), ""), ())
    with pytest.raises(InvalidRequest):
        page_start("not a cursor", ())
