"""What ``:in``/``:not-in`` compile to on every backend: a token test with as many values as a
value set has codes (up to 10,000; search.html#token), positive and under ``:not``. SQLite once
failed past ~500 values (compound SELECT and expression depth limits)."""

from __future__ import annotations

import pytest

from fhir_server.search.model import TokenEntry, TokenValue
from fhir_server.storage.port import ResourceStore
from tests.contract.test_search_contract import CODE, LOINC, found, put, t


@pytest.mark.parametrize("size", [3, 600, 10_000])
async def test_many_token_values_and_their_negation(store: ResourceStore, size: int) -> None:
    await put(store, "Patient", "a", {"code": (TokenEntry(LOINC, "2"),)})
    await put(store, "Patient", "b", {"code": (TokenEntry(LOINC, "x"), TokenEntry(None, "zz"))})
    await put(store, "Patient", "c", {"code": (TokenEntry("urn:other", "1"),)})
    await put(store, "Patient", "d")
    await put(store, "Patient", "e", {"code": (TokenEntry(None, "5"),)})  # a `code` element
    await put(store, "Patient", "f", {"code": (TokenEntry(None, "y"),)})
    values = [TokenValue(LOINC, str(i)) for i in range(size)] + [TokenValue("urn:other", "1")]
    values += [TokenValue("", str(i)) for i in range(size)]
    with_e = {"e"} if size > 5 else set()
    assert await found(store, t(CODE, *values)) == {"a", "c"} | with_e
    assert await found(store, t(CODE, *values, modifier="not")) == {"b", "d", "f", "e"} - with_e
