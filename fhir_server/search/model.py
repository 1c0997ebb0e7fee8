"""The search engine's shared vocabulary: parameter definitions, index entries and the query AST.

Three producers and three consumers meet here, so everything is plain frozen data:

* the **registry** builds :class:`SearchParamDef` (one per resource type and code) from the
  official R4 SearchParameters (http://hl7.org/fhir/R4/searchparameter-registry.html);
* the **indexer** turns a resource into a :class:`ResourceIndex` at write time, and every storage
  backend stores it with the resource in the same unit of work;
* the **parser** turns request parameters into :class:`Criteria` (the AST); every backend compiles
  it to its own query language, and the in-memory matcher evaluates it as the test oracle.

Units: instants are integers, **microseconds since 1970-01-01T00:00:00Z**, and every range is
inclusive at both ends (``2020`` is ``[2020-01-01T00:00:00.000000Z, 2020-12-31T23:59:59.999999Z]``).
Open ends are :data:`MIN_INSTANT` / :data:`MAX_INSTANT`; open numeric ends are ``-inf``/``inf``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ParamType = Literal[
    "number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"
]

#: Bounds of an open-ended date range (microseconds since the epoch, inclusive).
MIN_INSTANT = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
MAX_INSTANT = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z

#: Codes of the parameters every resource type has (search.html#all), answered by the engine.
ID_PARAM = "_id"


# --- definitions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Component:
    """One component of a composite parameter: the component parameter and its expression,
    relative to each element the composite's own expression selects."""

    param: SearchParamDef
    expression: str


@dataclass(frozen=True, slots=True)
class SearchParamDef:
    """One search parameter as it applies to one resource type.

    ``expression`` is the FHIRPath for this type only (the terms of the official union that start
    with ``resource_type``, or ``Resource.``/``DomainResource.`` ones rewritten), or None for a
    parameter the engine answers itself (``_id``) or cannot index (``_text``, ``_content``).
    """

    code: str
    resource_type: str
    type: ParamType
    expression: str | None
    url: str
    description: str = ""
    targets: tuple[str, ...] = ()  # reference target types
    components: tuple[Component, ...] = ()  # composite parameters only
    modifiers: tuple[str, ...] = ()  # as declared (R4 SearchParameter.modifier), informative
    comparators: tuple[str, ...] = ()  # as declared, informative


# --- index entries (write side) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StringEntry:
    """``normalized``: lower-cased, accents removed, whitespace collapsed (see values.py)."""

    normalized: str
    exact: str


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """A code with its system (None when the element has none, e.g. a bare ``code``), and the
    display/text the ``:text`` modifier searches (normalised like strings). A CodeableConcept
    gives one entry per coding plus, if it has ``text``, an entry with only ``text``.
    Identifiers carry their ``type`` coding for ``:of-type``."""

    system: str | None
    code: str | None
    text: str | None = None
    type_system: str | None = None
    type_code: str | None = None


@dataclass(frozen=True, slots=True)
class DateEntry:
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class NumberEntry:
    value: float


@dataclass(frozen=True, slots=True)
class QuantityEntry:
    """A Quantity (``low == high``), a Range, or a Quantity with a comparator (one open end).
    ``canonical_*`` hold the value converted to the UCUM canonical unit when the unit is a UCUM
    code the engine knows, else None."""

    low: float
    high: float
    system: str | None
    code: str | None
    unit: str | None
    canonical_low: float | None = None
    canonical_high: float | None = None
    canonical_code: str | None = None


@dataclass(frozen=True, slots=True)
class ReferenceEntry:
    """A reference. Relative ``Patient/1`` gives type and id; an absolute URL gives ``url`` and,
    when it ends in ``Type/id``, type and id as well; a canonical gives ``url`` (and
    ``version`` after ``|``); a logical reference gives the identifier fields."""

    target_type: str | None
    target_id: str | None
    url: str | None = None
    version: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


@dataclass(frozen=True, slots=True)
class UriEntry:
    uri: str


IndexEntry = (
    StringEntry | TokenEntry | DateEntry | NumberEntry | QuantityEntry | ReferenceEntry | UriEntry
)


@dataclass(frozen=True, slots=True)
class CompositeEntry:
    """One element selected by a composite parameter: per component (in definition order), the
    entries that component extracts from that same element."""

    parts: tuple[tuple[IndexEntry, ...], ...]


@dataclass(frozen=True, slots=True)
class ResourceIndex:
    """Everything search needs from one resource version.

    ``entries`` maps a parameter code to its entries; a parameter that extracts nothing is absent
    (that is what ``:missing=true`` finds). ``compartments`` lists the compartments the resource
    belongs to as ``(compartment type, id)``, e.g. ``("Patient", "123")``; a Patient is in its own.
    """

    entries: Mapping[str, tuple[IndexEntry | CompositeEntry, ...]] = field(default_factory=dict)
    compartments: tuple[tuple[str, str], ...] = ()


# --- the query AST (read side) ------------------------------------------------------------------

Prefix = Literal["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"]


@dataclass(frozen=True, slots=True)
class TokenValue:
    """``code`` (any system), ``system|code``, ``|code`` (system is ``""``: no system) or
    ``system|`` (code None). With ``:text`` the text is in ``code`` (system None).
    With ``:of-type`` system/code are the identifier type and ``value`` the identifier value."""

    system: str | None
    code: str | None
    value: str | None = None


@dataclass(frozen=True, slots=True)
class StringValue:
    value: str  # as sent; compilers normalise with values.normalize_string


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: Prefix
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class NumberValue:
    """``value`` as sent; ``[low, high)`` the implicit range of its precision
    (search.html#number: ``100`` means ``[99.5, 100.5)``): ``low`` inclusive, ``high`` exclusive.
    QuantityValue's ``low``/``high`` follow the same rule."""

    prefix: Prefix
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    prefix: Prefix
    value: float
    low: float
    high: float
    system: str | None  # None: any
    code: str | None  # None: any (matches code or unit)


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """``Type/id`` (type set), bare ``id`` (type None), an absolute URL outside this server
    (``url`` set), a canonical (``url`` and maybe ``version``), or with ``:identifier``
    ``identifier_system``/``identifier_value``."""

    target_type: str | None
    target_id: str | None
    url: str | None = None
    version: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


@dataclass(frozen=True, slots=True)
class UriValue:
    uri: str


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """One value per component, in definition order (``a$b``)."""

    parts: tuple[SearchValue, ...]


SearchValue = (
    TokenValue
    | StringValue
    | DateValue
    | NumberValue
    | QuantityValue
    | ReferenceValue
    | UriValue
    | CompositeValue
)


@dataclass(frozen=True, slots=True)
class ParamTest:
    """One parameter occurrence: the resource matches if **any** value matches (comma = OR).

    ``modifier`` is None or one of: ``exact``, ``contains`` (string); ``text``, ``not``,
    ``of-type``, ``above``, ``below``, ``in``, ``not-in`` (token); ``identifier`` or a resource
    type (reference, the type is then also in each value); ``above``, ``below`` (uri);
    ``missing`` (any type; ``values`` is then empty and ``missing`` says which way).
    ``:not`` matches resources having **no** value equal to any of the values (search.html#token).
    ``_id`` is a ParamTest on the ``_id`` parameter with TokenValue(system=None, code=id).
    """

    param: SearchParamDef
    modifier: str | None
    values: tuple[SearchValue, ...]
    missing: bool | None = None


@dataclass(frozen=True, slots=True)
class ChainTest:
    """``param:Type.rest=value``: resources whose reference ``param`` points to a resource of one
    of ``target_types`` that satisfies ``test`` (which may itself be a chain)."""

    param: SearchParamDef
    target_types: tuple[str, ...]
    test: Test


@dataclass(frozen=True, slots=True)
class HasTest:
    """``_has:source_type:param:rest=value``: resources referenced, through ``param`` (a
    reference parameter of ``source_type``), by a ``source_type`` resource satisfying ``test``."""

    source_type: str
    param: SearchParamDef
    test: Test


@dataclass(frozen=True, slots=True)
class CompartmentTest:
    """Membership of a compartment (``GET Patient/123/Observation``)."""

    compartment_type: str
    compartment_id: str


Test = ParamTest | ChainTest | HasTest | CompartmentTest


@dataclass(frozen=True, slots=True)
class SortKey:
    """``_sort``: by a parameter's values (lowest value ascending, highest descending; resources
    without a value last either way). ``_id`` and ``_lastUpdated`` are parameters like others."""

    param: SearchParamDef
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Criteria:
    """What to find: resources of ``types`` (empty: every type) satisfying all ``tests``."""

    types: tuple[str, ...]
    tests: tuple[Test, ...] = ()
