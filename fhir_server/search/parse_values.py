"""Search values as sent in a URL -> the typed values of the query AST (search.html#ptypes).

Escaping (search.html#escaping): ``\\,`` ``\\$`` ``\\|`` and ``\\\\`` stand for the character
itself; the separators are split on first, while the text is still escaped, and escapes are
removed from each piece last. A backslash before any other character is kept as it is.

Every error is an :class:`InvalidRequest` naming the parameter; a value is never echoed beyond
:data:`SHOWN` characters (it may be personal data, and it may be huge).
"""

from __future__ import annotations

import re
from typing import cast

from fhir_server.core import r4
from fhir_server.core.errors import InvalidRequest
from fhir_server.search.model import (
    CompositeValue,
    DateValue,
    NumberValue,
    Prefix,
    QuantityValue,
    ReferenceValue,
    SearchParamDef,
    SearchValue,
    StringValue,
    TokenValue,
    UriValue,
)
from fhir_server.search.values import date_bounds, number_bounds

#: How many characters of a value or parameter name an error message may show.
SHOWN = 60
PREFIXES: frozenset[str] = frozenset(("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"))
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_HISTORY = re.compile(r"^(?P<path>[^/]+/[^/]+)/_history/[^/]+$")


def shown(text: str) -> str:
    """``text`` quoted for an error message, cut to :data:`SHOWN` characters. Only for names
    (parameters, modifiers, types): search values may be personal data and are never echoed
    (RO-1.4), the message says what is wrong with "the value" instead."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def bad_value(name: str, what: str) -> InvalidRequest:
    return InvalidRequest(f"Search parameter {shown(name)}: {what}", expression=[name[:SHOWN]])


def split_escaped(text: str, separator: str) -> list[str]:
    """``text`` split on each ``separator`` not preceded by an escaping backslash; the pieces
    keep their escapes (a piece may still be split on another separator)."""
    if "\\" not in text:
        return text.split(separator)  # nothing escaped: the plain split (every search pays this)
    pieces: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == separator:
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    pieces.append("".join(current))
    return pieces


def unescape(text: str) -> str:
    """Remove the escapes of ``\\,`` ``\\$`` ``\\|`` ``\\\\``; other backslashes stay."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ",$|\\":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def split_prefix(text: str) -> tuple[Prefix, str]:
    """``ge2020`` -> (``ge``, ``2020``); no prefix means ``eq`` (search.html#prefix)."""
    if len(text) > 2 and text[:2] in PREFIXES:
        return cast(Prefix, text[:2]), text[2:]
    return "eq", text


# --- one value of one parameter type -------------------------------------------------------------


def parse_value(
    param: SearchParamDef, modifier: str | None, raw: str, name: str, base_url: str | None
) -> SearchValue:
    """One (still escaped) comma-separated piece of a value of ``param``."""
    kind = param.type
    if kind == "string":
        return StringValue(unescape(raw))
    if kind == "uri":
        return UriValue(unescape(raw))
    if kind == "token":
        return parse_token(param, modifier, raw, name)
    if kind == "date":
        return parse_date(raw, name)
    if kind == "number":
        return parse_number(raw, name)
    if kind == "quantity":
        return parse_quantity(raw, name)
    if kind == "reference":
        return parse_reference(param, modifier, raw, name, base_url)
    if kind == "composite":
        return parse_composite(param, raw, name, base_url)
    raise bad_value(name, f"{kind} parameters are not supported")


def parse_token(param: SearchParamDef, modifier: str | None, raw: str, name: str) -> TokenValue:
    if modifier == "text":
        return TokenValue(None, unescape(raw))
    parts = [unescape(p) for p in split_escaped(raw, "|")]
    if param.code == "_id":
        if len(parts) != 1 or not _ID.fullmatch(parts[0]):
            raise bad_value(name, "the value is not a resource id")
        return TokenValue(None, parts[0])
    if modifier == "of-type":
        if len(parts) != 3 or not all(parts):
            raise bad_value(name, ":of-type takes system|code|value (all three)")
        return TokenValue(parts[0], parts[1], parts[2])
    if len(parts) == 1:
        return TokenValue(None, parts[0])
    if len(parts) == 2:
        system, code = parts
        if not system and not code:
            raise bad_value(name, "a token needs a code or a system (code, system|code, |code)")
        return TokenValue(system, code or None)
    raise bad_value(name, "a token is code, system|code, |code or system| (one '|' at most)")


def parse_date(raw: str, name: str) -> DateValue:
    prefix, text = split_prefix(unescape(raw))
    try:
        low, high = date_bounds(text)
    except ValueError as error:
        raise bad_value(name, f"the value is not a date: {error}") from None
    return DateValue(prefix, low, high)


def parse_number(raw: str, name: str) -> NumberValue:
    prefix, text = split_prefix(unescape(raw))
    try:
        value, low, high = number_bounds(text)
    except ValueError as error:
        raise bad_value(name, f"the value is not a number: {error}") from None
    return NumberValue(prefix, value, low, high)


def parse_quantity(raw: str, name: str) -> QuantityValue:
    """``[prefix]number``, ``[prefix]number|system|code``; an empty system or code is any
    (``5.4||mg``: code ``mg`` in any system)."""
    parts = [unescape(p) for p in split_escaped(raw, "|")]
    if len(parts) not in (1, 3):
        raise bad_value(name, "a quantity is [prefix]number or [prefix]number|system|code")
    prefix, text = split_prefix(parts[0])
    try:
        value, low, high = number_bounds(text)
    except ValueError as error:
        raise bad_value(name, f"the value is not a number: {error}") from None
    system, code = (parts[1] or None, parts[2] or None) if len(parts) == 3 else (None, None)
    return QuantityValue(prefix, value, low, high, system, code)


def parse_reference(
    param: SearchParamDef, modifier: str | None, raw: str, name: str, base_url: str | None
) -> ReferenceValue:
    """``Type/id``, ``id``, an absolute URL (this server's own become ``Type/id``), a
    canonical ``url|version``; with ``:identifier`` ``system|value``; with ``:Type`` the
    type is set on every value."""
    if modifier == "identifier":
        parts = [unescape(p) for p in split_escaped(raw, "|")]
        if len(parts) > 2 or not parts[-1]:
            raise bad_value(name, ":identifier takes system|value or value")
        system = parts[0] or None if len(parts) == 2 else None
        return ReferenceValue(None, None, identifier_system=system, identifier_value=parts[-1])
    pieces = split_escaped(raw, "|")
    text = unescape(pieces[0])
    base = (base_url or "").rstrip("/")
    if base and text.startswith(base + "/"):
        text = text[len(base) + 1 :]
    elif _is_absolute(text):
        if len(pieces) > 2:
            raise bad_value(name, "a canonical reference is url or url|version")
        version = unescape(pieces[1]) if len(pieces) == 2 else None
        return ReferenceValue(None, None, url=text, version=version or None)
    if len(pieces) > 1:
        raise bad_value(name, "only an absolute (canonical) URL may carry a |version")
    return _relative_reference(param, modifier, text, name)


def _is_absolute(text: str) -> bool:
    return "://" in text or text.startswith(("urn:", "http:", "https:"))


def _relative_reference(
    param: SearchParamDef, modifier: str | None, text: str, name: str
) -> ReferenceValue:
    history = _HISTORY.match(text)
    if history:  # Type/id/_history/n: the search is on the resource, any version
        text = history.group("path")
    target_type: str | None = None
    target_id = text
    if "/" in text:
        target_type, _, target_id = text.partition("/")
        if not r4.is_resource_type(target_type):
            raise bad_value(name, "the type in the value (Type/id) is not a resource type")
        if modifier is not None and target_type != modifier:
            raise bad_value(name, f"the value names {target_type} but the modifier :{modifier}")
    elif modifier is not None:
        target_type = modifier
    if not _ID.fullmatch(target_id):
        raise bad_value(name, "the value is not a resource id (nor Type/id, nor a URL)")
    # A type outside the parameter's declared targets is accepted: stored data does hold such
    # references (three official R4 examples do), and refusing the search would hide them.
    return ReferenceValue(target_type, target_id)


def parse_composite(
    param: SearchParamDef, raw: str, name: str, base_url: str | None
) -> CompositeValue:
    """``a$b``: one value per component, each parsed by its component's type (prefixes
    allowed on number, date and quantity components)."""
    parts = split_escaped(raw, "$")
    if len(parts) != len(param.components):
        raise bad_value(
            name,
            f"{param.code} takes {len(param.components)} values joined by '$' "
            f"({'$'.join(c.param.code for c in param.components)})",
        )
    values: list[SearchValue] = []
    for component, part in zip(param.components, parts, strict=True):
        if not part:
            raise bad_value(name, f"the {component.param.code} part of the value is empty")
        values.append(parse_value(component.param, None, part, name, base_url))
    return CompositeValue(tuple(values))


def parse_missing(raw: str, name: str) -> bool:
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise bad_value(name, ":missing takes true or false")
