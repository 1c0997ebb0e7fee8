"""Every reference-like string of a resource, and the local references among them.

:func:`reference_sites` walks a resource's JSON with the R4 view of :mod:`schema` (resource and
data type elements, content references such as ``Questionnaire.item.item``, choice types,
extensions anywhere, primitive ``_name`` siblings, contained and other nested resources, each
with its own type) and yields a :class:`ReferenceSite` for every element of type Reference (its
``reference`` string), uri, url, canonical, oid and uuid. A site says where the string is
(``holder[key]``, or ``holder[key][index]`` in an array), so a caller may rewrite it in place (a
transaction rewriting ``urn:uuid:`` fullUrls). Paths are FHIRPath as :mod:`paths` writes them:
``Observation.contained[0].subject``, ``Patient.extension[1].value.ofType(Reference)``.

:func:`local_references` keeps the Reference sites that name a resource of this server (not
inside the entries of a stored Bundle: those resolve inside the Bundle, bundle.html#references) —
``Type/id`` or ``Type/id/_history/n`` (Type an R4 resource type, id a FHIR id), relative or
after ``base_url + "/"`` — for referential integrity (the storage port checks them). Never
local: ``#contained``, ``urn:uuid:``/``urn:oid:``, URLs of other servers, references with only
an identifier or a display. With ``strict``, a local reference to a type the element does not
allow, or a conditional reference (``Patient?identifier=x``, only meaningful inside a
transaction, which resolves them first), is refused with 422; diagnostics name element paths
and type names, never ids or other values of the resource (RO-1.4).

The walk runs on every write: each kind of JSON object gets a plan (JSON name -> what to do)
built once, primitives that are not reference-like are skipped with one dict lookup, and only
the JSON keys present are visited. For local references the serialised form decides first: no
``"reference"`` name anywhere, nothing to walk; no extension anywhere, subtrees whose types
cannot hold a Reference (CodeableConcept, Quantity, Timing...) are not visited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from fhir_server.core import fhirjson, r4
from fhir_server.core.errors import Issue, UnprocessableResource
from fhir_server.core.ids import ID_PATTERN
from fhir_server.validation import schema
from fhir_server.validation.schema import Element, Node

#: The primitive types whose values are reference-like strings.
URI_KINDS: Final = frozenset({"uri", "url", "canonical", "oid", "uuid"})

_SITE, _REFERENCE, _COMPLEX, _RESOURCE = range(4)

#: Walk modes. ALL: every site, everywhere. LOCAL: Reference sites only, and not inside the
#: entries of a stored Bundle (their references resolve inside the Bundle, bundle.html#references).
#: LEAN: LOCAL for a resource without any extension, so subtrees whose types hold no Reference
#: (CodeableConcept, Quantity, Timing...) are not visited at all.
_ALL, _LOCAL, _LEAN = range(3)


@dataclass(frozen=True, slots=True)
class ReferenceSite:
    """One reference-like string: ``holder[key]`` (or ``holder[key][index]``) is ``value``.

    ``path`` is the FHIRPath of the element (for a Reference, the Reference element itself, not
    its ``.reference``); ``targets`` the resource types a Reference may point at (None: any),
    always None for the other kinds.
    """

    path: str
    holder: dict[str, Any]
    key: str
    index: int | None
    kind: str  # "Reference" | "uri" | "url" | "canonical" | "oid" | "uuid"
    targets: frozenset[str] | None
    value: str


@dataclass(frozen=True, slots=True)
class LocalReference:
    """A reference to a resource of this server, found at ``path`` (a FHIRPath)."""

    path: str
    target_type: str
    target_id: str
    target_version: int | None = None

    @property
    def target(self) -> str:
        return f"{self.target_type}/{self.target_id}"


class _Slot:
    """What the walk does with one JSON name of one kind of object in one mode; ``plan`` is the
    plan of the value's content, built on first use (kinds are recursive: Extension, Identifier)."""

    __slots__ = ("_plan", "content", "is_list", "kind", "mode", "segment", "tag", "targets")

    def __init__(
        self,
        tag: int,
        segment: str,
        is_list: bool,
        mode: int,
        *,
        kind: str = "",
        targets: frozenset[str] | None = None,
        content: Node | None = None,
    ) -> None:
        self.tag = tag
        self.segment = segment
        self.is_list = is_list
        self.mode = mode
        self.kind = kind
        self.targets = targets
        self.content = content
        self._plan: Plan | None = None

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            assert self.content is not None
            self._plan = _plan(self.content, self.mode)
        return self._plan


Plan = dict[str, _Slot]
_PLANS: dict[tuple[Node, int], Plan] = {}
_HOLDS_REFERENCES: dict[Node, bool] = {}


def _plan(node: Node, mode: int) -> Plan:
    plan = _PLANS.get((node, mode))
    if plan is None:
        plan = _PLANS[node, mode] = _build_plan(node, mode)
    return plan


def _build_plan(node: Node, mode: int) -> Plan:
    plan: Plan = {}
    for json_name, el in node.elements.items():
        segment = f".{el.name}.ofType({el.type_code})" if el.choice else f".{el.name}"
        slot = _slot(node, el, segment, mode)
        if slot is not None:
            plan[json_name] = slot
        if el.extensible and mode != _LEAN:  # `_name`: id and extensions of the primitive
            extension = schema.primitive_extension("r4")
            plan["_" + json_name] = _Slot(_COMPLEX, segment, el.is_list, mode, content=extension)
    return plan


def _slot(node: Node, el: Element, segment: str, mode: int) -> _Slot | None:
    code = el.type_code
    if el.primitive is not None:
        if code in URI_KINDS and mode == _ALL:
            return _Slot(_SITE, segment, el.is_list, mode, kind=code)
        return None
    if el.is_resource:
        if mode != _ALL and node.path == "Bundle.entry":
            return None
        return _Slot(_RESOURCE, segment, el.is_list, mode)
    if el.node is None:
        return None
    if code == "Reference":
        element_path = f"{node.path}.{el.name}[x]" if el.choice else f"{node.path}.{el.name}"
        targets = r4.reference_targets(element_path)
        return _Slot(_REFERENCE, segment, el.is_list, mode, targets=targets, content=el.node)
    if mode == _LEAN and (code == "Extension" or not _holds_references(el.node)):
        return None
    return _Slot(_COMPLEX, segment, el.is_list, mode, content=el.node)


def _holds_references(node: Node) -> bool:
    """True if an object of this kind may hold a Reference or a resource without extensions
    (Identifier may: its assigner; CodeableConcept, Quantity, Timing... may not)."""
    found = _HOLDS_REFERENCES.get(node)
    if found is None:
        found = _HOLDS_REFERENCES[node] = _reaches_reference(node)
    return found


def _reaches_reference(start: Node) -> bool:
    seen = {start}
    todo = [start]
    while todo:
        for el in todo.pop().elements.values():
            if el.type_code == "Reference" or el.is_resource:
                return True
            child = el.node
            if child is not None and el.type_code != "Extension" and child not in seen:
                seen.add(child)
                todo.append(child)
    return False


#: A site before it becomes a :class:`ReferenceSite`: the same fields, in the same order.
_Raw = tuple[str, dict[str, Any], str, int | None, str, frozenset[str] | None, str]


def _resource(data: dict[str, Any], prefix: str, out: list[_Raw], mode: int) -> None:
    kind = data.get("resourceType")
    node = schema.resource_node(kind) if isinstance(kind, str) else None
    if node is not None:
        _walk(data, _plan(node, mode), prefix or node.model, out)


def _walk(data: dict[str, Any], plan: Plan, prefix: str, out: list[_Raw]) -> None:
    """Append the sites below ``data`` (an object of the kind ``plan`` describes) to ``out``.
    The hot path of every write: one call per object visited, single values and array items
    handled inline."""
    for key, value in data.items():
        slot = plan.get(key)
        if slot is None:
            continue
        tag = slot.tag
        path = prefix + slot.segment
        if slot.is_list:
            if type(value) is not list:
                continue
            pairs: Any = enumerate(value)
        else:
            pairs = ((None, value),)
        for index, item in pairs:
            here = path if index is None else f"{path}[{index}]"
            if tag == _SITE:
                if type(item) is str:
                    out.append((here, data, key, index, slot.kind, None, item))
            elif type(item) is not dict:
                continue
            elif tag == _COMPLEX:
                _walk(item, slot.plan, here, out)
            elif tag == _REFERENCE:
                literal = item.get("reference")
                if type(literal) is str:
                    out.append((here, item, "reference", None, "Reference", slot.targets, literal))
                _walk(item, slot.plan, here, out)
            else:  # _RESOURCE
                _resource(item, here, out, slot.mode)


def _raw_sites(resource: dict[str, Any], mode: int) -> list[_Raw]:
    out: list[_Raw] = []
    if isinstance(resource, dict):
        _resource(resource, "", out, mode)
    return out


def reference_sites(resource: dict[str, Any]) -> Iterator[ReferenceSite]:
    """Every Reference, uri, url, canonical, oid and uuid string of the resource, in document
    order (nested resources included); nothing for an object that is not an R4 resource."""
    return (_site(*raw) for raw in _raw_sites(resource, _ALL))


_SETTERS = tuple(getattr(ReferenceSite, name).__set__ for name in ReferenceSite.__slots__)
_SET_PATH, _SET_HOLDER, _SET_KEY, _SET_INDEX, _SET_KIND, _SET_TARGETS, _SET_VALUE = _SETTERS
assert ReferenceSite.__slots__ == ("path", "holder", "key", "index", "kind", "targets", "value")


def _site(
    path: str,
    holder: dict[str, Any],
    key: str,
    index: int | None,
    kind: str,
    targets: frozenset[str] | None,
    value: str,
) -> ReferenceSite:
    """``ReferenceSite(...)`` in half the time: a frozen dataclass's ``__init__`` goes through
    ``object.__setattr__`` for each field, the slots' own setters do not (a resource has
    dozens of sites: every Coding.system, Identifier.system, Extension.url...)."""
    site: ReferenceSite = object.__new__(ReferenceSite)
    _SET_PATH(site, path)
    _SET_HOLDER(site, holder)
    _SET_KEY(site, key)
    _SET_INDEX(site, index)
    _SET_KIND(site, kind)
    _SET_TARGETS(site, targets)
    _SET_VALUE(site, value)
    return site


# --- local references -----------------------------------------------------------------------

#: :func:`parse_local` result for a reference written as a search (``Patient?identifier=x``).
CONDITIONAL: Final = "conditional"


def parse_local(reference: str, base_url: str = "") -> tuple[str, str, int | None] | str | None:
    """``(type, id, version or None)`` if ``reference`` names a resource of this server,
    :data:`CONDITIONAL` if it is a conditional reference (``Type?query``), None otherwise."""
    if base_url and reference.startswith(base_url) and reference[len(base_url) :][:1] == "/":
        reference = reference[len(base_url) + 1 :]
    if "?" in reference:  # a search: Type?query (another server's URL is no type)
        return CONDITIONAL if r4.is_resource_type(reference.partition("?")[0]) else None
    if ":" in reference or reference[:1] == "#":
        return None  # an absolute URL (another server, urn:uuid:, urn:oid:) or #contained
    parts = reference.split("/")
    if len(parts) == 2:
        version = None
    elif len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit() and parts[3].isascii():
        version = int(parts[3])
    else:
        return None
    if r4.is_resource_type(parts[0]) and ID_PATTERN.fullmatch(parts[1]):
        return parts[0], parts[1], version
    return None


def local_references(
    resource: dict[str, Any],
    base_url: str = "",
    *,
    strict: bool = False,
    body: bytes | None = None,
) -> list[LocalReference]:
    """The references of ``resource`` (contained and nested resources included, but not the
    entries of a stored Bundle, whose references resolve inside the Bundle) that name a
    resource of this server, in document order; ``base_url`` is the server's FHIR base
    (absolute references under it are local), "" to count relative references only.

    With ``strict`` (referential integrity on), raise :class:`UnprocessableResource` (422)
    listing every local reference whose type the element does not allow and every conditional
    reference; without, those are skipped (wrong types are still returned). ``body``: the
    resource as serialised JSON (e.g. by :func:`fhirjson.dumps`), if the caller has it (spares
    serialising it again to choose how to walk)."""
    mode = _walk_mode(fhirjson.dumps(resource) if body is None else body)
    if mode is None:
        return []
    base = base_url.rstrip("/")
    found: list[LocalReference] = []
    issues: list[Issue] = []
    for raw in _raw_sites(resource, mode):
        parsed = parse_local(raw[6], base)
        if parsed is None:
            continue
        if isinstance(parsed, str):
            if strict:
                issues.append(_conditional_issue(raw[0]))
            continue
        target_type, target_id, version = parsed
        targets = raw[5]
        if strict and targets is not None and target_type not in targets:
            issues.append(_wrong_type_issue(raw[0], targets, target_type))
            continue
        found.append(LocalReference(raw[0], target_type, target_id, version))
    if issues:
        first = issues[0].diagnostics
        count = f"{len(issues)} reference{'s' if len(issues) > 1 else ''}"
        raise UnprocessableResource(f"{count} cannot be stored; first: {first}", issues=issues)
    return found


def _walk_mode(text: bytes) -> int | None:
    """LEAN when the resource has no extension anywhere, LOCAL otherwise; None when it has no
    ``reference`` key at all (nothing to walk). Decided on the serialised form: a JSON name is
    written there between plain quotes (a quote inside a string is escaped), so a key is never
    missed; a string value that looks like one only costs the full walk."""
    if b'"reference"' not in text:
        return None
    return _LOCAL if b'xtension"' in text else _LEAN


def _wrong_type_issue(path: str, targets: frozenset[str], target_type: str) -> Issue:
    allowed = ", ".join(sorted(targets))
    detail = f"{path} may refer to {allowed} only, not to a {target_type}"
    return Issue("error", "invalid", detail, (path,))


def _conditional_issue(path: str) -> Issue:
    detail = (
        f"{path} is a conditional reference (Type?search), which is resolved only inside "
        "a transaction Bundle; refer to the resource as Type/id"
    )
    return Issue("error", "invalid", detail, (path,))
