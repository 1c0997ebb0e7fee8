"""One pass over a resource's JSON, checking everything FHIR R4 requires of its structure.

The walk follows the R4 view of :mod:`schema` and checks, everywhere: known property names,
array versus single value, the JSON kind and lexical form of primitives, no ``null`` (except as
a placeholder in a primitive array, aligned with its ``_name`` array), no empty object, array or
string, and nested resources (known R4 ``resourceType``). See http://hl7.org/fhir/R4/json.html.
With the ``"r4"`` engine (the server's) every node comes from the R4 snapshots, and the walk
also checks minimum cardinality and one value per choice itself: nothing else runs.

With the ``"r4b"`` engine, kept as an independent cross-check for the tests (the server used it
until the ingest fast path: it builds the full fhir.resources object graph, about 20x slower),
objects whose kind R4B models faithfully are also validated by R4B, once per *unit* (a resource,
or a datatype inside a fallback resource). R4B alone checks there what the walk does not:
cardinality minimums, one value per choice, calendar and range details. Its errors at locations
the walk already reported, or matching :data:`r4_gaps.R4B_ERROR_FILTERS`, are dropped. Nested
resources R4B cannot take (fallback or non-R4 types) are swapped for ``{}`` in the copy R4B sees.
Fallback types (R4 snapshot nodes) get the cardinality checks from the walk itself.
"""

from __future__ import annotations

from typing import Any

from fhir_server.core import models
from fhir_server.validation import r4_gaps, report, schema
from fhir_server.validation.paths import Loc, resolve
from fhir_server.validation.report import Problem
from fhir_server.validation.schema import Element, Node

NULL = "null is not allowed; omit the element instead"
NULL_ITEM = "null is only allowed in a primitive array, aligned with a '_name' entry"
NOT_SINGLE = "expected a single value, not a JSON array"
NOT_ARRAY = "expected a JSON array"
EMPTY_ARRAY = "an empty array is not allowed"
EMPTY_OBJECT = "an empty object is not allowed"


class Walker:
    """Collects the problems of one resource."""

    def __init__(self, engine: schema.Engine = "r4") -> None:
        self.engine: schema.Engine = engine
        self.problems: list[Problem] = []
        self._reported: set[Loc] = set()
        self._standins: list[list[Loc]] = []

    def report(self, loc: Loc, code: str, detail: str, *, mask: bool = True) -> None:
        """Record a problem; ``mask`` drops R4B's own errors at and below ``loc``."""
        self.problems.append(Problem(loc, code, detail))
        if mask:
            self._reported.add(loc)

    # -- units -------------------------------------------------------------------------------

    def resource(self, data: dict[str, Any], node: Node, loc: Loc) -> None:
        """A resource of a known R4 type, validated as its own unit."""
        if node.from_snapshot:
            self.walk_object(data, node, loc, resource=True)
        else:
            self.r4b_unit(data, node, loc, resource=True)

    def r4b_unit(self, data: dict[str, Any], node: Node, loc: Loc, resource: bool = False) -> None:
        """Walk ``data``, then validate it with its R4B model and keep the errors that count."""
        standins: list[Loc] = []
        self._standins.append(standins)
        try:
            self.walk_object(data, node, loc, resource=resource)
        finally:
            self._standins.pop()
        payload = _with_standins(data, [s[len(loc) :] for s in standins]) if standins else data
        for err in models.validate(node.model, payload):
            self._model_error(err, data, node, loc)

    def _model_error(self, err: models.ModelError, data: object, node: Node, loc: Loc) -> None:
        rel = err.loc[:-1] if err.loc[-1:] == ("root",) else err.loc
        full = loc + rel
        if self._masked(full, below=err.type == "model_validation_format"):
            return
        res = resolve(node, data, rel)
        model = res.parent.model if res.parent else None
        kind = res.element.type_code if res.element else None
        for known in r4_gaps.R4B_ERROR_FILTERS:
            if known.matches(err.type, model, res.key, kind, err.ctx):
                return
        code, detail, child = report.translate(err, res)
        self.report(full if child is None else (*full, child), code, detail)

    def _masked(self, loc: Loc, *, below: bool) -> bool:
        if any(loc[:i] in self._reported for i in range(len(loc) + 1)):
            return True
        return below and any(r[: len(loc)] == loc for r in self._reported)

    # -- objects -----------------------------------------------------------------------------

    def walk_object(
        self, data: dict[str, Any], node: Node, loc: Loc, *, resource: bool = False
    ) -> None:
        """Every property of an object of kind ``node`` (the hot path: primitives inline)."""
        els = node.elements
        for key, value in data.items():
            el = els.get(key)
            if el is None:
                self.other_key(key, value, loc, data, node, resource)
            elif el.is_list:
                self.array(el, value, (*loc, key), data, node)
            elif value is None or isinstance(value, list):
                self.report((*loc, key), "structure", NULL if value is None else NOT_SINGLE)
            elif el.primitive is None:
                self.value(el, value, (*loc, key), node)
            elif not el.primitive.is_valid(value):
                self.bad_primitive(el, value, (*loc, key))
        if node.from_snapshot:
            rules = node.rules
            if rules.required or rules.choices:
                self.cardinality(data, node, loc)
            return
        lax = r4_gaps.R4B_LAX_REQUIRED.get(node.model)
        if lax is not None:
            for name in lax[0]:
                if name not in data:
                    self.report((*loc, name), "required", report.missing(name), mask=False)

    def other_key(
        self, key: str, value: object, loc: Loc, data: dict[str, Any], node: Node, resource: bool
    ) -> None:
        """A property that is not an element: a primitive's ``_name`` sibling, or unknown."""
        base = node.elements.get(key[1:]) if key[:1] == "_" else None
        if base is not None and base.extensible:
            self.primitive_extension(base, value, (*loc, key), data, node)
        elif not (resource and key == "resourceType"):
            self.report((*loc, key), "structure", report.unknown(key))

    def cardinality(self, data: dict[str, Any], node: Node, loc: Loc) -> None:
        """Minimum cardinality and one value per choice (snapshot nodes; R4B does the rest)."""
        rules = node.rules
        for label, names in rules.required:
            if not any(name in data for name in names):
                key = label.removesuffix("[x]")
                self.report((*loc, key), "required", report.missing(label), mask=False)
        for label, variants in rules.choices:
            if sum(1 for v in variants if v in data or f"_{v}" in data) > 1:
                detail = f"only one of '{label}' may be present"
                self.report(loc, "structure", detail, mask=False)

    def array(
        self, el: Element, value: object, loc: Loc, owner: dict[str, Any], node: Node
    ) -> None:
        """A repeating element: a non-empty array of values (nulls only as placeholders)."""
        if not isinstance(value, list) or not value:
            self.report(loc, "structure", NOT_ARRAY if value != [] else EMPTY_ARRAY)
            return
        prim = el.primitive
        partner = owner.get(f"_{el.json_name}") if el.extensible else None
        for i, item in enumerate(value):
            if item is None:
                if not _filled(partner, i):
                    self.report((*loc, i), "structure", NULL_ITEM if el.extensible else NULL)
            elif prim is None:
                self.value(el, item, (*loc, i), node)
            elif not prim.is_valid(item):
                self.bad_primitive(el, item, (*loc, i))

    def bad_primitive(self, el: Element, value: object, loc: Loc) -> None:
        assert el.primitive is not None
        detail = "an empty string is not allowed" if value == "" else el.primitive.describe()
        self.report(loc, "value", detail)

    def value(self, el: Element, value: object, loc: Loc, parent: Node) -> None:
        """One non-null value of a complex element or a resource."""
        if el.is_resource:
            self.nested(value, loc, parent)
        elif not isinstance(value, dict):
            self.report(loc, "structure", "expected a JSON object")
        elif not value:
            self.report(loc, "structure", EMPTY_OBJECT)
        elif el.node is None:
            self.opaque(value, loc)
        elif el.r4b_gap or (parent.from_snapshot and not el.node.from_snapshot):
            self.r4b_unit(value, el.node, loc)
        else:
            self.walk_object(value, el.node, loc)

    def nested(self, value: object, loc: Loc, parent: Node) -> None:
        """A resource inside another (contained, Bundle.entry.resource, Parameters...)."""
        kind = value.get("resourceType") if isinstance(value, dict) else None
        node = schema.resource_node(kind, self.engine) if isinstance(kind, str) else None
        if not isinstance(value, dict) or node is None:
            if not isinstance(value, dict):
                self.report(loc, "structure", "expected a resource (JSON object)")
            elif kind is None:
                self.report((*loc, "resourceType"), "required", report.MISSING_TYPE)
            else:
                self.report((*loc, "resourceType"), "invalid", report.UNKNOWN_TYPE)
            self._standin(loc, parent)
        elif parent.from_snapshot:
            self.resource(value, node, loc)
        else:
            self.walk_object(value, node, loc, resource=True)
            if node.from_snapshot:
                self._standin(loc, parent)

    def _standin(self, loc: Loc, parent: Node) -> None:
        if not parent.from_snapshot and self._standins:
            self._standins[-1].append(loc)

    # -- primitive extensions and opaque content ---------------------------------------------

    def primitive_extension(
        self, base: Element, value: object, loc: Loc, owner: dict[str, Any], node: Node
    ) -> None:
        """A ``_name`` sibling: id and extensions of a primitive (json.html#primitive)."""
        if not base.is_list:
            if value is None or isinstance(value, list):
                self.report(loc, "structure", NULL if value is None else NOT_SINGLE)
            else:
                self.extension_object(base, value, loc, node)
            return
        values = owner.get(base.json_name)
        if not isinstance(value, list) or not value:
            self.report(loc, "structure", NOT_ARRAY if value != [] else EMPTY_ARRAY)
            return
        if isinstance(values, list) and len(values) != len(value):
            detail = f"must have as many items as '{base.json_name}'"
            self.report(loc, "structure", detail, mask=False)
        for i, item in enumerate(value):
            if item is not None:
                self.extension_object(base, item, (*loc, i), node)
            elif not (isinstance(values, list) and i < len(values)):
                # a null facing a null is reported once, on the value array
                self.report((*loc, i), "structure", NULL_ITEM)

    def extension_object(self, base: Element, value: object, loc: Loc, parent: Node) -> None:
        if not isinstance(value, dict):
            self.report(loc, "structure", "expected a JSON object")
        elif not value:
            self.report(loc, "structure", EMPTY_OBJECT)
        elif self.engine == "r4":
            self.walk_object(value, schema.primitive_extension("r4"), loc)
        elif parent.from_snapshot or base.r4b_extension_gap:
            self.r4b_unit(value, schema.primitive_extension("r4b"), loc)
        else:
            self.walk_object(value, schema.primitive_extension("r4b"), loc)

    def opaque(self, value: object, loc: Loc) -> None:
        """Content of a datatype no model describes: only the JSON shape rules."""
        if value is None:
            self.report(loc, "structure", NULL)
        elif value == "" or value == {} or value == []:
            self.report(loc, "structure", "empty values are not allowed")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.opaque(item, (*loc, key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.opaque(item, (*loc, i))


def _filled(partner: object, index: int) -> bool:
    """True if the aligned array has a non-null item at ``index``."""
    return isinstance(partner, list) and index < len(partner) and partner[index] is not None


def _with_standins(data: dict[str, Any], locs: list[Loc]) -> dict[str, Any]:
    """A copy of ``data`` with an empty object at each location; only the paths are copied."""
    root: dict[str, Any] = dict(data)
    for loc in locs:
        container: Any = root
        for step in loc[:-1]:
            child = container[step]
            child = dict(child) if isinstance(child, dict) else list(child)
            container[step] = child
            container = child
        container[loc[-1]] = {}
    return root
