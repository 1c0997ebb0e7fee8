"""Opaque keyset-paging cursors shared by the backends.

A cursor is the URL-safe base64 of a small JSON object holding the last key seen. It is not a
secret (it holds no resource content), only opaque: clients pass it back unchanged.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

import orjson

from fhir_server.core.errors import InvalidRequest

_INVALID = "The paging cursor is not valid; follow the links of the last page"


def encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidRequest(
            "The paging cursor is not valid; follow the links of the last page"
        ) from None
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
