"""Small CodeSystems and ValueSets for the terminology unit tests (no R4 content needed)."""

from __future__ import annotations

from typing import Any

BASE = "http://example.org/fhir"
SHAPES = f"{BASE}/CodeSystem/shapes"


def concept(code: str, display: str, *children: dict[str, Any], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code, "display": display, **extra}
    if children:
        out["concept"] = list(children)
    return out


#: shape > polygon > (triangle, square); shape > round > circle; 'blob' retired; 'ellipse'
#: below round through the parent property; 'polygon' is abstract.
SHAPES_CS: dict[str, Any] = {
    "resourceType": "CodeSystem",
    "url": SHAPES,
    "version": "1.0",
    "name": "Shapes",
    "status": "active",
    "content": "complete",
    "hierarchyMeaning": "is-a",
    "property": [
        {"code": "notSelectable", "type": "boolean"},
        {"code": "status", "type": "code"},
        {"code": "parent", "type": "code"},
        {"code": "sides", "type": "integer"},
    ],
    "concept": [
        concept(
            "shape", "Shape",
            concept(
                "polygon", "Polygon",
                concept("triangle", "Triangle", property=[{"code": "sides", "valueInteger": 3}]),
                concept("square", "Square", property=[{"code": "sides", "valueInteger": 4}],
                        designation=[{"language": "fr", "value": "Carré"}]),
                property=[{"code": "notSelectable", "valueBoolean": True}],
            ),
            concept("round", "Round", concept("circle", "Circle")),
        ),
        concept("ellipse", "Ellipse", property=[{"code": "parent", "valueCode": "round"}]),
        concept("blob", "Blob", property=[{"code": "status", "valueCode": "retired"}]),
    ],
}  # fmt: skip


def value_set(name: str, compose: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "ValueSet",
        "url": f"{BASE}/ValueSet/{name}",
        "status": "active",
        "compose": compose,
        **extra,
    }


def include(**part: Any) -> dict[str, Any]:
    return {"include": [part]}
