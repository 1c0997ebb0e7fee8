"""R4 types without a faithful R4B model, checked from the R4 snapshot (r4_gaps.FALLBACK_TYPES)."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_server.validation import validate_structure


def product(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "MedicinalProduct", "name": [{"productName": "X"}], **elements}


def found(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.code, i.expression[0]) for i in validate_structure(resource)]


VALID = [
    product(),
    product(
        id="mp-1",
        meta={"versionId": "1", "lastUpdated": "2024-01-01T00:00:00Z"},
        identifier=[{"system": "http://x", "value": "1"}],
        specialMeasures=["a", "b"],
        _specialMeasures=[None, {"extension": [{"url": "http://x", "valueString": "y"}]}],
        extension=[{"url": "http://x", "valueBoolean": True}],
        specialDesignation=[{"indicationCodeableConcept": {"text": "x"}, "date": "2020-01-01"}],
    ),
    {"resourceType": "MedicinalProduct", "name": [{"_productName": {"id": "n1"}}]},
    {
        "resourceType": "SubstanceSpecification",
        "name": [{"name": "a", "synonym": [{"name": "b", "synonym": [{"name": "c"}]}]}],
    },
    {"resourceType": "Evidence", "status": "draft", "exposureBackground": {"reference": "x"}},
    {
        "resourceType": "SubstancePolymer",
        "monomerSet": [{"startingMaterial": [{"amount": {"amountString": "x"}}]}],
    },
    product(contained=[{"resourceType": "Patient", "active": True}]),
    product(contained=[product()]),
    {"resourceType": "Patient", "contained": [product()]},
    {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": product()}]},
]


@pytest.mark.parametrize("resource", VALID)
def test_valid_fallback_resources(resource: dict[str, Any]) -> None:
    assert validate_structure(resource) == []


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"resourceType": "MedicinalProduct"}, [("required", "MedicinalProduct.name")]),
        (
            product(name=[{"namePart": [{"part": "a", "type": {"code": "x"}}]}]),
            [("required", "MedicinalProduct.name[0].productName")],
        ),
        (product(foo=1), [("structure", "MedicinalProduct.foo")]),
        (product(_type={"id": "x"}), [("structure", "MedicinalProduct._type")]),
        (product(name={"productName": "X"}), [("structure", "MedicinalProduct.name")]),
        (product(type=[{"text": "x"}]), [("structure", "MedicinalProduct.type")]),
        (product(specialMeasures=["a", 5]), [("value", "MedicinalProduct.specialMeasures[1]")]),
        (product(specialMeasures=[]), [("structure", "MedicinalProduct.specialMeasures")]),
        (product(specialMeasures=[None]), [("structure", "MedicinalProduct.specialMeasures[0]")]),
        (product(type=None), [("structure", "MedicinalProduct.type")]),
        (product(type={}), [("structure", "MedicinalProduct.type")]),
        (product(id="a" * 65), [("value", "MedicinalProduct.id")]),
        (
            product(name=[{"productName": "X", "_id": {"id": "y"}}]),
            [("structure", "MedicinalProduct.name[0]._id")],
        ),
        (
            product(specialDesignation=[{"date": "2020-13-01"}]),
            [("value", "MedicinalProduct.specialDesignation[0].date")],
        ),
        (
            product(
                specialDesignation=[
                    {"indicationCodeableConcept": {"text": "x"}, "indicationReference": {}}
                ]
            ),
            [
                (
                    "structure",
                    "MedicinalProduct.specialDesignation[0].indication.ofType(Reference)",
                ),
                ("structure", "MedicinalProduct.specialDesignation[0]"),
            ],
        ),
        (
            {"resourceType": "SubstanceSpecification", "name": [{"synonym": [{"language": []}]}]},
            [
                ("structure", "SubstanceSpecification.name[0].synonym[0].language"),
                ("required", "SubstanceSpecification.name[0].synonym[0].name"),
                ("required", "SubstanceSpecification.name[0].name"),
            ],
        ),
    ],
)
def test_fallback_structure_errors(
    resource: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert found(resource) == expected


def test_only_one_choice_type_diagnostics() -> None:
    resource = product(
        specialDesignation=[
            {"indicationCodeableConcept": {"text": "x"}, "indicationReference": {"display": "y"}}
        ]
    )
    [issue] = validate_structure(resource)
    assert issue.diagnostics == (
        "MedicinalProduct.specialDesignation[0]: only one of 'indication[x]' may be present"
    )


def test_datatypes_inside_fallback_types_are_checked_by_their_r4b_model() -> None:
    resource = product(
        identifier=[{"system": "http://a b", "foo": 1}],
        extension=[{"valueString": "x"}],
        meta={"lastUpdated": "yesterday"},
    )
    assert found(resource) == [
        ("value", "MedicinalProduct.identifier[0].system"),
        ("structure", "MedicinalProduct.identifier[0].foo"),
        ("required", "MedicinalProduct.extension[0].url"),
        ("value", "MedicinalProduct.meta.lastUpdated"),
    ]


def test_marketing_status_keeps_its_r4_cardinality() -> None:
    resource = product(marketingStatus=[{"status": {"text": "active"}}])
    assert found(resource) == [
        ("required", "MedicinalProduct.marketingStatus[0].country"),
        ("required", "MedicinalProduct.marketingStatus[0].dateRange"),
    ]


def test_datatypes_without_any_model_get_the_json_rules() -> None:
    amount = {"amountString": "x", "extension": [None], "amountType": {}}
    resource = {
        "resourceType": "SubstancePolymer",
        "monomerSet": [{"startingMaterial": [{"amount": amount}]}],
    }
    assert found(resource) == [
        ("structure", "SubstancePolymer.monomerSet[0].startingMaterial[0].amount.extension[0]"),
        ("structure", "SubstancePolymer.monomerSet[0].startingMaterial[0].amount.amountType"),
    ]


def test_the_r4b_shape_of_a_reshaped_type_is_not_r4() -> None:
    r4b_evidence = {"resourceType": "Evidence", "status": "draft", "variableDefinition": []}
    assert found(r4b_evidence) == [
        ("structure", "Evidence.variableDefinition"),
        ("required", "Evidence.exposureBackground"),
    ]


def test_resources_inside_fallback_types_are_validated_by_type() -> None:
    resource = product(
        contained=[
            {"resourceType": "Patient", "active": "yes"},
            {"resourceType": "MedicinalProduct"},
            {"resourceType": "Citation"},
        ]
    )
    assert found(resource) == [
        ("value", "MedicinalProduct.contained[0].active"),
        ("required", "MedicinalProduct.contained[1].name"),
        ("invalid", "MedicinalProduct.contained[2].resourceType"),
    ]


def test_fallback_types_inside_r4b_resources() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "MedicinalProduct", "foo": 1}},
            {"resource": {"resourceType": "Patient", "contained": [{"resourceType": "Evidence"}]}},
        ],
    }
    assert found(bundle) == [
        ("structure", "Bundle.entry[0].resource.foo"),
        ("required", "Bundle.entry[0].resource.name"),
        ("required", "Bundle.entry[1].resource.contained[0].exposureBackground"),
        ("required", "Bundle.entry[1].resource.contained[0].status"),
    ]
