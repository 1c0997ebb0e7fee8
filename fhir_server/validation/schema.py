"""The R4 view of an object's allowed JSON properties, from the R4 snapshot or an R4B model.

A :class:`Node` is a kind of JSON object. With the ``"r4"`` engine (the server's), every node is an
element path of the R4 StructureDefinition snapshots (resources from ``core/r4`` elements, data
types from its datatype tables), and the walk checks everything itself. With the ``"r4b"`` engine
(the cross-check the tests run against, see walk.py), a node is an R4B model (resource, datatype,
backbone element) or, for the types in :data:`r4_gaps.FALLBACK_TYPES`, an R4 snapshot path. Its
:attr:`Node.elements` map each allowed JSON name to an :class:`Element`, with choice types expanded
(``value[x]`` -> ``valueString``, ``valueQuantity``...; http://hl7.org/fhir/R4/formats.html#choice)
and the R4/R4B differences of :mod:`r4_gaps` applied, so that it always describes R4.
Everything is computed once per node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from fhir_server.core import models, r4
from fhir_server.validation import r4_gaps
from fhir_server.validation.primitives import Primitive, primitive

_ELEMENT_ID = "http://hl7.org/fhirpath/System.String"
# R4 primitives without a `_name` sibling: ids and Extension.url are XML attributes in R4.
_NOT_EXTENSIBLE = frozenset({("Extension", "url")})

#: "r4": R4 snapshots only (the server); "r4b": R4B models where faithful (the cross-check).
Engine = Literal["r4", "r4b"]


class Node:
    """A kind of JSON object. ``path`` is set for R4-snapshot nodes, None for R4B models.

    Nodes are interned by :func:`node` and compared by identity, so the walk's lookups hash
    cheaply; their elements and rules are computed on first use.
    """

    __slots__ = ("_elements", "_rules", "engine", "from_snapshot", "model", "path")

    def __init__(self, model: str, path: str | None, engine: Engine) -> None:
        self.model = model
        self.path = path
        self.engine: Engine = engine
        # True when R4B cannot validate this object: the walk checks everything itself.
        self.from_snapshot = path is not None
        self._elements: Mapping[str, Element] | None = None
        self._rules: Rules | None = None

    @property
    def elements(self) -> Mapping[str, Element]:
        """Allowed JSON properties of the object, by JSON name."""
        if self._elements is None:
            self._elements = (
                _snapshot_elements(self) if self.from_snapshot else _model_elements(self)
            )
        return self._elements

    @property
    def rules(self) -> Rules:
        """Required elements and choice groups of the node."""
        if self._rules is None:
            self._rules = _rules(self)
        return self._rules

    def __repr__(self) -> str:
        return f"Node({self.model!r}, {self.path!r}, {self.engine!r})"


@cache
def node(model: str, path: str | None = None, engine: Engine = "r4b") -> Node:
    """The node of an R4B model (``path`` None) or of an R4 snapshot element path (a resource
    type or a complex data type as ``model``)."""
    return Node(model, path, engine)


def primitive_extension(engine: Engine) -> Node:
    """The kind of a primitive's ``_name`` object (id and extensions, json.html#primitive)."""
    return node("Element", "Element", "r4") if engine == "r4" else node("FHIRPrimitiveExtension")


@dataclass(frozen=True, slots=True)
class Element:
    """One allowed JSON property. ``name`` is the FHIR element name (``value`` for choices)."""

    json_name: str
    name: str
    type_code: str
    is_list: bool
    min: int
    choice: bool
    node: Node | None  # content of a complex element; None for primitives, resources, opaque
    primitive: Primitive | None
    extensible: bool  # a `_name` sibling is allowed (primitives, element ids excepted)
    r4b_gap: bool = False  # R4B rejects this R4 element: validate it on its own
    r4b_extension_gap: bool = False  # R4B rejects the `_name` sibling: validate it on its own

    @property
    def is_resource(self) -> bool:
        return self.type_code == "Resource"


@dataclass(frozen=True, slots=True)
class Rules:
    """Cardinality rules the walk checks itself on snapshot nodes."""

    required: tuple[tuple[str, tuple[str, ...]], ...]  # (label, JSON names satisfying it)
    choices: tuple[tuple[str, tuple[str, ...]], ...]  # (label, JSON names of its variants)


def resource_node(resource_type: str, engine: Engine = "r4") -> Node | None:
    """Node of an R4 resource type, None if the type is not R4."""
    if not r4.is_resource_type(resource_type):
        return None
    if engine == "r4":
        return node(resource_type, resource_type, "r4")
    if resource_type in r4_gaps.FALLBACK_TYPES:
        return node(resource_type, resource_type)
    return node(resource_type) if models.model_class(resource_type) else None


def _rules(owner: Node) -> Rules:
    required: dict[str, list[str]] = {}
    choices: dict[str, list[str]] = {}
    for el in owner.elements.values():
        label = f"{el.name}[x]" if el.choice else el.name
        names = [el.json_name, f"_{el.json_name}"] if el.extensible else [el.json_name]
        if el.min > 0:
            required.setdefault(label, []).extend(names)
        if el.choice:
            choices.setdefault(label, []).append(el.json_name)
    return Rules(
        tuple((k, tuple(v)) for k, v in required.items()),
        tuple((k, tuple(v)) for k, v in choices.items() if len(v) > 1),
    )


def _model_elements(owner: Node) -> dict[str, Element]:
    model = owner.model
    out: dict[str, Element] = {}
    ext_gap = model in r4_gaps.R4B_MISSING_PRIMITIVE_EXTENSIONS
    for spec in models.fields(model).values():
        if (model, spec.name) in r4_gaps.R4B_ONLY_ELEMENTS:
            continue
        prim = primitive(spec.type_code)
        out[spec.name] = Element(
            json_name=spec.name,
            name=spec.choice or spec.name,
            type_code=spec.type_code,
            is_list=spec.is_list,
            min=1 if spec.required else 0,
            choice=spec.choice is not None,
            node=node(spec.target) if spec.target else None,
            primitive=prim,
            extensible=(
                prim is not None and spec.name != "id" and (model, spec.name) not in _NOT_EXTENSIBLE
            ),
            r4b_extension_gap=ext_gap and prim is not None and not spec.primitive_extension,
        )
    for (holder, json_name), (stem, type_code) in r4_gaps.R4B_MISSING_ELEMENTS.items():
        if holder == model:
            out[json_name] = Element(
                json_name, stem, type_code, False, 0, True, node(type_code), None, False, True
            )
    return out


def _snapshot_elements(owner: Node) -> dict[str, Element]:
    assert owner.path is not None
    out: dict[str, Element] = {}
    if owner.model in r4.complex_types():
        infos = r4.datatype_children(owner.model, owner.path)
    else:
        infos = r4.children(owner.model, owner.path)
    for info in infos.values():
        if info.is_choice:
            stem = info.name[:-3]
            for code in info.types:
                json_name = stem + code[0].upper() + code[1:]
                out[json_name] = _snapshot_element(owner, json_name, stem, code, info, True)
        else:
            out[info.name] = _snapshot_element(owner, info.name, info.name, None, info, False)
    return out


def _snapshot_element(
    owner: Node, json_name: str, name: str, code: str | None, info: r4.ElementInfo, choice: bool
) -> Element:
    ref = info.content_reference
    if code is None:
        code = "BackboneElement" if ref else info.types[0]
    content: Node | None = None
    engine = owner.engine
    if ref is not None:
        content = node(owner.model, ref, engine)
    elif code in ("BackboneElement", "Element"):
        content = node(owner.model, info.path, engine)
    elif code == _ELEMENT_ID:
        code = _system_string(owner, info)
    elif primitive(code) is None and code != "Resource":
        if engine == "r4" and code in r4.complex_types():
            content = node(code, code, "r4")
        elif engine == "r4b" and models.has_model(code):
            content = node(code)
    prim = primitive(code)
    extensible = prim is not None and info.types[0] != _ELEMENT_ID
    return Element(
        json_name, name, code, info.is_array, info.min, choice, content, prim, extensible
    )


def _system_string(owner: Node, info: r4.ElementInfo) -> str:
    """The FHIR type of an element the snapshot types as System.String: a resource's ``id`` is
    an ``id``, ``Extension.url`` a ``uri``, every element id a ``string`` (all without a ``_name``
    sibling: they are XML attributes)."""
    if info.path == "Extension.url":
        return "uri"
    if info.path == f"{owner.model}.id" and r4.is_resource_type(owner.model):
        return "id"
    return "string"
