"""SMART App Launch 2.x scopes: the grammar, the subset of a request a policy grants, and the
resource scopes an access token carries (scopes-and-launch-context.html).

Pure functions over strings and :class:`~fhir_server.core.access.ResourceScope`: the
authorization server uses :func:`parse_scopes` and :func:`grant` when it issues a token, the
doors :func:`access_scopes` when they turn a token into an :class:`~fhir_server.core.access.Access`.

Choices where the IG leaves room:

* out-of-order or unknown letters (``patient/Observation.dus``), unknown resource types and
  malformed queries are **rejected** (reported with a reason), never half-read;
* SMART 1.0's ``.read``/``.write``/``.*`` are read as ``rs``/``cud``/``cruds``; a request that a
  policy grants whole is echoed as written, so a v1 app gets v1 scopes back (§1.16);
* the pseudo types ``Admin`` and ``Launch`` (this server's administration) exist only at
  ``system`` level and are never reached through ``*``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from fhir_server.core import r4
from fhir_server.core.access import ADMIN_TYPE, LAUNCH_TYPE, ResourceScope, ScopeLevel

#: The URI form of a scope (``http://smarthealthit.org/fhir/scopes/patient/*.rs``).
SCOPE_URI_PREFIX = "http://smarthealthit.org/fhir/scopes/"

#: Identity, refresh and EHR-launch scopes that carry no resource access.
CONTEXT_SCOPES = frozenset(
    ("launch", "openid", "fhirUser", "profile", "offline_access", "online_access")
)

#: SMART 1.0 permissions and the v2 letters they stand for.
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}

_LETTER_ORDER = "cruds"
_PSEUDO_TYPES = (ADMIN_TYPE, LAUNCH_TYPE)
_LEVELS: tuple[ScopeLevel, ...] = ("patient", "user", "system")
_RESOURCE = re.compile(r"(?P<level>[a-z]+)/(?P<type>[A-Za-z]+|\*)\.(?P<perm>[a-z*]+)")
_V2_LETTERS = re.compile(r"c?r?u?d?s?")
_LAUNCH_CONTEXT = re.compile(r"launch/[a-z][a-zA-Z]*")

Query = tuple[tuple[str, str], ...]


class InvalidScope(ValueError):
    """A scope string outside the grammar; ``reason`` says why (shown to the client)."""

    def __init__(self, scope: str, reason: str) -> None:
        super().__init__(f"{scope}: {reason}")
        self.scope = scope
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ParsedScopes:
    """A space-separated scope string, read: resource scopes, context/identity scopes (as
    written), and the rejected ones as ``(scope, reason)``. Duplicates are dropped."""

    resources: tuple[ResourceScope, ...] = ()
    context: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()


def parse_scope(text: str) -> ResourceScope | str:
    """One scope: a :class:`ResourceScope`, or the scope itself for a context/identity scope.
    Raises :class:`InvalidScope` for anything else."""
    if text in CONTEXT_SCOPES:
        return text
    head, question, role = text.partition("?")
    if _LAUNCH_CONTEXT.fullmatch(head) and (not question or role.startswith("role=")):
        return text
    body = text.removeprefix(SCOPE_URI_PREFIX)
    head, question, query_text = body.partition("?")
    found = _RESOURCE.fullmatch(head)
    if found is None:
        raise InvalidScope(text, "not a SMART scope (level/Type.permissions, e.g. patient/*.rs)")
    level, resource_type, permission = found.group("level", "type", "perm")
    if level not in _LEVELS:
        raise InvalidScope(text, "the level must be patient, user or system")
    _check_type(text, level, resource_type)
    letters = _letters(text, permission)
    query = _query(text, query_text) if question else ()
    return ResourceScope(_level(level), resource_type, frozenset(letters), query, text)


def parse_scopes(scope_string: str) -> ParsedScopes:
    """Every scope of a space-separated string (RFC 6749 §3.3), sorted into kinds."""
    resources: list[ResourceScope] = []
    context: list[str] = []
    rejected: list[tuple[str, str]] = []
    for text in dict.fromkeys(scope_string.split()):
        try:
            parsed = parse_scope(text)
        except InvalidScope as error:
            rejected.append((text, error.reason))
            continue
        if isinstance(parsed, str):
            context.append(parsed)
        else:
            resources.append(parsed)
    return ParsedScopes(tuple(resources), tuple(context), tuple(rejected))


def access_scopes(scope_string: str) -> tuple[ResourceScope, ...]:
    """The resource scopes of a granted scope string (what an Access carries)."""
    return parse_scopes(scope_string).resources


def scope_text(
    level: str, resource_type: str, letters: frozenset[str] | set[str], query: Query = ()
) -> str:
    """The v2 text of a scope: letters in ``cruds`` order, the query URL-encoded."""
    ordered = "".join(letter for letter in _LETTER_ORDER if letter in letters)
    text = f"{level}/{resource_type}.{ordered}"
    if query:
        text += "?" + urlencode(query, safe=":/|")
    return text


def grant(requested: str, allowed: str) -> str:
    """The scope string to grant for a request, under a policy (a client's registered scopes,
    or what the user consented to).

    Each requested resource scope is met with each allowed one of the same level: the type is
    the narrower of the two (``*`` meets ``Observation`` as ``Observation``), the letters are
    intersected, and a granular query survives when only one side has one or both have the
    same. A request covered whole is granted as written (v1 stays v1); otherwise each non-empty
    meet is granted in v2 form. Context scopes are granted when allowed; unknown ones dropped.
    """
    policy = parse_scopes(allowed)
    wanted = parse_scopes(requested)
    out: list[str] = []
    for scope in wanted.resources:
        meets = [m for a in policy.resources if (m := _meet(scope, a)) is not None]
        if any(_same(m, scope) for m in meets):
            out.append(scope.text)
            continue
        out += [scope_text(m.level, m.resource_type, m.interactions, m.query) for m in meets]
    out += [c for c in wanted.context if c in policy.context]
    return " ".join(dict.fromkeys(out))


def _meet(requested: ResourceScope, allowed: ResourceScope) -> ResourceScope | None:
    if requested.level != allowed.level:
        return None
    resource_type = _type_meet(requested.resource_type, allowed.resource_type)
    if resource_type is None:
        return None
    letters = requested.interactions & allowed.interactions
    if not letters:
        return None
    if not requested.query or frozenset(requested.query) == frozenset(allowed.query):
        query: Query | None = allowed.query or requested.query
    elif not allowed.query:
        query = requested.query
    else:
        query = None
    if query is None:
        return None
    return ResourceScope(requested.level, resource_type, letters, query)


def _type_meet(requested: str, allowed: str) -> str | None:
    if requested == allowed:
        return requested
    if requested == "*" and allowed not in _PSEUDO_TYPES:
        return allowed
    if allowed == "*" and requested not in _PSEUDO_TYPES:
        return requested
    return None


def _same(meet: ResourceScope, requested: ResourceScope) -> bool:
    return (
        meet.resource_type == requested.resource_type
        and meet.interactions == requested.interactions
        and frozenset(meet.query) == frozenset(requested.query)
    )


def _level(level: str) -> ScopeLevel:
    for known in _LEVELS:
        if known == level:
            return known
    raise AssertionError(level)  # pragma: no cover - checked by the caller


def _check_type(text: str, level: str, resource_type: str) -> None:
    if resource_type == "*" or r4.is_resource_type(resource_type):
        return
    if resource_type in _PSEUDO_TYPES:
        if level == "system":
            return
        raise InvalidScope(text, f"{resource_type} scopes exist only at system level")
    raise InvalidScope(text, "the resource type is not an R4 resource type")


def _letters(text: str, permission: str) -> str:
    if permission in V1_PERMISSIONS:
        return V1_PERMISSIONS[permission]
    if permission and _V2_LETTERS.fullmatch(permission):
        return permission
    raise InvalidScope(
        text, "the permissions must be letters of cruds in that order, or read, write or *"
    )


def _query(text: str, query_text: str) -> Query:
    try:
        pairs = parse_qsl(query_text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise InvalidScope(text, "the query must be name=value pairs joined by &") from None
    if not pairs or any(not name or not value for name, value in pairs):
        raise InvalidScope(text, "the query must be name=value pairs with non-empty values")
    return tuple(pairs)
