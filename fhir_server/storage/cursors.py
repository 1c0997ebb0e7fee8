"""Opaque keyset-paging cursors shared by the backends.

A cursor is the URL-safe base64 of a small JSON object holding the last key seen. It is not a
secret (it holds no resource content), only opaque: clients pass it back unchanged. Anything a
client altered is refused with :class:`InvalidRequest`, never half-used.

Search cursors (:class:`KeysetPosition`) hold the sort values of one row plus the backend's
tie-break key, the direction to read in, and a signature of the sort they belong to, so a cursor
pasted onto a search with another ``_sort`` is refused instead of skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import SortKey
from fhir_server.storage.port import Page, ResourceVersion

_INVALID = "The paging cursor is not valid; follow the links of the last page"

#: A sort value as a backend stores it (a missing value is None).
SortValue = str | int | float | None


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidRequest(_INVALID) from None
    if not isinstance(value, dict):
        raise InvalidRequest(_INVALID)
    return value


K = TypeVar("K", int, str)


def cursor_key(cursor: str, name: str, kind: type[K]) -> K:
    """The ``name`` key of a cursor, which must be of ``kind``; InvalidRequest otherwise."""
    value = decode_cursor(cursor).get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidRequest(_INVALID)
    return value


@dataclass(frozen=True, slots=True)
class KeysetPosition:
    """Where a page starts: strictly after (``backward`` False) or before the row whose sort
    values and tie-break key are given; ``inclusive`` also takes that row itself (used when the
    page it came from was empty, so the row was never shown on this side)."""

    values: tuple[SortValue, ...]
    key: int | str
    backward: bool = False
    inclusive: bool = False


def sort_signature(sort: Sequence[SortKey]) -> str:
    """``_sort`` as written (``date,-name``): the cursor must come from the same ordering."""
    return ",".join(("-" if key.descending else "") + key.param.code for key in sort)


def _encode_value(value: SortValue) -> Any:
    """JSON has no infinities (open quantity ranges sort at -inf/inf): tag them."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"inf": 1 if value > 0 else -1}
    return value


def _decode_value(value: Any) -> SortValue:
    if isinstance(value, dict) and set(value) == {"inf"} and value["inf"] in (1, -1):
        return math.inf if value["inf"] == 1 else -math.inf
    if value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidRequest(_INVALID)


def encode_position(position: KeysetPosition, signature: str) -> str:
    return encode_cursor(
        {
            "s": signature,
            "v": [_encode_value(v) for v in position.values],
            "k": position.key,
            "b": position.backward,
            "i": position.inclusive,
        }
    )


def decode_position(cursor: str, signature: str) -> KeysetPosition:
    """The position a search cursor holds; InvalidRequest if it is not one for this sort."""
    raw = decode_cursor(cursor)
    values, key = raw.get("v"), raw.get("k")
    backward, inclusive = raw.get("b"), raw.get("i")
    if (
        raw.get("s") != signature
        or not isinstance(values, list)
        or len(values) != (signature.count(",") + 1 if signature else 0)
        or not isinstance(key, int | str)
        or isinstance(key, bool)
        or not isinstance(backward, bool)
        or not isinstance(inclusive, bool)
    ):
        raise InvalidRequest(_INVALID)
    return KeysetPosition(tuple(_decode_value(v) for v in values), key, backward, inclusive)


@dataclass(frozen=True, slots=True)
class PageStart:
    """Where a search page starts: ``position`` from its cursor (None: the first page), and
    ``behind``, the rows on the other side of it (whether there are any decides the link back)."""

    signature: str
    position: KeysetPosition | None
    behind: KeysetPosition | None

    @property
    def backward(self) -> bool:
        """Whether the page is read backward from its position (a previous page)."""
        return self.position is not None and self.position.backward


def page_start(cursor: str | None, sort: Sequence[SortKey]) -> PageStart:
    """The start of a page of a search sorted by ``sort``; InvalidRequest if ``cursor`` is not
    one of this sort (the backends' tie-break keys are row numbers)."""
    signature = sort_signature(sort)
    position = decode_position(cursor, signature) if cursor is not None else None
    if position is None:
        return PageStart(signature, None, None)
    if not isinstance(position.key, int):
        raise InvalidRequest(_INVALID)
    behind = KeysetPosition(
        position.values, position.key, not position.backward, not position.inclusive
    )
    return PageStart(signature, position, behind)


Row = TypeVar("Row")


def assemble_page(
    start: PageStart,
    rows: list[Row],
    count: int,
    more_behind: bool,
    position_of: Callable[[Row, bool], KeysetPosition],
    versions: Callable[[list[Row]], list[ResourceVersion]],
) -> Page:
    """The page of ``rows`` (up to ``count + 1`` read from ``start`` in its reading order), with
    the cursors of the pages before and after it, if any. ``more_behind``: whether any row lies
    behind the start; ``position_of(row, backward)``: the position of a row, for reading on
    backward or forward from it; ``versions``: the resources of the rows, in their order."""
    more_ahead = len(rows) > count
    rows = rows[:count]
    if not rows:
        if start.behind is None or not more_behind:
            return Page([])
        link = encode_position(start.behind, start.signature)
        return Page([], link if start.backward else None, None, None if start.backward else link)
    if start.backward:
        rows.reverse()
        more_before, more_after = more_ahead, more_behind
    else:
        more_before, more_after = more_behind, more_ahead
    earlier = encode_position(position_of(rows[0], True), start.signature) if more_before else None
    later = encode_position(position_of(rows[-1], False), start.signature) if more_after else None
    return Page(versions(rows), later, None, earlier)
