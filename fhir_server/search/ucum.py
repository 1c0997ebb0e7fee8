"""UCUM conversion to one canonical unit per dimension, for quantity search across units.

``5 mg/dL`` and ``0.05 g/L`` are the same concentration: both are indexed (and searched) also as
``50 g.m-3``. Only the units clinical data commonly uses are known; any other code gives None and
the quantity is then matched on its exact system and code only (search.html#quantity).

Canonical forms: a product of base units in the fixed order ``g m s K mol eq osm [IU] U``, each
followed by its exponent when it is not 1, joined by ``.``; ``1`` for a dimensionless value.
Examples: ``kg`` -> ``g``, ``mL`` -> ``m3``, ``mg/dL`` -> ``g.m-3``, ``mmol/L`` -> ``m-3.mol``,
``/min`` -> ``s-1``, ``mm[Hg]`` and ``kPa`` -> ``g.m-1.s-2``, ``%`` -> ``1``, ``Cel`` -> ``K``.

Where this departs from UCUM's own canonical units, on purpose: ``mol``, ``eq`` and ``osm`` stay
base units instead of becoming Avogadro counts (UCUM makes ``eq`` and ``osm`` equal to ``mol``,
which is clinically misleading for polyvalent ions); ``[IU]`` and ``U`` are kept as arbitrary
units, converted only across metric prefixes. Temperatures ``Cel`` and ``[degF]`` are affine and
convert to kelvin only when they are the whole unit (never inside a quotient).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache, lru_cache

_BASES = ("g", "m", "s", "K", "mol", "eq", "osm", "[IU]", "U")

# atom -> (factor to the canonical form, dimension exponents in _BASES order)
_Dim = tuple[int, ...]


def _dim(**exponents: int) -> _Dim:
    """Exponents by base name (``IU`` for ``[IU]``), in :data:`_BASES` order."""
    return tuple(exponents.get(base.strip("[]"), 0) for base in _BASES)


@cache
def _atoms() -> dict[str, tuple[Decimal, _Dim, bool]]:
    """Known unit atoms: (factor, dimension, whether metric prefixes apply).

    Factors are decimals so that ``10*3/uL`` is exactly ``1e12 m-3``, not ``999999999999.9999``.
    """
    length, mass, time = _dim(m=1), _dim(g=1), _dim(s=1)
    pressure = _dim(g=1, m=-1, s=-2)
    d = Decimal
    day = d(86400)
    return {
        "g": (d("1.0"), mass, True),
        "m": (d("1.0"), length, True),
        "s": (d("1.0"), time, True),
        "L": (d("1e-3"), _dim(m=3), True),
        "l": (d("1e-3"), _dim(m=3), True),
        "mol": (d("1.0"), _dim(mol=1), True),
        "eq": (d("1.0"), _dim(eq=1), True),
        "osm": (d("1.0"), _dim(osm=1), True),
        "Pa": (d("1e3"), pressure, True),  # 1 Pa = 1 kg.m-1.s-2 = 1000 g.m-1.s-2
        "[IU]": (d("1.0"), _dim(IU=1), True),
        "[iU]": (d("1.0"), _dim(IU=1), True),
        "U": (d("1.0"), _dim(U=1), True),
        "K": (d("1.0"), _dim(K=1), False),
        "min": (d("60.0"), time, False),
        "h": (d("3600.0"), time, False),
        "d": (d("86400.0"), time, False),
        "wk": (d("604800.0"), time, False),
        "mo": (d("30.4375") * day, time, False),  # mean Julian month (UCUM mo = mo_j)
        "a": (d("365.25") * day, time, False),  # Julian year (UCUM a = a_j)
        "m[Hg]": (d("133322.0") * 1000, pressure, True),  # 133.3220 kPa
        "[in_i]": (d("0.0254"), length, False),
        "[ft_i]": (d("0.3048"), length, False),
        "[lb_av]": (d("453.59237"), mass, False),
        "[oz_av]": (d("28.349523125"), mass, False),
        "%": (d("1e-2"), _dim(), False),
        "[ppm]": (d("1e-6"), _dim(), False),
    }


# Metric prefixes, longest first so that "da" wins over "d" (UCUM prefixes are case-sensitive).
_PREFIXES: tuple[tuple[str, Decimal], ...] = (
    ("da", Decimal("1e1")),
    ("k", Decimal("1e3")),
    ("M", Decimal("1e6")),
    ("G", Decimal("1e9")),
    ("h", Decimal("1e2")),
    ("d", Decimal("1e-1")),
    ("c", Decimal("1e-2")),
    ("m", Decimal("1e-3")),
    ("u", Decimal("1e-6")),
    ("n", Decimal("1e-9")),
    ("p", Decimal("1e-12")),
    ("f", Decimal("1e-15")),
)

_TERM = re.compile(r"(?P<atom>[A-Za-z%]+(?:\[[A-Za-z_]+\])?|\[[A-Za-z_]+\])(?P<exp>[+-]?[0-9]+)?")
_POWER = re.compile(r"10[*^](?P<exp>[+-]?[0-9]+)")
_NUMBER = re.compile(r"[0-9]+")
_ANNOTATION = re.compile(r"\{[^{}]*\}")
# kelvin = value * scale + offset
_AFFINE: tuple[tuple[str, float, float], ...] = (
    ("Cel", 1.0, 273.15),
    ("[degF]", 5.0 / 9.0, 273.15 - 32.0 * 5.0 / 9.0),
)


def canonical(value: float, code: str) -> tuple[float, str] | None:
    """``value`` in the UCUM unit ``code`` converted to its canonical unit, or None if unknown.

    ``canonical(5, "mg/dL")`` is ``(50.0, "g.m-3")``; ``canonical(37, "Cel")`` is
    ``(310.15, "K")``. Infinite values (open range ends) stay infinite.
    """
    for affine_code, scale, offset in _AFFINE:
        if code == affine_code:
            return value * scale + offset, "K"
    parsed = _parse(code)
    if parsed is None:
        return None
    factor, dimension = parsed
    if value != value or value in (float("inf"), float("-inf")):
        return value * float(factor), _spell(dimension)
    return float(Decimal(value) * factor), _spell(dimension)


@lru_cache(maxsize=1024)
def _parse(code: str) -> tuple[Decimal, _Dim] | None:
    """(factor, dimension) of a UCUM expression made of known terms joined by ``.`` and ``/``.

    Annotations (``{beats}``) count as 1, as in UCUM; parentheses are not supported (None).
    """
    text = _ANNOTATION.sub("", code)
    if not text:
        return (Decimal(1), _dim()) if code else None  # "{score}": an annotation alone is 1
    if any(c in text for c in "(){}"):
        return None
    factor = Decimal(1)
    dimension = [0] * len(_BASES)
    sign = 1
    position = 0
    if text.startswith("/"):
        sign, position = -1, 1
    while True:
        term = _term(text, position)
        if term is None:
            return None
        term_factor, term_dim, position = term
        factor = factor * term_factor if sign > 0 else factor / term_factor
        for index, exponent in enumerate(term_dim):
            dimension[index] += sign * exponent
        if position == len(text):
            return factor, tuple(dimension)
        operator = text[position]
        if operator not in "./":
            return None
        sign = 1 if operator == "." else -1
        position += 1


def _term(text: str, position: int) -> tuple[Decimal, _Dim, int] | None:
    """One term at ``position``: a power of ten, an integer, the empty rest of an annotation, or
    a (prefixed) unit atom with an optional exponent. Returns its factor, dimension and end."""
    if position == len(text) or text[position] in "./":
        return Decimal(1), _dim(), position  # where an annotation was, e.g. "/{1.73_m2}"
    if power := _POWER.match(text, position):
        return Decimal(1).scaleb(int(power["exp"])), _dim(), power.end()
    if (number := _NUMBER.match(text, position)) and not _TERM.match(text, number.end()):
        return Decimal(number[0]), _dim(), number.end()
    match = _TERM.match(text, position)
    if match is None:
        return None
    unit = _unit(match["atom"])
    if unit is None:
        return None
    factor, dimension = unit
    exponent = int(match["exp"]) if match["exp"] else 1
    return factor**exponent, tuple(e * exponent for e in dimension), match.end()


def _unit(atom: str) -> tuple[Decimal, _Dim] | None:
    """A known atom, or a metric prefix followed by a known prefixable atom."""
    atoms = _atoms()
    known = atoms.get(atom)
    if known is not None:
        return known[0], known[1]
    for prefix, scale in _PREFIXES:
        if atom.startswith(prefix):
            base = atoms.get(atom[len(prefix) :])
            if base is not None and base[2]:
                return scale * base[0], base[1]
    return None


def _spell(dimension: _Dim) -> str:
    parts = [
        base if exponent == 1 else f"{base}{exponent}"
        for base, exponent in zip(_BASES, dimension, strict=True)
        if exponent
    ]
    return ".".join(parts) or "1"
