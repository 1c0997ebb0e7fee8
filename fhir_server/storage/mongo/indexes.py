"""The indexes of the ``resources`` collection that search needs, created idempotently.

The embedded search index follows the attribute pattern (search_index.py): values of every
parameter of a kind share one field, each value carrying its parameter code (as a string prefix
or a ``p`` member that leads the compound key). So these few indexes serve every parameter the
SearchParameter registry defines, custom ones included, and need no regeneration when the
registry changes: generating one index per parameter from the registry would need hundreds
(a collection allows 64). Every index is partial on ``{deleted: False}`` (every search filter
has that condition): tombstones and their null keys stay out.

Sorting by a parameter's value is done on the matching documents (search_paging.py), not
through an index, for the same reason. Names start with ``search_`` so they are told apart from
the store's own indexes; :func:`index_models` is stable, so ``create_indexes`` at every start-up
is a no-op once they exist.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel

from fhir_server.storage.mongo.search_index import (
    COMPARTMENTS,
    COMPOSITES,
    DATES,
    EXACT,
    NUMBERS,
    PRESENT,
    QUANTITIES,
    REFERENCES,
    STRINGS,
    TOKEN_TEXTS,
    TOKENS,
    URIS,
)

LIVE = {"deleted": False}

#: (name, keys): each index's key pattern.
_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("search_type_rid", ("type", "rid")),  # a type in creation order (unsorted pages)
    ("search_id", ("id",)),  # _id across every type (with types: the documents' _id)
    ("search_present", (PRESENT, "type")),  # :missing=false
    ("search_token", (TOKENS, "type")),  # token forms and :of-type (equality)
    ("search_token_text", (TOKEN_TEXTS,)),  # :text (anchored prefix)
    ("search_string", (STRINGS,)),  # prefix and :contains (prefix on the parameter code)
    ("search_string_exact", (EXACT,)),
    ("search_uri", (URIS,)),
    ("search_date", (f"{DATES}.p", f"{DATES}.l", f"{DATES}.h")),
    ("search_number", (f"{NUMBERS}.p", f"{NUMBERS}.v")),
    ("search_quantity", (f"{QUANTITIES}.p", f"{QUANTITIES}.l")),
    ("search_quantity_ucum", (f"{QUANTITIES}.p", f"{QUANTITIES}.cc", f"{QUANTITIES}.cl")),
    ("search_reference", (f"{REFERENCES}.k", f"{REFERENCES}.p")),  # Type/id, chains
    ("search_reference_id", (f"{REFERENCES}.i", f"{REFERENCES}.p")),  # bare id
    ("search_reference_url", (f"{REFERENCES}.u", f"{REFERENCES}.p")),
    ("search_reference_identifier", (f"{REFERENCES}.n", f"{REFERENCES}.p")),
    ("search_composite", (f"{COMPOSITES}.p", f"{COMPOSITES}.t0")),  # most start with a token
    ("search_compartment", (COMPARTMENTS, "type")),
)


def index_models() -> list[IndexModel]:
    """The search indexes of ``resources``, named, partial on live documents."""
    return [
        IndexModel([(field, ASCENDING) for field in keys], name=name, partialFilterExpression=LIVE)
        for name, keys in _KEYS
    ]
