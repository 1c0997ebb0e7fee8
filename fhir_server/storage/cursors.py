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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import SortKey

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
