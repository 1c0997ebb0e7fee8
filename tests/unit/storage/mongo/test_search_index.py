"""The embedded search index of a MongoDB resource document (storage/mongo/search_index.py)."""

from __future__ import annotations

import math

from fhir_server.search.model import (
    CompositeEntry,
    DateEntry,
    NumberEntry,
    QuantityEntry,
    ReferenceEntry,
    ResourceIndex,
    StringEntry,
    TokenEntry,
    UriEntry,
)
from fhir_server.storage.mongo.indexes import index_models
from fhir_server.storage.mongo.search_index import INDEX_FIELDS, SEP, index_fields

LOINC = "http://loinc.org"


def test_tokens_are_prefixed_keys_of_every_search_form() -> None:
    fields = index_fields(
        ResourceIndex(
            {
                "code": (TokenEntry(LOINC, "1-2", text="blood pressure"), TokenEntry(None, "x")),
                "identifier": (TokenEntry("urn:mrn", "42", None, "http://v2", "MR"),),
            }
        )
    )
    code = f"code{SEP}"
    assert set(fields["ixt"]) >= {
        f"{code}c{SEP}1-2",  # code (any system)
        f"{code}s{SEP}{LOINC}{SEP}1-2",  # system|code
        f"{code}S{SEP}{LOINC}",  # system|
        f"{code}c{SEP}x",
        f"{code}n{SEP}x",  # |code (no system)
        f"identifier{SEP}o{SEP}MR{SEP}42",  # :of-type with any type system
        f"identifier{SEP}os{SEP}http://v2{SEP}MR{SEP}42",
    }
    assert f"{code}n{SEP}1-2" not in fields["ixt"]
    assert fields["ixx"] == [f"{code}blood pressure"]
    assert fields["ixp"] == ["code", "identifier"]


def test_values_of_each_kind_carry_their_parameter() -> None:
    fields = index_fields(
        ResourceIndex(
            {
                "name": (StringEntry("emilie", "Émilie"),),
                "birthdate": (DateEntry(10, 20), DateEntry(5, 8)),
                "probability": (NumberEntry(0.5),),
                "value": (QuantityEntry(1.0, math.inf, "http://u", "mg", "mg", 0.001, None, "g"),),
                "subject": (
                    ReferenceEntry("Patient", "p1"),
                    ReferenceEntry(None, None, identifier_system="urn:s", identifier_value="7"),
                ),
                "url": (UriEntry("http://x/y"),),
            },
            compartments=(("Patient", "p1"), ("Patient", "p1")),
        )
    )
    assert fields["ixs"] == [f"name{SEP}emilie"]
    assert fields["ixe"] == [f"name{SEP}Émilie"]
    assert fields["ixd"] == [
        {"p": "birthdate", "l": 10, "h": 20},
        {"p": "birthdate", "l": 5, "h": 8},
    ]
    assert fields["ixn"] == [{"p": "probability", "v": 0.5}]
    quantity = {"p": "value", "l": 1.0, "h": math.inf, "s": "http://u", "c": "mg", "u": "mg"}
    assert fields["ixq"] == [{**quantity, "cl": 0.001, "cc": "g"}]  # None members left out
    assert fields["ixr"] == [
        {"p": "subject", "k": "Patient/p1", "t": "Patient", "i": "p1"},
        {"p": "subject", "s": "urn:s", "n": "7"},
    ]
    assert fields["ixu"] == [f"url{SEP}http://x/y"]
    assert fields["ixm"] == ["Patient/p1"]
    sort = {entry["p"]: (entry["a"], entry["d"]) for entry in fields["ixo"]}
    assert sort == {
        "name": ("emilie", "emilie"),
        "birthdate": (5, 20),  # lowest low ascending, highest high descending
        "probability": (0.5, 0.5),
        "value": (1.0, math.inf),
        "subject": ("Patient/p1", "Patient/p1"),  # the identifier-only one has no sort value
        "url": ("http://x/y", "http://x/y"),
    }
    assert set(fields) <= set(INDEX_FIELDS)


def test_composite_elements_keep_their_components_paired() -> None:
    element = CompositeEntry(
        ((TokenEntry(LOINC, "8480-6"),), (QuantityEntry(120.0, 120.0, None, "mm[Hg]", None),))
    )
    fields = index_fields(ResourceIndex({"component-code-value-quantity": (element, element)}))
    first = fields["ixc"][0]
    assert first["p"] == "component-code-value-quantity"
    assert f"c{SEP}8480-6" in first["t0"]
    assert first["q1"] == [{"l": 120.0, "h": 120.0, "c": "mm[Hg]"}]
    assert len(fields["ixc"]) == 2
    assert "ixo" not in fields  # composites do not sort
    assert fields["ixp"] == ["component-code-value-quantity"]


def test_an_empty_index_writes_only_the_present_list() -> None:
    assert index_fields(ResourceIndex()) == {"ixp": []}
    assert index_fields(ResourceIndex({"code": ()})) == {"ixp": []}


def test_every_index_is_named_partial_and_on_index_fields() -> None:
    models = index_models()
    names = [m.document["name"] for m in models]
    assert len(names) == len(set(names)) < 64
    for model in models:
        assert model.document["partialFilterExpression"] == {"deleted": False}
        for field in model.document["key"]:
            assert field in ("type", "rid", "id") or field.split(".")[0] in INDEX_FIELDS
