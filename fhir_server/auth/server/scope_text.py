"""SMART scopes in plain language, and the choices the consent page offers for them.

The consent page must show "the requested access in plain language", let the user deselect
scopes and offer granular category choices (checklist S25; Inferno's limited-access and
granular-selection tests expect a user to grant ``Observation.rs?category=…|laboratory`` when
the app asked for ``Observation.rs``). Reading a scope here is only for words: the server's
grammar and policy live in :mod:`fhir_server.auth.scopes`, and a scope this module cannot read
is still shown, verbatim, as "other access".

Every description exists in English, Simplified Chinese and Romanian. Resource types without a
translated noun are named by their FHIR type ("MolecularSequence records").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from fhir_server.auth.server.pages_i18n import (
    CATEGORY_LABELS,
    CONDITION_CATEGORIES,
    LANGUAGES,
    OBSERVATION_CATEGORIES,
    RESOURCE_HINTS,
    RESOURCE_NOUNS,
    SCOPE_PHRASES,
    VERBS,
    message,
)

Text = tuple[str, str, str]


@dataclass(frozen=True)
class ScopeChoice:
    """One checkbox of the consent form. ``value`` is the scope text submitted as ``scope``;
    ``required`` ones cannot be unticked; ``children`` are narrower alternatives (granular
    category scopes) shown under their parent, unticked by default."""

    value: str
    label: str
    checked: bool = True
    required: bool = False
    children: tuple[ScopeChoice, ...] = ()


_RESOURCE = re.compile(
    r"(?P<level>patient|user|system)/(?P<type>[A-Za-z]+|\*)\.(?P<perm>read|write|\*|[cruds]+)"
    r"(?:\?(?P<query>.*))?"
)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_LETTERS = "cruds"

# ``level -> (template for a type, template for *)`` per language; {actions} {things}.
_TEMPLATES: dict[str, tuple[Text, Text]] = {
    "patient": (
        ("{actions} the patient's {things}", "{actions}患者的{things}",
         "{actions} {things} din dosarul pacientului"),
        ("{actions} all of the patient's records", "{actions}患者的所有记录",
         "{actions} toate datele din dosarul pacientului"),
    ),
    "user": (
        ("{actions} {things} you can access", "{actions}您有权访问的{things}",
         "{actions} {things} la care aveți acces"),
        ("{actions} all records you can access", "{actions}您有权访问的所有记录",
         "{actions} toate datele la care aveți acces"),
    ),
    "system": (
        ("{actions} all {things} on this server", "{actions}本服务器上的所有{things}",
         "{actions} {things} de pe întregul server"),
        ("{actions} all records on this server", "{actions}本服务器上的所有记录",
         "{actions} toate datele de pe acest server"),
    ),
}  # fmt: skip
_HINT_SEPARATOR: Text = (" ", "", " ")
_AND: Text = (" and ", "和", " și ")
_LIST_SEPARATOR: Text = (", ", "、", ", ")
_FALLBACK_NOUN: Text = ("{type} records", "{type}记录", "înregistrările de tip {type}")

#: Scopes the user cannot untick: identity and launch context are what the flow is for.
_REQUIRED = frozenset(("openid", "fhirUser", "launch"))


def _pick(text: Text, lang: str) -> str:
    return text[LANGUAGES.index(lang)]


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _letters(perm: str) -> str | None:
    """v2 letters for a permission (v1 words mapped), None if out of order or repeated."""
    if perm in _V1:
        return _V1[perm]
    it = iter(_LETTERS)
    return perm if all(letter in it for letter in perm) else None


def _actions(letters: str, lang: str) -> str:
    verbs = [_pick(VERBS[letter], lang) for letter in letters]
    if len(verbs) == 1:
        return verbs[0]
    return _pick(_LIST_SEPARATOR, lang).join(verbs[:-1]) + _pick(_AND, lang) + verbs[-1]


def _things(resource_type: str, lang: str) -> str:
    noun = RESOURCE_NOUNS.get(resource_type)
    return _pick(noun, lang) if noun else _pick(_FALLBACK_NOUN, lang).format(type=resource_type)


def _with_hint(text: str, resource_type: str, lang: str) -> str:
    """``text`` followed by what the type holds, for types whose name says little."""
    hint = RESOURCE_HINTS.get(resource_type)
    return text + _pick(_HINT_SEPARATOR, lang) + _pick(hint, lang) if hint else text


def _restriction(query: str, lang: str) -> str:
    parts = []
    for param, value in parse_qsl(query, keep_blank_values=True):
        code = value.rpartition("|")[2]
        if param == "category" and code in CATEGORY_LABELS:
            label = _pick(CATEGORY_LABELS[code], lang)
            parts.append(message("category_only", lang).format(category=label))
        else:
            parts.append(message("scope_only_matching", lang).format(param=param, value=value))
    return _pick(_LIST_SEPARATOR, lang).join(parts)


def _describe_one(scope: str, lang: str) -> str:
    if scope in SCOPE_PHRASES:
        return _pick(SCOPE_PHRASES[scope], lang)
    match = _RESOURCE.fullmatch(scope)
    letters = _letters(match["perm"]) if match else None
    if match is None or not letters:
        return message("scope_other", lang).format(scope=scope)
    resource_type, query = match["type"], match["query"]
    for_type, for_all = _TEMPLATES[match["level"]]
    template = _pick(for_all if resource_type == "*" else for_type, lang)
    things = "" if resource_type == "*" else _things(resource_type, lang)
    base = _capitalize(template.format(actions=_actions(letters, lang), things=things))
    if not query:
        return _with_hint(base, resource_type, lang)
    return message("scope_only", lang).format(base=base, only=_restriction(query, lang))


def describe_scope(scope: str, lang: str) -> str:
    """``scope`` in plain words in ``lang``: ``patient/Observation.rs`` → "Read and search the
    patient's observations (test results, vital signs…)". Several space-separated scopes are
    described one by one, joined by "; "."""
    return "; ".join(_describe_one(s, lang) for s in scope.split())


def _category_children(scope: str, lang: str) -> tuple[ScopeChoice, ...]:
    """The granular alternatives of a resource-level Observation or Condition scope."""
    match = _RESOURCE.fullmatch(scope)
    if match is None or match["query"] is not None or match["level"] == "system":
        return ()
    categories = {"Observation": OBSERVATION_CATEGORIES, "Condition": CONDITION_CATEGORIES}.get(
        match["type"], ()
    )
    letters = _letters(match["perm"])
    if not letters:
        return ()
    base = f"{match['level']}/{match['type']}.{letters}"
    return tuple(
        ScopeChoice(
            value=f"{base}?category={system}|{code}",
            label=_capitalize(
                message("category_only", lang).format(category=_pick(CATEGORY_LABELS[code], lang))
            ),
            checked=False,
        )
        for system, code in categories
    )


def is_required(scope: str) -> bool:
    """Identity and launch-context scopes, which the consent form does not let the user drop."""
    return scope in _REQUIRED or scope.startswith("launch/")


def consent_choices(requested: list[str], lang: str) -> list[ScopeChoice]:
    """One choice per requested scope (duplicates dropped, order kept), ticked by default;
    resource-level Observation/Condition scopes get their category choices as children."""
    choices: list[ScopeChoice] = []
    for scope in dict.fromkeys(requested):
        choices.append(
            ScopeChoice(
                value=scope,
                label=describe_scope(scope, lang),
                required=is_required(scope),
                children=_category_children(scope, lang),
            )
        )
    return choices
